"""VSB article pages: title, meta line, sanitized body, images, attachments, breadcrumb.

Anchors in order of stability: ``form[name=_newscontent_fromname]`` wraps the article, ``.v_news_content``
holds the body, attachments are ``download.jsp`` links. Titles and meta lines have no common markup,
so they are found by position (inside the form, outside the body) and by their labels.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import unquote, urlsplit

from lxml import etree

from crawler import vsb
from db.filetypes import DOCUMENT_EXTENSIONS, url_extension

from ._dom import (
    SKIP_TAGS,
    UNWALKED,
    absolute_url,
    collect_text,
    css,
    first,
    inner_html,
    is_hidden,
    is_inside,
    norm_space,
    parse_html,
    raw_text_of,
    remove,
    text_of,
)
from .dates import parse_date
from .model import ArticlePage, AttachmentLink, Selectors
from .sanitize import sanitize_and_text

log = logging.getLogger(__name__)
_string = etree.XPath("string()")

FORM = vsb.ARTICLE_FORM  # looked up by _form()
BODY_SELECTORS = vsb.BODY_SELECTORS
TITLE_SELECTORS = vsb.TITLE_SELECTORS
_STYLE_FIELDS = vsb.STYLE_FIELDS

# Longer labels first so that 责任编辑 is not read as 编辑 and 发布时间 not as 时间.
_FIELD_LABELS = {
    "published": ("发布时间", "发布日期", "发表时间", "发文时间", "更新时间", "时间", "日期"),
    "author": ("作者", "撰稿人", "撰稿", "撰文"),
    "origin": ("供稿单位", "发布单位", "发布部门", "来源单位", "来源", "供稿"),
    "editor": ("责任编辑", "网络编辑", "责编", "编辑"),
    None: ("摄影", "图片", "审核人", "审核", "审稿", "初审", "复审", "终审", "校对", "点击数", "点击量",
           "点击率", "点击", "浏览量", "浏览次数", "浏览", "阅读量", "阅读次数", "阅读", "访问量", "字号"),
}
_LABEL_KIND = {label: kind for kind, labels in _FIELD_LABELS.items() for label in labels}
_LABEL_RE = re.compile("(" + "|".join(sorted(_LABEL_KIND, key=len, reverse=True)) + r")\s*[:：]")
_VALUE_END = re.compile(r"[\s\u00a0\u3000]{2,}")
_VALUE_STRIP = " \t\r\n\u00a0\u3000|｜丨/【】[]"
_CREDITS = re.compile(r"[（(]\s*((?:供稿|审核|审稿|编辑|责任编辑|撰稿|作者|来源|摄影)\s*[:：][^（()）]*)[)）]\s*$")
_PREV_NEXT = re.compile(r"^(上一篇|下一篇|上一条|下一条|上篇|下篇)\s*[:：]")
# A text node whose first visible character is 上 or 下 (what norm_space drops or collapses comes before it).
_LEADING_UP_DOWN = re.compile("[\\s\u200b\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]*[上下]")
_PRINT_CLOSE = re.compile(r"^[【\[]?\s*(打印本页|打印|关闭窗口|关闭|返回顶部)\s*[】\]]?$")
_DOWNLOAD = vsb.DOWNLOAD_HREF
_POSITION_LABEL = vsb.POSITION_LABEL

EMPTY = ArticlePage(title=None, published=None, date_only=False, author=None, origin=None, editor=None,
                    body_html=None, body_text="")


def parse_article(html: str, page_url: str, selectors: Selectors | None = None) -> ArticlePage:
    """Everything the feed needs from an article page; never raises (fields None/empty when absent)."""
    try:
        return _parse(html, page_url, selectors or Selectors())
    except Exception:  # one broken page must not stop a crawl
        log.warning("article %s could not be parsed", page_url, exc_info=True)
        return EMPTY


def _parse(html: str, page_url: str, selectors: Selectors) -> ArticlePage:
    root = parse_html(html)
    form = _form(root)
    scope = form if form is not None else root
    body = _find_body(root, selectors)
    fields = _meta_fields(root, scope, body, selectors)
    title = _title(root, form, body, selectors)
    attachments = _attachments(root, scope, body, page_url, selectors)
    trail = breadcrumb(root, page_url, exclude=body)
    pubdate, source = _head_meta(root, "pubdate"), _head_meta(root, "contentsource")
    body_html, body_text, images = _body(body, page_url)  # edits the tree: everything reading it comes first
    for kind, value in _credits(body_text).items():
        if fields.get(kind) is None:
            fields[kind] = value
    published, date_only = _published(fields.get("published"), pubdate)
    return ArticlePage(
        title=title,
        published=published,
        date_only=date_only,
        author=fields.get("author"),
        origin=fields.get("origin") or source,
        editor=fields.get("editor"),
        body_html=body_html,
        body_text=body_text,
        images=images,
        attachments=attachments,
        breadcrumb=trail,
    )


# ---------------------------------------------------------------- title
def _title(root: etree._Element, form: etree._Element | None, body: etree._Element | None,
           selectors: Selectors) -> str | None:
    if selectors.title:
        for el in css(root, selectors.title):
            if text_of(el):
                return text_of(el)
    if form is not None:
        for selector in TITLE_SELECTORS:
            for el in css(form, selector):
                text = text_of(el)
                if _outside(el, body) and text and not _LABEL_RE.match(text):  # not the meta line
                    return text
    meta_title = _head_meta(root, "articletitle")
    if meta_title:
        return meta_title
    return _title_from_head(root)


def _outside(el: etree._Element, body: etree._Element | None) -> bool:
    """Neither inside the body (sub-headings) nor around it (wrappers holding the whole article)."""
    return body is None or not (is_inside(el, body) or is_inside(body, el))


def _title_from_head(root: etree._Element) -> str | None:
    """``<title>`` is ``<article title>-<site name>``; a suffix starting with a digit is part of the
    title (``2024-2025学年``), not a site name."""
    el = root.find(".//title")
    text = norm_space(_string(el) if el is not None else "")
    head, sep, tail = text.rpartition("-")
    if sep and tail.strip() and not tail.strip()[0].isdigit():
        text = head.rstrip(" -")  # may leave nothing: a blank title before the site name
    return text or None


def _head_meta(root: etree._Element, name: str) -> str | None:
    """Content of ``<meta name=...>`` (case-insensitive name), e.g. whu's ArticleTitle/PubDate."""
    for meta in root.iter("meta"):
        if (meta.get("name") or "").strip().lower() == name:
            value = norm_space(meta.get("content") or "")
            if value:
                return value
    return None


