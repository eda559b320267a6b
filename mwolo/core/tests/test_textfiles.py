"""Imported text files: UTF-8 (with or without Excel's byte-order mark), or a clear error."""

import pytest

from mwolo.core.exceptions import ApplicationError
from mwolo.core.textfiles import utf8_text


def test_utf8_text_is_read_as_is_and_the_byte_order_mark_dropped():
    assert utf8_text("a,b\nKimpésé,1\n".encode()) == "a,b\nKimpésé,1\n"
    assert utf8_text("a,b\nKimpésé,1\n".encode("utf-8-sig")) == "a,b\nKimpésé,1\n"


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_another_encoding_is_refused_with_the_line_and_byte(bom):
    data = bom + "nom,ville\nGombe,Kinshasa\r\nKimpésé,Mbanza-Ngungu\n".encode("cp1252")

    with pytest.raises(ApplicationError) as excinfo:
        utf8_text(data)

    assert excinfo.value.extra == {"line": 3, "column": 5}
    assert "0xE9" in excinfo.value.message
