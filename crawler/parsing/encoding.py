"""Bytes to text for VSB pages.

Order of evidence: byte-order mark, then the page's own ``<meta>`` declaration, then the HTTP header,
then plain guessing (UTF-8, then GB18030). The page declaration outranks the header because VSB servers
often send a bare ``text/html`` or a generic charset while the template states the real one. GB2312 and
GBK labels are decoded as GB18030, their superset: old sites labelled ``gb2312`` routinely contain
characters outside it.
"""

from __future__ import annotations

import codecs
import re

from w3lib.encoding import http_content_type_encoding

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_CHINESE = {"gb2312", "gbk", "gb18030", "x-gbk", "cp936", "ms936", "windows-936", "gb_2312-80", "euc-cn",
            "csgb2312", "iso-ir-58", "chinese", "csiso58gb231280"}
_WIDE_UNICODE = {"utf-16", "utf-16le", "utf-16be", "utf-16-le", "utf-16-be", "utf-32", "utf-32le", "utf-32be",
                 "utf-32-le", "utf-32-be"}
_SNIFF_BYTES = 4096
# A declared charset that yields more replacement characters than this share is probably a wrong label.
_MAX_BAD_SHARE = 0.001


def normalize_charset(label: str | None) -> str | None:
    """Python codec name for a charset label, or None when the label is unknown or not a text codec."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if name in _CHINESE:
        return "gb18030"
    if name in _WIDE_UNICODE:
        # HTML: a UTF-16 label without a BOM is treated as UTF-8 (the label survived a re-encode)
        return "utf-8"
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None  # rot13, base64 & co. are codecs but not charsets
    return "gb18030" if info.name in ("gbk", "gb2312") else info.name


def header_charset(content_type: str | bytes | None) -> str | None:
    """The charset named by a ``Content-Type`` header value (w3lib's parser: quoted values, several
    parameters), as a codec name; None when there is none. Bytes are read as Latin-1, as headers are."""
    if isinstance(content_type, bytes | bytearray):
        content_type = bytes(content_type).decode("latin-1")
    if not isinstance(content_type, str):
        return None
    try:
        return http_content_type_encoding(content_type)
    except (LookupError, ValueError):
        return None


def sniff_meta_charset(body: bytes) -> str | None:
    """Charset named by ``<meta charset>`` or ``<meta http-equiv="Content-Type">`` near the top."""
    for match in _META_CHARSET.finditer(body[:_SNIFF_BYTES]):
        name = normalize_charset(match.group(1).decode("ascii", "replace"))
        if name:
            return name
    return None


def _try(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _mostly(body: bytes, codec: str) -> str | None:
    """Decode with replacement when only a handful of bytes are broken: a stray byte in a page that
    declares UTF-8 should not turn the whole page into GB18030 mojibake."""
    try:
        text = body.decode(codec, errors="replace")
    except LookupError:
        return None
    if text.count("\ufffd") <= max(1, len(text) * _MAX_BAD_SHARE):
        return text
    return None


def decode_html(body: bytes, header_charset: str | None = None) -> str:
    """Decode a page; never raises (last resort: UTF-8 with replacement characters)."""
    if not isinstance(body, bytes | bytearray | memoryview):
        return ""
    body = bytes(body)
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(codec, errors="replace")
    declared = [c for c in (sniff_meta_charset(body), normalize_charset(header_charset)) if c]
    for codec in declared:
        text = _try(body, codec)
        if text is None:
            text = _mostly(body, codec)
        if text is not None:
            return text
    for codec in ("utf-8", "gb18030"):
        text = _try(body, codec)
        if text is not None:
            return text
    return body.decode("utf-8", errors="replace")