# ---------------------------------------------------------------- meta line
def labelled_fields(text: str) -> dict[str, str | None]:
    """Split a meta line like ``发布时间：2024-10-24  作者：  来源：组织部`` into fields.

    A value runs to the next label or to two or more spaces; an empty label gives None. Keys:
    published, author, origin, editor (first non-empty value wins).
    """
    fields: dict[str, str | None] = {}
    matches = list(_LABEL_RE.finditer(text))
    for index, match in enumerate(matches):
        kind = _LABEL_KIND[match.group(1)]
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        raw = text[match.end():end].lstrip(" \t\u00a0\u3000")
        raw = _VALUE_END.split(raw, maxsplit=1)[0]
        value = norm_space(raw.strip(_VALUE_STRIP)) or None
        if kind is not None and fields.get(kind) is None:
            fields[kind] = value
    return fields


def _meta_fields(root: etree._Element, scope: etree._Element, body: etree._Element | None,
                 selectors: Selectors) -> dict[str, str | None]:
    """The labelled meta line; unlabelled old-template ``timestyle``/``authorstyle`` values fill gaps."""
    element, text = _meta_element(root, scope, body, selectors)
    fields = labelled_fields(text) if element is not None else {}
    for kind, selector in _STYLE_FIELDS.items():
        if fields.get(kind) is None:
            el = first(scope, selector)
            value = text_of(el) if el is not None and _outside(el, body) else ""
            if value and not _LABEL_RE.search(value):
                fields[kind] = value
    return fields


