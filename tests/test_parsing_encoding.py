"""decode_html: BOM, then the page's meta declaration, then the header, then UTF-8 / GB18030."""

from __future__ import annotations

import codecs

import pytest

from crawler.parsing import decode_html
from crawler.parsing.encoding import normalize_charset, sniff_meta_charset

TEXT = "党校工作动态——镕基与€"  # 镕 is in GBK but not in GB2312; € only in GB18030/cp936 extensions


def page(charset_decl: str, body: str = TEXT) -> str:
    return f"<html><head>{charset_decl}<title>t</title></head><body><p>{body}</p></body></html>"


def test_utf8_bom_wins_over_everything() -> None:
    raw = codecs.BOM_UTF8 + page('<meta charset="gbk">').encode("utf-8")
    text = decode_html(raw, "gbk")
    assert TEXT in text and not text.startswith("\ufeff")


def test_utf16_bom() -> None:
    raw = codecs.BOM_UTF16_LE + page("").encode("utf-16-le")
    assert TEXT in decode_html(raw)


@pytest.mark.parametrize(
    "decl",
    [
        '<meta charset="gbk">',
        "<meta charset=gb2312>",
        '<meta http-equiv="Content-Type" content="text/html; charset=gb2312" />',
        '<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=GBK">',
        '<meta http-equiv="Content-Type" content="text/html; charset=GB18030">',
    ],
)
def test_gbk_pages_by_meta_without_header(decl: str) -> None:
    raw = page(decl).encode("gb18030")
    assert TEXT in decode_html(raw)


def test_meta_outranks_a_wrong_header() -> None:
    raw = page('<meta charset="gbk">').encode("gb18030")
    assert TEXT in decode_html(raw, "utf-8")


def test_header_used_when_page_declares_nothing() -> None:
    raw = page("").encode("gb18030")
    assert TEXT in decode_html(raw, "GB2312")


def test_undeclared_gbk_falls_back_to_gb18030() -> None:
    raw = page("").encode("gb18030")
    assert TEXT in decode_html(raw)


def test_undeclared_utf8() -> None:
    assert TEXT in decode_html(page("").encode("utf-8"))


def test_a_stray_byte_does_not_flip_a_declared_utf8_page() -> None:
    raw = page('<meta charset="utf-8">', TEXT * 50).encode("utf-8")
    raw = raw.replace(b"<p>", b"<p>\xff", 1)
    text = decode_html(raw)
    assert TEXT in text and text.count("\ufffd") == 1


def test_unknown_or_non_text_labels_are_ignored() -> None:
    raw = page('<meta charset="x-no-such-charset">').encode("utf-8")
    assert TEXT in decode_html(raw, "rot13")
    assert TEXT in decode_html(page('<meta charset="base64">').encode("utf-8"), "hex")


def test_never_raises() -> None:
    assert isinstance(decode_html(b"\xff\xfe\xfd\x80\x81" * 10), str)
    assert decode_html(b"") == ""
    assert decode_html(None) == ""  # type: ignore[arg-type]
    assert "x" in decode_html(bytearray(b"x"))


@pytest.mark.parametrize(
    ("label", "codec"),
    [("gb2312", "gb18030"), ("GBK", "gb18030"), ("x-gbk", "gb18030"), ("cp936", "gb18030"),
     ("UTF-8", "utf-8"), ("utf8", "utf-8"), ("utf-16", "utf-8"), ("nonsense", None), ("", None), (None, None)],
)
def test_normalize_charset(label: str | None, codec: str | None) -> None:
    assert normalize_charset(label) == codec


def test_sniff_meta_charset_only_reads_meta_tags() -> None:
    assert sniff_meta_charset(b'<p>charset=gbk</p><meta charset="utf-8">') == "utf-8"
    assert sniff_meta_charset(b"<p>charset=gbk</p>") is None
