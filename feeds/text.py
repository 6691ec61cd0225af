"""Text helpers shared by every output format: XML-safe strings, summaries, absolute URLs.

Article text comes from a third-party site and can hold characters XML 1.0 forbids (lxml refuses them and
one bad title would stop every feed); so every string passes through :func:`xml_safe` on its way out.
"""

from __future__ import annotations

import re
from html import escape as html_escape
from urllib.parse import urljoin, urlsplit

# Everything outside XML 1.0's Char production: C0 controls except tab/LF/CR, lone surrogates, U+FFFE/FFFF.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"\s+")
# An src/href attribute whose value is not an absolute http(s) URL (nor a fragment, mailto:, tel:, data:).
# The lookahead takes the optional quote itself so that backtracking cannot skip it.
_RELATIVE_REF = re.compile(
    r"""\b(?:src|href)\s*=(?!\s*["']?\s*(?:https?:|mailto:|tel:|data:|\#))""", re.IGNORECASE
)

SUMMARY_CHARS = 200


def strip_xml_illegal(text: str) -> str:
    """Drop the characters an XML 1.0 document may not contain."""
    return _XML_ILLEGAL.sub("", text)


def xml_safe(text: str | None) -> str:
    """``None`` -> ``""``; otherwise the text without XML-illegal characters."""
    return "" if text is None else strip_xml_illegal(text)


def one_line(text: str | None) -> str:
    """Whitespace runs (including newlines) collapsed to one space, trimmed, XML-safe."""
    return _SPACES.sub(" ", xml_safe(text)).strip()


def summarize(body_text: str | None, fallback: str, limit: int = SUMMARY_CHARS) -> str:
    """The start of the plain text, cut at ``limit`` characters with an ellipsis; else ``fallback``."""
    head = (body_text or "")[: limit * 8]  # long bodies: only the start matters
    text = one_line(head)
    if not text:
        return one_line(fallback)
    if len(text) <= limit and len(head) == len(body_text or ""):
        return text
    return text[:limit].rstrip() + "…"


def is_absolute_http(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def absolute_url(url: str, base: str) -> str:
    """``url`` resolved against ``base`` (stored URLs should already be absolute: this is a safety net)."""
    return xml_safe(url.strip() if is_absolute_http(url.strip()) else urljoin(base, url.strip()))


def absolutize_html(html: str, base: str) -> str:
    """Make every link and image URL in an HTML fragment absolute (readers have no base URL).

    The crawler already stores absolute URLs, so the fragment is only re-serialized when a relative
    reference is actually present: untouched bodies keep their exact bytes.
    """
    if not _RELATIVE_REF.search(html):
        return html
    import lxml.html

    fragments = lxml.html.fragments_fromstring(html)
    out: list[str] = []
    for frag in fragments:
        if isinstance(frag, str):
            out.append(html_escape(frag, quote=False))
            continue
        frag.make_links_absolute(base, resolve_base_href=False)
        out.append(lxml.html.tostring(frag, encoding="unicode"))
    return "".join(out)