def _meta_element(root: etree._Element, scope: etree._Element, body: etree._Element | None,
                  selectors: Selectors) -> tuple[etree._Element | None, str]:
    """The element with the most field labels outside the body (the deepest one among equals, the first
    in document order among those), and its visible text.

    Every label ends in a colon, so only elements whose visible text holds a colon can qualify: the
    ancestors of text nodes with a colon, up to the first hidden or skipped one (whose text, and its
    ancestors' view of this node, is empty) or the first one holding the body. Walking up from such a
    node, visible text only grows (each text is built from the child's), so the walk also stops at the
    first element over 500 characters. That evaluates a handful of elements instead of the visible text
    of every element in the scope. A parent with its child's very text has its labels and a lower
    depth: it cannot win, and its labels are not counted.
    """
    if selectors.meta:
        element = first(root, selectors.meta)
        return element, raw_text_of(element) if element is not None else ""
    holds_body = set(body.iterancestors()) | {body} if body is not None else set()
    seen: set[etree._Element] = set()
    best, best_key, best_text = None, (0, 0), ""
    for node in _colon_text_owners(scope):
        if body is not None and is_inside(node, body):
            continue
        depth = _depth(node)
        el: etree._Element | None = node
        child, child_text = None, ""
        while el is not None and el not in seen and el not in holds_body:
            if el.tag in SKIP_TAGS or is_hidden(el):
                break  # its text is empty, and the colon is invisible to its ancestors
            seen.add(el)
            text = raw_text_of(el) if child is None else _text_around(el, child, child_text)
            if len(text) > 500:
                break
            if child is None or text != child_text:
                kinds = {_LABEL_KIND[label] for label in _LABEL_RE.findall(text)}
                kinds.discard(None)
                key = (len(kinds), depth)
                if kinds and key > best_key:
                    best, best_key, best_text = el, key, text
            if el is scope:
                break
            child, child_text = el, text
            el, depth = el.getparent(), depth - 1
    return best, best_text


def _text_around(el: etree._Element, child: etree._Element, child_text: str) -> str:
    """``raw_text_of(el)`` for a visible ``el`` when the visible text of its visible ``child`` is known."""
    out = [el.text] if el.text else []
    try:
        for node in el:
            if node is child:
                out.append(child_text)
            elif isinstance(node.tag, str):
                if node.tag not in SKIP_TAGS and not is_hidden(node):
                    collect_text(node, out)
            elif node.tag in UNWALKED:
                continue
            if node.tail:
                out.append(node.tail)
    except RecursionError:
        return raw_text_of(el)
    return "".join(out)


def _colon_text_owners(scope: etree._Element) -> list[etree._Element]:
    """Elements directly holding a text node with a colon in ``scope``, in document order of the nodes
    (a tail belongs to the parent of its element; ``scope``'s own tail is outside)."""
    owners = []
    for el in scope.iter():
        text = el.text
        if text and (":" in text or "：" in text) and isinstance(el.tag, str):
            owners.append(el)
        text = el.tail
        if text and el is not scope and (":" in text or "：" in text):
            parent = el.getparent()
            if parent is not None:
                owners.append(parent)
    return owners


def _depth(el: etree._Element) -> int:
    depth, node = 0, el.getparent()
    while node is not None:
        depth, node = depth + 1, node.getparent()
    return depth


def _published(value: str | None, pubdate: str | None) -> tuple[datetime | None, bool]:
    """The meta-line date; ``<meta name="PubDate">`` fills in when the line is missing or lacks the
    time of the same day."""
    published, date_only = parse_date(value) if value else (None, False)
    if pubdate:
        meta_value, meta_date_only = parse_date(pubdate)
        if meta_value is not None and (published is None or (
                date_only and not meta_date_only and meta_value.date() == published.date())):
            return meta_value, meta_date_only
    return published, date_only


