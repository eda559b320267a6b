"""Texts from templates: Django's template language on strings, strict about names.

Messages are plain text (SMS and the text of emails): nothing is HTML-escaped. A template
that names a variable its event does not provide fails loudly (``TemplateError``) instead
of printing nothing, both when staff save it and when a message is rendered.

Values are written the client's way before rendering: amounts as ``1 250 000,00`` in
French and ``1,250,000.00`` in English (plain spaces: they are GSM-7, a no-break space is
not), dates as ``15/12/2026``, moments as ``10/12/2026 09:30`` in the agency's zone,
translatable labels in the client's language.
"""

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.template import Context, Engine, Template, TemplateDoesNotExist, TemplateSyntaxError
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _


class TemplateError(ValueError):
    """A template that cannot be rendered; the message says why, for the person editing it."""


class _UnknownVariableError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _RaiseOnUnknown(str):
    """``string_if_invalid`` that raises: Django formats it with the missing name."""

    def __contains__(self, item: object) -> bool:
        return item == "%s"

    def __mod__(self, variable: object) -> str:
        raise _UnknownVariableError(str(variable))


_ENGINE = Engine(
    dirs=[],
    app_dirs=False,
    loaders=[],
    autoescape=False,
    string_if_invalid=_RaiseOnUnknown("unknown"),
)


def format_decimal(value: Decimal, language: str) -> str:
    """``1 250 000,00`` (fr) or ``1,250,000.00`` (en), with the decimals the value has."""
    text = f"{abs(value):,f}"
    if language == "fr":
        text = text.replace(",", " ").replace(".", ",")
    return f"-{text}" if value < 0 else text


def format_value(value: Any, *, language: str, zone: ZoneInfo) -> Any:
    if isinstance(value, bool | int):
        return value
    if isinstance(value, Decimal):
        return format_decimal(value, language)
    if isinstance(value, dt.datetime):
        return value.astimezone(zone).strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, Promise):
        with translation.override(language):
            return str(value)
    return value


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    """Each template's text compiled once per process (a pass renders thousands of
    messages from a handful of texts); an edited text is a new key."""
    return _ENGINE.from_string(source)


def render(source: str, context: Mapping[str, Any], *, language: str, zone: ZoneInfo) -> str:
    """``source`` rendered with ``context`` (values written the client's way).

    Raises ``TemplateError`` for a syntax error or a variable ``context`` lacks.
    """
    values = {
        name: format_value(value, language=language, zone=zone) for name, value in context.items()
    }
    try:
        template = _compiled(source)
        with translation.override(language):
            return template.render(Context(values, autoescape=False)).strip()
    except TemplateSyntaxError as error:
        raise TemplateError(_("Template syntax error: %(error)s") % {"error": error}) from None
    except TemplateDoesNotExist as error:
        raise TemplateError(
            _("Templates cannot include other templates (%(name)s).") % {"name": error}
        ) from None
    except _UnknownVariableError as error:
        raise TemplateError(
            _("Unknown variable “%(name)s”. Available: %(names)s.")
            % {"name": error.name, "names": ", ".join(sorted(context))}
        ) from None


# --- SMS length ---------------------------------------------------------------------------

# GSM 03.38: the basic set (one septet each) and its extension (two: escape + character).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int  # SMS billed

    @property
    def single_limit(self) -> int:
        return 160 if self.encoding == "GSM-7" else 70


def sms_length(text: str) -> SmsLength:
    """How an operator counts ``text``: 160 GSM-7 characters in one SMS (153 per part
    beyond), or 70 (67) as soon as one character is outside GSM-7 (``ê``, ``ç``, ``’``…)."""
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in text):
        units = sum(2 if char in _GSM7_EXTENSION else 1 for char in text)
        single, part = 160, 153
        encoding = "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
        encoding = "UCS-2"
    parts = 1 if units <= single else -(-units // part)
    return SmsLength(encoding=encoding, units=units, parts=parts)


def non_gsm7_characters(text: str) -> str:
    """The characters that force ``text`` out of GSM-7, each once, in order."""
    seen: dict[str, None] = {}
    for char in text:
        if char not in _GSM7_BASIC and char not in _GSM7_EXTENSION:
            seen.setdefault(char)
    return "".join(seen)
