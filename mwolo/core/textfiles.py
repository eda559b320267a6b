"""Reading the text files people import (CSV exports): UTF-8, or a clear refusal."""

import codecs

from django.utils.translation import gettext as _

from .exceptions import ApplicationError


def utf8_text(data: bytes) -> str:
    """``data`` decoded as UTF-8, without the byte-order mark Excel writes first.

    A file in another encoding (a Latin-1 or Windows-1252 CSV export, typically) raises
    ``ApplicationError`` naming the line and the byte where it stops being UTF-8, with what
    the byte would be in Windows-1252, and what to do; ``extra`` has ``line`` and ``column``
    (counted in bytes from 1).
    """
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = bom + error.start
        line = data.count(b"\n", 0, offset) + 1
        column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
        byte = data[offset]
        raise ApplicationError(
            _(
                "The file must be UTF-8 text, and line %(line)d is not: byte %(column)d of "
                "the line is 0x%(byte)02X (“%(guess)s” in Windows-1252). Save it as "
                "“CSV UTF-8” (in Excel: Save as, CSV UTF-8) and import it again. "
                "Nothing was imported."
            )
            % {
                "line": line,
                "column": column,
                "byte": byte,
                "guess": bytes([byte]).decode("cp1252", errors="replace"),
            },
            extra={"line": line, "column": column},
        ) from None