def _credits(body_text: str) -> dict[str, str | None]:
    """``（供稿：宣传部 审核：… 编辑：…）`` closing the body (szjj.ghu.edu.cn style)."""
    lines = body_text.splitlines()
    if not lines:
        return {}
    match = _CREDITS.search(lines[-1])
    return labelled_fields(match.group(1)) if match else {}


# ---------------------------------------------------------------- body
def _form(root: etree._Element) -> etree._Element | None:
    """``first(root, FORM)`` by tag lookup in C instead of XPath."""
    return next((form for form in root.iter("form") if form.get("name") == vsb.ARTICLE_FORM_NAME), None)


def _find_body(root: etree._Element, selectors: Selectors) -> etree._Element | None:
    for selector in ((selectors.body,) if selectors.body else BODY_SELECTORS):
        el = first(root, selector)
        if el is not None:
            return el
    return None


def _strip_navigation(body: etree._Element) -> None:
    """Remove 上一篇/下一篇 and 打印/关闭 blocks that old templates put inside the body container.

    Only two kinds of element can qualify, so only they are tested: links (打印/关闭 is a link's whole
    text), and elements whose visible text starts with 上/下 -- the ancestors of a text node that does.
    Removing an element changes the text of no element after it in document order, so testing each one
    as it is reached gives the same result as testing the tree as it was.
    """
    leading: set[etree._Element] = set()  # elements whose visible text may start with 上/下

    def mark(node: etree._Element | None) -> None:
        while node is not None and node is not body and node not in leading:
            leading.add(node)
            node = node.getparent()

    links: list[etree._Element] = []
    for el in body.iter():
        tag, text, tail = el.tag, el.text, el.tail
        if tag == "a" and el is not body:
            links.append(el)
        if text and ("上" in text or "下" in text) and isinstance(tag, str) and _LEADING_UP_DOWN.match(text):
            mark(el)
        if tail and ("上" in tail or "下" in tail) and el is not body and _LEADING_UP_DOWN.match(tail):
            mark(el.getparent())
    candidates = leading.union(links)
    if not candidates:
        return
    for el in [el for el in body.iter() if el in candidates]:
        if el.tag == "a" or el.find(".//a") is not None:
            text = text_of(el)
            if len(text) < 200 and _PREV_NEXT.match(text) and el.find(".//a") is not None or (
                    el.tag == "a" and _PRINT_CLOSE.match(text)):
                remove(el)


def _body(body: etree._Element | None, page_url: str) -> tuple[str | None, str, list[str]]:
    """(sanitized HTML, plain text, absolute image URLs) of the body container, which is cleaned in place
    (no copy): the caller reads everything else from the page first."""
    if body is None:
        return None, "", []
    _strip_navigation(body)
    for el in [el for el in body.iter() if el is not body and isinstance(el.tag, str) and is_hidden(el)]:
        remove(el)  # hidden images and U+200B spans are not content
    raw = inner_html(body)
    body_html, body_text = sanitize_and_text(raw, page_url)
    return body_html, body_text, _images(body, page_url)


def _images(body: etree._Element, page_url: str) -> list[str]:
    """``src`` (or VSB's ``orisrc``) of every body image, resolved but otherwise as written."""
    images = []
    for img in body.iter("img"):
        src = (img.get("src") or "").strip() or (img.get("orisrc") or "").strip()
        url = absolute_url(page_url, src)
        if url:
            images.append(url)
    return images


