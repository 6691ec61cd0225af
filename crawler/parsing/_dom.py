"""Small lxml helpers shared by the parsers: lenient parsing, text extraction, tree edits.

Everything here tolerates arbitrary input: VSB pages carry invalid nesting (``<p><UL>``), Word
leftovers (``<o:p>``) and control characters, and a feed must not die on one bad page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree
from lxml.cssselect import CSSSelector

# Characters XML 1.0 forbids (feeds are XML), plus lone surrogates that cannot even be encoded.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_INVISIBLE = re.compile("[\u200b\ufeff]")
_CHARREF = re.compile(r"&#([xX][0-9a-fA-F]{1,8}|[0-9]{1,10});?")
_WS = re.compile(r"\s+")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", re.I)

SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "iframe", "object", "embed", "head"})
_EMPTY_DOC = b"<html><body></body></html>"


def strip_xml_illegal(text: str) -> str:
    """Remove characters that XML 1.0 cannot carry (C0 controls except tab/LF/CR, U+FFFE/U+FFFF,
    lone surrogates): one such character makes a whole RSS/Atom document invalid."""
    return _XML_ILLEGAL.sub("", text)


def _drop_illegal_charref(match: re.Match[str]) -> str:
    """``&#1;`` and friends: libxml2 would decode them into the tree, where lxml then refuses them."""
    ref = match.group(1)
    code = int(ref[1:], 16) if ref[0] in "xX" else int(ref)
    if code > 0x10FFFF or _XML_ILLEGAL.match(chr(code)):
        return ""
    return match.group(0)


def norm_space(text: str) -> str:
    """Collapse whitespace the way readers see it: U+00A0/U+3000 are spaces, U+200B is nothing."""
    text = _INVISIBLE.sub("", strip_xml_illegal(text))
    return _WS.sub(" ", text).strip()


def parse_html(html: str) -> etree._Element:
    """Parse a whole page with libxml2's recovering HTML parser; never raises.

    The text is re-encoded to UTF-8 and the parser told so, which makes lxml ignore the page's own
    ``<meta charset>`` (the caller already decoded the bytes) and accept XML declarations.
    """
    text = strip_xml_illegal(html if isinstance(html, str) else "").lstrip("\ufeff")
    text = _CHARREF.sub(_drop_illegal_charref, text)
    parser = lxml.html.HTMLParser(recover=True, encoding="utf-8", remove_comments=True, remove_pis=True)
    root = None
    if text.strip():
        try:
            root = etree.fromstring(text.encode("utf-8"), parser=parser)
        except (etree.LxmlError, ValueError):
            root = None
    if root is None:
        root = etree.fromstring(_EMPTY_DOC, parser=parser)
    return root


def body_of(root: etree._Element) -> etree._Element:
    """The ``<body>`` element, or the root when the parser produced none."""
    body = root.find("body")
    return body if body is not None else root


@lru_cache(maxsize=256)
def _compile(selector: str) -> CSSSelector:
    return CSSSelector(selector, translator="html")


def css(el: etree._Element, selector: str) -> list[etree._Element]:
    """Elements matching a CSS selector; an invalid selector matches nothing (config typos must not
    crash a crawl)."""
    try:
        return [e for e in _compile(selector)(el) if isinstance(e.tag, str)]
    except Exception:  # cssselect raises several unrelated types for bad selectors
        return []


def first(el: etree._Element, selector: str) -> etree._Element | None:
    found = css(el, selector)
    return found[0] if found else None


def is_hidden(el: etree._Element) -> bool:
    """VSB hides U+200B placeholders in ``display:none`` spans; their text is not content."""
    return bool(_HIDDEN_STYLE.search(el.get("style") or "")) or el.get("hidden") is not None


def iter_text(el: etree._Element, skip_hidden: bool = True) -> Iterator[str]:
    """Text nodes under ``el`` in document order, skipping scripts, styles and hidden elements."""
    walker = etree.iterwalk(el, events=("start", "end"))
    for event, node in walker:
        if not isinstance(node.tag, str):
            if event == "end" and node is not el and node.tail:
                yield node.tail
            continue
        if event == "start":
            if node.tag in SKIP_TAGS or (skip_hidden and is_hidden(node)):
                walker.skip_subtree()
            elif node.text:
                yield node.text
        elif node is not el and node.tail:
            yield node.tail


def text_of(el: etree._Element) -> str:
    """Visible text of an element, whitespace-normalised."""
    return norm_space("".join(iter_text(el)))


def raw_text_of(el: etree._Element) -> str:
    """Visible text with whitespace kept as written (runs of ``&nbsp;`` separate meta fields)."""
    return "".join(iter_text(el))


def _join(*parts: str | None) -> str:
    return strip_xml_illegal("".join(p for p in parts if p))


def remove(el: etree._Element) -> None:
    """Detach an element with its content but keep the text that follows it."""
    parent = el.getparent()
    if parent is None:
        return
    if el.tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = _join(prev.tail, el.tail)
        else:
            parent.text = _join(parent.text, el.tail)
    parent.remove(el)


def unwrap(el: etree._Element) -> None:
    """Replace an element by its content (used for Word's ``<o:p>``)."""
    parent = el.getparent()
    if parent is None:
        return
    index = parent.index(el)
    children = list(el)
    head = el.text or ""
    if index > 0:
        prev = parent[index - 1]
        prev.tail = _join(prev.tail, head)
    else:
        parent.text = _join(parent.text, head)
    last_tail = el.tail or ""
    parent.remove(el)
    for offset, child in enumerate(children):
        parent.insert(index + offset, child)
    if children:
        children[-1].tail = _join(children[-1].tail, last_tail)
    elif index > 0:
        parent[index - 1].tail = _join(parent[index - 1].tail, last_tail)
    else:
        parent.text = _join(parent.text, last_tail)


def is_inside(el: etree._Element, container: etree._Element | None) -> bool:
    """True when ``el`` is ``container`` or one of its descendants."""
    if container is None:
        return False
    node: etree._Element | None = el
    while node is not None:
        if node is container:
            return True
        node = node.getparent()
    return False


def inner_html(el: etree._Element) -> str:
    """Serialized content of an element without the element's own tag."""
    parts = [_escape(el.text or "")]
    for child in el:
        parts.append(lxml.html.tostring(child, encoding="unicode", with_tail=True))
    return "".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def absolute_url(base: str, href: str | None, schemes: Iterable[str] = ("http", "https")) -> str | None:
    """Resolve ``href`` against ``base``; None for empty, fragment-only or non-web (javascript:) links."""
    href = (href or "").strip()
    if not href or href.startswith("#"):
        return None
    try:
        url = urljoin(base or "", href)
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in schemes else None
