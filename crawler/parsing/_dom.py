"""Small lxml helpers shared by the parsers: lenient parsing, text extraction, tree edits.

Everything here tolerates arbitrary input: VSB pages carry invalid nesting (``<p><UL>``), Word
leftovers (``<o:p>``) and control characters, and a feed must not die on one bad page.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from urllib.parse import urljoin, urlparse, urlsplit

import lxml.html
from lxml import etree
from lxml.cssselect import CSSSelector

# Characters XML 1.0 forbids (feeds are XML), plus lone surrogates that cannot even be encoded.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_INVISIBLE_OR_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff\u200b\ufeff]")
_CHARREF = re.compile(r"&#([xX][0-9a-fA-F]{1,8}|[0-9]{1,10});?")
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
    """Collapse whitespace the way readers see it: U+00A0/U+3000 are spaces, U+200B is nothing.

    (``str.split()`` splits on exactly what ``\\s`` matches, and one regex drops both character sets.)
    """
    return " ".join(_INVISIBLE_OR_ILLEGAL.sub("", text).split())


def parse_html(html: str) -> etree._Element:
    """Parse a whole page with libxml2's recovering HTML parser; never raises.

    The text is re-encoded to UTF-8 and the parser told so, which makes lxml ignore the page's own
    ``<meta charset>`` (the caller already decoded the bytes) and accept XML declarations. The parser is
    plain ``etree.HTMLParser``: ``lxml.html``'s one builds the same tree but looks up a Python element
    class for every element proxy, which made tree walks several times slower.
    """
    text = html if isinstance(html, str) else ""
    data = _utf8_if_legal(text)
    if data is None:
        text = strip_xml_illegal(text)
    if text.startswith("\ufeff"):
        text, data = text.lstrip("\ufeff"), None
    if _CHARREF.search(text):
        cleaned = _CHARREF.sub(_drop_illegal_charref, text)
        if cleaned != text:
            text, data = cleaned, None
    parser = _parser()
    root = None
    if text and not text.isspace():
        try:
            root = etree.fromstring(data if data is not None else text.encode("utf-8"), parser=parser)
        except (etree.LxmlError, ValueError):
            root = None
    if root is None:
        root = etree.fromstring(_EMPTY_DOC, parser=parser)
    return root


_C0_ILLEGAL = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D))


def _utf8_if_legal(text: str) -> bytes | None:
    """``text`` as UTF-8 when it holds no XML-illegal character, else None.

    Checks in C that together cost less than :data:`_XML_ILLEGAL` over the text: lone surrogates cannot
    be encoded, C0 controls are single bytes, and single-character ``in`` is a memchr.
    """
    if "\ufffe" in text or "\uffff" in text:
        return None
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return data if len(data.translate(None, _C0_ILLEGAL)) == len(data) else None


_PARSERS = threading.local()


def _parser() -> etree.HTMLParser:
    """One parser per thread: lxml parsers may be reused but not shared between threads. No ``id``
    index (``collect_ids``): nothing looks elements up by XPath ``id()``, and building it took ~10 %
    of the parse."""
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.HTMLParser(recover=True, encoding="utf-8", remove_comments=True,
                                                    remove_pis=True, collect_ids=False)
    return parser


def body_of(root: etree._Element) -> etree._Element:
    """The ``<body>`` element, or the root when the parser produced none."""
    body = root.find("body")
    return body if body is not None else root


Matcher = Callable[[etree._Element], list[etree._Element]]
_IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"
_SIMPLE_SELECTOR = re.compile(
    rf"\.(?P<cls>{_IDENT})|#(?P<id>{_IDENT})|\[(?P<attr>[a-z][a-z0-9_-]*)(?P<op>[\^*]?)=(?P<value>{_IDENT})\]")
XPATH_SPACE = re.compile("[ \t\n\r]+")  # what XPath's normalize-space() collapses (cssselect's class test)
_VALUE_TESTS = {"": ". = '{}'", "^": "starts-with(., '{}')", "*": "contains(., '{}')"}


@lru_cache(maxsize=256)
def _compile(selector: str) -> Matcher:
    fast = _attribute_matcher(selector)
    if fast is not None:
        return fast
    compiled = CSSSelector(selector, translator="html")
    return lambda el: [e for e in compiled(el) if isinstance(e.tag, str)]


def _attribute_matcher(selector: str) -> Matcher | None:
    """``.c``, ``#i``, ``[a=v]``, ``[a^=v]``, ``[a*=v]`` as XPath over attribute nodes.

    cssselect's translation (``descendant-or-self::*[@class and contains(...)]``) makes libxml2 build
    an attribute node-set per element, about twice as slow as stepping to the attributes
    (``descendant-or-self::*/@class[...]``) and taking their elements; the result, in document order,
    is the same. The class test's token check is done in Python on the few hits.
    """
    match = _SIMPLE_SELECTOR.fullmatch(selector)
    if match is None:
        return None
    if match["cls"]:
        name = match["cls"]
        classes = etree.XPath(f"descendant-or-self::*/@class[contains(., '{name}')]")
        return lambda el: [value.getparent() for value in classes(el) if name in XPATH_SPACE.split(value)]
    if match["id"]:
        attr, test = "id", _VALUE_TESTS[""].format(match["id"])
    else:
        attr, test = match["attr"], _VALUE_TESTS[match["op"]].format(match["value"])
    values = etree.XPath(f"descendant-or-self::*/@{attr}[{test}]")
    return lambda el: [value.getparent() for value in values(el)]


def css(el: etree._Element, selector: str) -> list[etree._Element]:
    """Elements matching a CSS selector; an invalid selector matches nothing (config typos must not
    crash a crawl)."""
    try:
        return _compile(selector)(el)
    except Exception:  # cssselect raises several unrelated types for bad selectors
        return []


def first(el: etree._Element, selector: str) -> etree._Element | None:
    found = css(el, selector)
    return found[0] if found else None


def is_hidden(el: etree._Element) -> bool:
    """VSB hides U+200B placeholders in ``display:none`` spans; their text is not content."""
    style = el.get("style")  # most elements have none: no regex call then
    return (style is not None and _HIDDEN_STYLE.search(style) is not None) or el.get("hidden") is not None


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
    return norm_space(raw_text_of(el))


def raw_text_of(el: etree._Element) -> str:
    """Visible text with whitespace kept as written (runs of ``&nbsp;`` separate meta fields)."""
    return "".join(text_parts(el))


def text_parts(el: etree._Element) -> list[str]:
    """``list(iter_text(el))``, by plain recursion over children, which is faster than ``iterwalk``
    events; trees deeper than the recursion limit (libxml2 stops at 255 levels, but callers may pass
    other trees) take the ``iterwalk`` path."""
    if el.tag in SKIP_TAGS or is_hidden(el):
        return []
    out: list[str] = []
    try:
        collect_text(el, out)
    except RecursionError:
        return list(iter_text(el))
    return out


def collect_text(el: etree._Element, out: list[str]) -> None:
    """Append the text of a visible ``el`` (see :func:`text_parts`) to ``out``."""
    if el.text:
        out.append(el.text)
    for child in el:
        tag = child.tag
        if isinstance(tag, str):
            if tag not in SKIP_TAGS and not is_hidden(child):
                collect_text(child, out)
        elif tag in UNWALKED:
            continue
        if child.tail:
            out.append(child.tail)


# Nodes ``iterwalk`` does not report without "comment"/"pi" events: iter_text never sees their tails.
UNWALKED = (etree.Comment, etree.ProcessingInstruction)


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
    children = _children_html(el) if len(el) > 1 else None
    if children is None:
        children = "".join([lxml.html.tostring(child, encoding="unicode", with_tail=True) for child in el])
    return _escape(el.text or "") + children


# Containers serialized as plain <tag>…</tag> by libxml2 (not void, no raw text), and attribute names that
# lxml accepts back.
_PLAIN_CONTAINERS = frozenset({"div", "body", "td", "th", "span", "p", "section", "article", "main", "li", "font",
                               "center"})
_PLAIN_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
# lxml.html.tostring drops these (libxml2 may add one); no match spans two children, so once is the same.
_META_CONTENT_TYPE = re.compile(r'<meta http-equiv="Content-Type"[^>]*>')


def _children_html(el: etree._Element) -> str | None:
    """``lxml.html.tostring`` of each child with its tail, joined, from one serialization of ``el``
    with its text and attributes taken off for the moment: per call, lxml's serializer costs about as
    much as a paragraph. None when ``el`` is not a plain container."""
    tag, items = el.tag, el.items()
    if tag not in _PLAIN_CONTAINERS or not all(_PLAIN_ATTRIBUTE.match(name) for name, _ in items):
        return None
    text = el.text
    el.text = None
    el.attrib.clear()
    try:
        html = etree.tostring(el, method="html", encoding="unicode", with_tail=False)
    finally:
        el.text = text
        for name, value in items:
            el.set(name, value)
    start, end = f"<{tag}>", f"</{tag}>"
    if not (html.startswith(start) and html.endswith(end)):
        return None
    html = html[len(start):-len(end)]
    return _META_CONTENT_TYPE.sub("", html) if "<meta" in html else html


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def absolute_url(base: str, href: str | None, schemes: Iterable[str] = ("http", "https")) -> str | None:
    """Resolve ``href`` against ``base``; None for empty, fragment-only or non-web (javascript:) links."""
    href = (href or "").strip()
    if not href or href.startswith("#"):
        return None
    if base and _PLAIN_PATH.match(href):
        joined = _join_plain_path(base, href)
        if joined is not None:
            url, scheme = joined
            return url if scheme in schemes else None
    try:
        url = urljoin(base or "", href)
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in schemes else None


@lru_cache(maxsize=8)
def _http_base(base: str) -> tuple[str, str, str] | None:
    """(scheme, host, path) of an http(s) base URL with a host, as urljoin parses it; None otherwise.
    Cached: all links of a page share their base."""
    try:
        scheme, netloc, path = urlparse(base)[:3]
    except ValueError:
        return None
    return (scheme, netloc, path) if scheme in ("http", "https") and netloc else None


# A relative or absolute path and nothing else: no scheme, host, params, query, fragment or whitespace.
_PLAIN_PATH = re.compile(r"(?!//)[A-Za-z0-9_.~%/-]+\Z")


def _join_plain_path(base: str, path: str) -> tuple[str, str] | None:
    """``(urljoin(base, path), scheme)`` for a ``_PLAIN_PATH`` against an http(s) base with a host, by
    the steps urljoin takes for that case (its dot-segment removal, then urlunparse), without parsing
    ``path`` and the result; None when the base is of another kind (or invalid), for urljoin to handle.
    Links on VSB pages are such paths, and urljoin plus urlsplit cost ~4 µs a link (a fifth of a list
    entry's time), this a third of that."""
    parsed = _http_base(base)
    if parsed is None:
        return None
    scheme, netloc, base_path = parsed
    base_parts = base_path.split("/")
    if base_parts[-1] != "":
        del base_parts[-1]
    if path[:1] == "/":
        segments = path.split("/")
    else:
        segments = base_parts + path.split("/")
        segments[1:-1] = filter(None, segments[1:-1])
    resolved: list[str] = []
    for segment in segments:
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment != ".":
            resolved.append(segment)
    if segments[-1] in (".", ".."):
        resolved.append("")
    joined = "/".join(resolved) or "/"
    if joined[:1] != "/":
        joined = "/" + joined
    return f"{scheme}://{netloc}{joined}", scheme