# ---------------------------------------------------------------- attachments
def _attachments(root: etree._Element, scope: etree._Element, body: etree._Element | None, page_url: str,
                 selectors: Selectors) -> list[AttachmentLink]:
    """``download.jsp`` links after the body (the 附件 list), then files linked inside the body."""
    if selectors.attachments:
        links = [a for el in css(root, selectors.attachments) for a in ([el] if el.tag == "a" else el.iter("a"))]
    else:
        links = list(scope.iter("a"))
    listed: list[AttachmentLink] = []
    in_body: list[AttachmentLink] = []
    seen: set[str] = set()
    body_links = set(body.iter("a")) if body is not None else set()
    for a in links:
        href = (a.get("href") or "").strip()
        wanted = bool(selectors.attachments) or _DOWNLOAD.search(href) is not None
        inside = a in body_links
        if not (wanted or inside):
            continue  # other links outside the body are never files: no need to resolve them
        url = absolute_url(page_url, href)
        if url is None or url in seen:
            continue
        if wanted:
            target = in_body if inside else listed
        elif url_extension(url) in DOCUMENT_EXTENSIONS:
            target = in_body
        else:
            continue
        seen.add(url)
        target.append(AttachmentLink(name=_attachment_name(a, url), url=url, in_body=inside))
    return listed + in_body


def _attachment_name(a: etree._Element, url: str) -> str:
    """The link text is the only place VSB shows the file name (``wbfileid`` carries no extension)."""
    name = text_of(a) or norm_space(a.get("title") or "")
    if name:
        return name
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or url


# ---------------------------------------------------------------- breadcrumb
def breadcrumb(root: etree._Element, page_url: str, exclude: etree._Element | None = None) -> list[tuple[str, str]]:
    """(text, absolute url) of the links in the "您现在的位置" block, in order."""
    container = _breadcrumb_container(root, exclude)
    if container is None:
        return []
    trail = []
    for a in container.iter("a"):
        text, url = text_of(a), absolute_url(page_url, a.get("href"))
        if text and url:
            trail.append((text, url))
    return trail


def _breadcrumb_container(root: etree._Element, exclude: etree._Element | None) -> etree._Element | None:
    for node in _position_label_holders(root):
        if is_inside(node, exclude) or node.tag in ("script", "style", "title"):
            continue
        for _ in range(3):  # the label may sit in its own <span> beside the links
            if node is None:
                break
            if node.find(".//a") is not None:
                return node
            node = node.getparent()
    for el in css(root, vsb.BREADCRUMB_CLASSES):
        if not is_inside(el, exclude) and el.find(".//a") is not None and el.tag not in ("body", "html"):
            return el
    return None


def _bodies(root: etree._Element) -> list[etree._Element]:
    """What XPath's ``//body`` finds: on broken pages libxml2 may put elements (a second ``<body>``)
    beside the root element, at the top of the document."""
    top = root.getroottree().getroot()
    if top is None:
        return []
    tops = [*reversed(list(top.itersiblings(preceding=True))), top, *top.itersiblings()]
    return [body for el in tops if isinstance(el.tag, str) for body in el.iter("body")]


def _position_label_holders(root: etree._Element) -> Iterator[etree._Element]:
    """For each text node of ``<body>`` holding a 位置 label (``//body//text()``), in document order: the
    element holding it as its text, or the one it is the tail of.

    Lazily, so that the search stops at the first usable label, near the top of a page. ``iter()`` meets
    a tail before the text inside its element; the tail is held back until the walk leaves the element.
    """
    scanned: list[etree._Element] = []
    for body in _bodies(root):
        if any(is_inside(body, outer) for outer in scanned):
            continue  # (XPath would not visit a nested <body> twice)
        scanned.append(body)
        held: list[tuple[etree._Element | None, etree._Element]] = []  # (node the walk leaves it at, holder)
        for el in body.iter():
            while held and held[-1][0] is el:
                yield held.pop()[1]
            text = el.text  # (the checks are inlined: this loop runs over every element of the page)
            if text and "位置" in text and isinstance(el.tag, str) and _POSITION_LABEL.search(text):
                yield el
            text = el.tail
            if text and "位置" in text and el is not body and _POSITION_LABEL.search(text):
                held.append((_following(el, body), el))
        while held:
            yield held.pop()[1]


def _following(el: etree._Element, container: etree._Element) -> etree._Element | None:
    """The node ``container.iter()`` yields after the subtree of ``el`` (None: the end)."""
    node: etree._Element | None = el
    while node is not None and node is not container:
        after = node.getnext()
        if after is not None:
            return after
        node = node.getparent()
    return None
