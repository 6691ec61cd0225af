"""Article HTML made safe and self-contained for feeds, and plain text for summaries.

Feed readers render ``content`` with the reader's origin, so only inert formatting survives; links
and images must be absolute because the feed is read far away from the site.
"""

from __future__ import annotations

import re

import nh3
from lxml import etree

from ._dom import (
    SKIP_TAGS,
    UNWALKED,
    absolute_url,
    body_of,
    inner_html,
    is_hidden,
    norm_space,
    parse_html,
    remove,
    strip_xml_illegal,
    unwrap,
)

__all__ = ["sanitize_html", "strip_xml_illegal", "html_to_text"]

ALLOWED_TAGS = frozenset({
    "p", "br", "div", "span", "strong", "b", "em", "i", "u", "sub", "sup",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li",
    "table", "thead", "tbody", "tr", "td", "th", "blockquote", "pre", "code",
    "a", "img", "hr", "figure", "figcaption",
})
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Dropped together with their content (nh3 keeps the text of other disallowed tags).
DROP_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "object", "embed", "noscript", "template", "textarea", "select",
    "applet", "frame", "frameset", "noframes", "svg", "math", "title", "xmp", "noembed",
})

_BLOCK_TAGS = frozenset({
    "p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tfoot", "tr", "blockquote", "pre", "hr", "figure", "figcaption",
    "section", "article", "header", "footer", "aside", "nav", "address", "center", "form", "caption",
})
_CELL_TAGS = frozenset({"td", "th"})
_LINE_SPACE = re.compile(r"[^\S\n]+")


def _prepare(container: etree._Element, base_url: str) -> None:
    """VSB-specific cleanup nh3 cannot do: hidden spans, ``<o:p>``, ``orisrc``, absolute URLs."""
    # Which elements to drop or unwrap depends on their own tag and attributes only, so it is decided
    # for the tree as parsed, in document order, and applied in that order.
    for el in [el for el in container.iter() if el is not container and _is_dropped_or_unwrapped(el)]:
        if el.tag in DROP_WITH_CONTENT or is_hidden(el):
            remove(el)
        elif el.tag == "o:p":
            unwrap(el)
    for img in container.iter("img"):
        if not (img.get("src") or "").strip() and (img.get("orisrc") or "").strip():
            img.set("src", img.get("orisrc", ""))
    for el, attr in [(a, "href") for a in container.iter("a")] + [(i, "src") for i in container.iter("img")]:
        value = el.get(attr)
        if value is None:
            continue
        url = absolute_url(base_url, value, URL_SCHEMES)
        if url is None:
            del el.attrib[attr]
        else:
            el.set(attr, url)


def _is_dropped_or_unwrapped(el: etree._Element) -> bool:
    """Whether ``_prepare`` may remove or unwrap ``el`` (a cheap superset: any style may hide)."""
    tag = el.tag
    if not isinstance(tag, str):
        return False
    return tag in DROP_WITH_CONTENT or tag == "o:p" or el.get("style") is not None or el.get("hidden") is not None


# One configured sanitizer for all calls: building ammonia's settings per call cost as much as cleaning.
_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(DROP_WITH_CONTENT),
    attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(URL_SCHEMES),
    link_rel=None,
    strip_comments=True,
)


def sanitize_html(html: str, base_url: str) -> str:
    """Whitelist-sanitize an HTML fragment: formatting tags only, no styles/classes/ids/handlers,
    http(s)/mailto URLs only, every href/src absolute, no XML-illegal characters, no U+200B."""
    if not isinstance(html, str) or not html.strip():
        return ""
    return _sanitize(body_of(parse_html(html)), base_url)


def _sanitize(container: etree._Element, base_url: str) -> str:
    _prepare(container, base_url if isinstance(base_url, str) else "")
    cleaned = _CLEANER.clean(inner_html(container))
    return strip_xml_illegal(cleaned).replace("\u200b", "").replace("\ufeff", "").strip()


def sanitize_and_text(html: str, base_url: str) -> tuple[str, str]:
    """``(sanitize_html(html, base_url), html_to_text(html))`` from one parse of ``html``."""
    if not isinstance(html, str) or not html.strip():
        return "", ""
    container = body_of(parse_html(html))
    text = _text(container)  # first: sanitizing edits the tree
    return _sanitize(container, base_url), text


def _text_chunks(root: etree._Element) -> list[str]:
    """Text with a newline around every block element and a space after table cells."""
    out: list[str] = []
    try:
        _collect_chunks(root, out)
    except RecursionError:  # deeper than libxml2 builds trees; only for trees from elsewhere
        out = _walk_chunks(root)
    else:
        if root.tail:
            out.pop()  # the root's own tail is not its text
    return out


def _collect_chunks(node: etree._Element, out: list[str]) -> None:
    """:func:`_walk_chunks` by recursion, which is faster than ``iterwalk`` events (appends the tail)."""
    tag = node.tag
    if tag not in SKIP_TAGS and not is_hidden(node):
        if tag in _BLOCK_TAGS:
            out.append("\n")
        if node.text:
            out.append(node.text)
        for child in node:
            if isinstance(child.tag, str):
                _collect_chunks(child, out)
            elif child.tail and child.tag not in UNWALKED:
                out.append(child.tail)
    if tag in _BLOCK_TAGS:
        out.append("\n")
    elif tag in _CELL_TAGS:
        out.append(" ")
    if node.tail:
        out.append(node.tail)


def _walk_chunks(root: etree._Element) -> list[str]:
    out: list[str] = []
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, node in walker:
        is_element = isinstance(node.tag, str)
        if event == "start":
            if not is_element:
                continue
            if node.tag in SKIP_TAGS or is_hidden(node):
                walker.skip_subtree()
                continue
            if node.tag in _BLOCK_TAGS:
                out.append("\n")
            if node.text:
                out.append(node.text)
            continue
        if is_element and node.tag in _BLOCK_TAGS:
            out.append("\n")
        elif is_element and node.tag in _CELL_TAGS:
            out.append(" ")
        if node is not root and node.tail:
            out.append(node.tail)
    return out


def _text(root: etree._Element) -> str:
    """:func:`html_to_text` of a parsed fragment."""
    text = "".join(_text_chunks(root))
    lines = (norm_space(_LINE_SPACE.sub(" ", line)) for line in text.split("\n") if line)
    return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: one line per paragraph/line break/list item/div, whitespace
    collapsed within lines (U+00A0 and U+3000 count as spaces, U+200B as nothing), empty lines dropped."""
    if not isinstance(html, str) or not html.strip():
        return ""
    return _text(body_of(parse_html(html)))
