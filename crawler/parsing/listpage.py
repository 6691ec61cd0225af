"""VSB column list pages: entries (URL, full title, date) and the pager.

VSB list components render each entry as an element with ``id="line_u<component>_<n>"``; that id is the
one selector shared by every template. Pages without it fall back to structure: the largest group of
sibling ``li``/``tr`` elements that each hold an article link and a date.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from urllib.parse import urldefrag

from lxml import etree

from crawler import vsb

from ._dom import (
    XPATH_SPACE,
    absolute_url,
    body_of,
    css,
    first,
    is_inside,
    iter_text,
    norm_space,
    parse_html,
    text_of,
    text_parts,
)
from .dates import looks_like_date, parse_date
from .model import ListEntry, ListPage, Selectors
from .urls import canonical_article_url, newsid_of

log = logging.getLogger(__name__)

DEFAULT_ITEMS = vsb.LIST_ITEMS  # see _default_items
DEFAULT_NEXT = vsb.NEXT_PAGE  # see _default_next_links
_PAGER_ROOTS = vsb.PAGER_ROOTS  # see _pager_anchor
_ITEM_TAGS = frozenset({"li", "tr", "dd", "div"})  # DEFAULT_ITEMS, see _default_items
_ITEM_IDS = f"[id^={vsb.LIST_ITEM_ID_PREFIX}]"
_PAGER_CLASS = vsb.PAGER_CLASS
_PAGER_BLOCK = f"[class*={_PAGER_CLASS}]"
_PAGER_CLASSES = frozenset({"pagination", "pager", "paging", "pages", "page"})
_COMPONENT = vsb.LIST_ITEM_COMPONENT
_ARTICLE_HREF = vsb.ARTICLE_HREF
_TRUNCATION = re.compile(r"(?:\.{3,}|…+|。{3,})\s*$")
_NEXT_TEXT = re.compile(r"^下一?页\s*[>»›]*$")
_COUNTER = re.compile(r"(?<![\d/])(\d{1,6})\s*/\s*(\d{1,6})(?![\d/])")
_PAGES = re.compile(r"共\s*(\d{1,6})\s*页")
_ITEMS = re.compile(r"共\s*(\d{1,9})\s*条")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_HAS_YEAR = re.compile(r"\d{4}")
_DATED_CLASS = re.compile(r"date|time|rq|sj", re.I)
_YEAR_MONTH = re.compile(r"^(\d{4})\s*[-./年]\s*(\d{1,2})\s*月?$")
_DAY = re.compile(r"^(\d{1,2})\s*日?$")
_YEAR = re.compile(r"^(\d{4})\s*年?$")
_MONTH_DAY = re.compile(r"^(\d{1,2})\s*[-./月]\s*(\d{1,2})\s*日?$")

EMPTY = ListPage(entries=[], next_url=None, total_pages=None, total_items=None)


def parse_list_page(html: str, page_url: str, selectors: Selectors | None = None, *,
                    reference: datetime | None = None) -> ListPage:
    """Entries and pager of a list page; never raises (an empty ListPage for unusable input).

    ``reference`` (default: now) gives the year of month-day-only dates such as ``[10-24]``.
    """
    try:
        return _parse(html, page_url, selectors or Selectors(), reference)
    except Exception:  # a bad page must cost one page, not the crawl
        log.warning("list page %s could not be parsed", page_url, exc_info=True)
        return EMPTY


def _parse(html: str, page_url: str, selectors: Selectors, reference: datetime | None) -> ListPage:
    root = parse_html(html)
    next_link = _next_link(root, page_url, selectors)
    pager_text = _pager_text(root, next_link)
    items = _items(root, selectors, lambda: _pager_anchor(root, next_link))
    entries: list[ListEntry] = []
    seen: set[str] = set()
    for item in items:
        entry = _entry(item, page_url, selectors, reference)
        if entry is not None and entry.url not in seen:
            seen.add(entry.url)
            entries.append(entry)
    next_url = _next_url(next_link, page_url)
    return ListPage(entries=entries, next_url=next_url, total_pages=_total_pages(root, pager_text),
                    total_items=_total_items(pager_text))


# ---------------------------------------------------------------- items
def _items(root: etree._Element, selectors: Selectors,
           pager: Callable[[], etree._Element | None]) -> list[etree._Element]:
    if selectors.list_item:
        return _outermost(css(root, selectors.list_item))
    items = _outermost(_default_items(root))
    if items:
        return _main_component(items, pager)
    return _heuristic_items(root)


def _outermost(elements: list[etree._Element]) -> list[etree._Element]:
    """Drop matches nested inside another match (one entry per outer item). ``elements`` are in
    document order (selector results), so an ancestor match always comes first: it is enough to
    remember the elements under the matches kept so far."""
    chosen: list[etree._Element] = []
    covered: set[etree._Element] = set()
    for el in elements:
        if el not in covered:
            chosen.append(el)
            covered.update(el.iter())
    return chosen


def _default_items(root: etree._Element) -> list[etree._Element]:
    """``css(root, DEFAULT_ITEMS)`` from one lookup of ``line_u`` ids instead of four XPath scans."""
    return [el for el in css(root, _ITEM_IDS) if el.tag in _ITEM_TAGS]


def _main_component(items: list[etree._Element],
                    find_pager: Callable[[], etree._Element | None]) -> list[etree._Element]:
    """When several list components share a page (a sidebar "latest news" block beside the column
    list), keep the one(s) sitting closest to the pager: VSB renders the pager inside the list
    component. Without a pager, or with a single component, everything given is kept (and the pager
    is not even looked for)."""
    groups: dict[str, list[etree._Element]] = {}
    for item in items:
        groups.setdefault(_component(item), []).append(item)
    if len(groups) < 2:
        return items
    pager = find_pager()
    if pager is None:
        return items
    distance = {key: _distance_to(group[0], pager) for key, group in groups.items()}
    best = min(distance.values())
    return [item for item in items if distance[_component(item)] == best]


def _component(item: etree._Element) -> str:
    match = _COMPONENT.match(item.get("id") or "")
    return match.group(1) if match else ""


def _distance_to(item: etree._Element, target: etree._Element) -> int:
    """Levels above ``item`` until an ancestor contains ``target``."""
    level, node = 0, item.getparent()
    while node is not None:
        if is_inside(target, node):
            return level
        node, level = node.getparent(), level + 1
    return 10_000


def _heuristic_items(root: etree._Element) -> list[etree._Element]:
    """Largest group of sibling li/tr/dd elements each holding one article link and a date."""
    groups: dict[etree._Element, list[etree._Element]] = {}
    scores: dict[etree._Element, int] = {}
    for el in body_of(root).iter("li", "tr", "dd"):
        parent = el.getparent()
        links = _links(el)
        if parent is None or not links or _item_date_text(el, links[0]) is None:
            continue
        groups.setdefault(parent, []).append(el)
        article_urls = {href for href in (a.get("href") or "" for a in links) if _ARTICLE_HREF.search(href)}
        scores[parent] = scores.get(parent, 0) + (1 if len(article_urls) == 1 else 0)
    if not groups:
        return []
    best = max(groups, key=lambda p: (scores[p], len(groups[p])))
    return groups[best] if scores[best] > 0 else []


def _links(item: etree._Element) -> list[etree._Element]:
    return [a for a in item.iter("a") if (a.get("href") or "").strip()]


# ---------------------------------------------------------------- one entry
def _pick_link(item: etree._Element, page_url: str, selectors: Selectors) -> tuple[etree._Element, str] | None:
    """The article link: an article-shaped href first, one with a ``title`` attribute preferred."""
    if selectors.list_link:
        candidates = [a for el in css(item, selectors.list_link) for a in ([el] if el.tag == "a" else _links(el))]
    else:
        candidates = _links(item)
    resolved = [(a, url) for a in candidates if (url := absolute_url(page_url, a.get("href")))]
    if len(resolved) < 2:
        return resolved[0] if resolved else None

    def rank(pair: tuple[etree._Element, str]) -> tuple[int, int]:
        a, url = pair
        return (0 if _ARTICLE_HREF.search(url) else 1, 0 if norm_space(a.get("title") or "") else 1)

    return min(resolved, key=rank)  # min is stable: the first of equals wins


def _shown_text(link: etree._Element) -> str:
    """The title as the list shows it: a heading inside the link if any (``<a><h4>T</h4><p>date``),
    else the link text without date-only children."""
    for heading in link.iter(*_HEADINGS):
        text = text_of(heading)
        if text:
            return text
    for el in link.iter():
        if el is not link and "tit" in (el.get("class") or "").lower() and text_of(el):
            return text_of(el)
    parts: list[str] = [link.text or ""]
    for child in link:
        if isinstance(child.tag, str) and not looks_like_date(text_of(child)):
            parts.extend(iter_text(child))
        if child.tail:
            parts.append(child.tail)
    return norm_space("".join(parts))


def _title(link: etree._Element) -> tuple[str, str, bool]:
    """(full title, list text, truncated?) — the ``title`` attribute holds the untruncated title."""
    shown = _shown_text(link)
    attr = norm_space(link.get("title") or "")
    if attr:
        return attr, shown or attr, False
    if _TRUNCATION.search(shown):
        return _TRUNCATION.sub("", shown).rstrip(), shown, True
    return shown, shown, not shown  # no title at all: the caller must take the article's


def _entry(item: etree._Element, page_url: str, selectors: Selectors,
           reference: datetime | None) -> ListEntry | None:
    picked = _pick_link(item, page_url, selectors)
    if picked is None:
        return None
    link, url = picked
    url = canonical_article_url(url)
    title, shown, truncated = _title(link)
    date_text = _item_date_text(item, link, selectors)
    published = parse_date(date_text, reference)[0] if date_text else None
    return ListEntry(url=url, title=title, list_text=shown, title_truncated=truncated,
                     published=published, newsid=newsid_of(url))


# ---------------------------------------------------------------- dates
def _item_date_text(item: etree._Element, link: etree._Element, selectors: Selectors | None = None) -> str | None:
    """Text holding the entry's date, by preference: the configured element; an element that is only
    a full date (date/time classes first); day and year-month split across spans; an element that is
    only a month-day; a full date anywhere outside the link."""
    if selectors is not None and selectors.list_date:
        for el in css(item, selectors.list_date):
            text = text_of(el)
            if parse_date(text)[0] is not None:
                return text
        return None
    elements = [el for el in item.iter() if el is not item and isinstance(el.tag, str)]
    dated = [el for el in elements if _DATED_CLASS.search(el.get("class") or "")]
    month_day = None
    texts: dict[etree._Element, str] = {}  # a dated element comes twice
    for el in dated + elements:
        text = texts.get(el)
        if text is None:
            text = texts[el] = text_of(el)
        if looks_like_date(text):
            if _HAS_YEAR.search(text):
                return text
            month_day = month_day or text
    # a year printed apart from the month-day (<b>2023</b><i>12-01</i>) beats guessing the year
    split = _split_date(item)
    if split or month_day:
        return split or month_day
    outside = norm_space("".join(_texts_outside(item, link)))
    return outside if parse_date(outside)[0] is not None else None


def _texts_outside(item: etree._Element, link: etree._Element) -> Iterable[str]:
    walker = etree.iterwalk(item, events=("start", "end"))
    for event, node in walker:
        if event == "start" and node is link:
            walker.skip_subtree()
        elif event == "start" and node.text and isinstance(node.tag, str) and node.tag != "script":
            yield node.text + " "
        elif event == "end" and node is not item and node.tail:
            yield node.tail + " "


def _split_date(item: etree._Element) -> str | None:
    """``<span>24</span><span>2024-10</span>`` or ``<b>2024</b><i>10-24</i>`` -> one date text."""
    leaves = [text_of(el) for el in item.iter() if isinstance(el.tag, str) and len(el) == 0]
    leaves = [t for t in leaves if t]
    year_month = next((m for t in leaves if (m := _YEAR_MONTH.match(t))), None)
    day = next((m for t in leaves if (m := _DAY.match(t))), None)
    if year_month and day:
        return f"{year_month.group(1)}-{year_month.group(2)}-{day.group(1)}"
    year = next((m for t in leaves if (m := _YEAR.match(t))), None)
    month_day = next((m for t in leaves if (m := _MONTH_DAY.match(t))), None)
    if year and month_day:
        return f"{year.group(1)}-{month_day.group(1)}-{month_day.group(2)}"
    return None


# ---------------------------------------------------------------- pager
def _next_link(root: etree._Element, page_url: str, selectors: Selectors) -> etree._Element | None:
    """The enabled "下页" link; a disabled ``p_next_d`` span has no link and so yields None."""
    if selectors.next_page:
        for el in css(root, selectors.next_page):
            link = el if el.tag == "a" else first(el, "a[href]")
            if link is not None and absolute_url(page_url, link.get("href")):
                return link
        return None
    for link in _default_next_links(root):
        if absolute_url(page_url, link.get("href")):
            return link
    body = body_of(root)
    maybe_next = set(_MAYBE_NEXT_LINKS(body))  # the text below starts with 下, so the link's text holds it
    for link in body.iter("a"):
        if link not in maybe_next:
            continue
        text = norm_space(text_of(link) or link.get("title") or "").replace(" ", "")
        if _NEXT_TEXT.match(text) and absolute_url(page_url, link.get("href")):
            return link
    return None


_MAYBE_NEXT_LINKS = etree.XPath("descendant-or-self::a[contains(., '下') or contains(@title, '下')]")
_NEXT_CLASSES = frozenset({"Next", "next", "p_next"})


def _default_next_links(root: etree._Element) -> list[etree._Element]:
    """``css(root, DEFAULT_NEXT)`` from one lookup of class attributes instead of four XPath scans of the
    page: links in a ``span.p_next``, and links of class Next/next/p_next; both with an href."""
    found: set[etree._Element] = set()
    for el in css(root, "[class*=ext]"):  # each of the classes contains "ext"
        classes = XPATH_SPACE.split(el.get("class", ""))
        if el.tag == "span" and "p_next" in classes:
            found.update(a for a in el.iter("a") if a is not el)
        elif el.tag == "a" and not _NEXT_CLASSES.isdisjoint(classes):
            found.add(el)
    if not found:
        return []
    return [a for a in root.iter("a") if a in found and a.get("href") is not None]


def _next_url(link: etree._Element | None, page_url: str) -> str | None:
    if link is None:
        return None
    url = absolute_url(page_url, link.get("href"))
    if url is None:
        return None
    url = urldefrag(url)[0]
    return None if url == urldefrag(page_url)[0] else url


def _pager_anchor(root: etree._Element, next_link: etree._Element | None) -> etree._Element | None:
    """The first of ``css(root, _PAGER_ROOTS)``, else the next link. Found by one scan with early exit:
    XPath evaluates each of the six selectors over the whole page before the union is sorted."""
    for el in root.iter(etree.Element):
        classes = el.get("class")
        if classes and (_PAGER_CLASS in classes or (
                "pag" in classes and not _PAGER_CLASSES.isdisjoint(XPATH_SPACE.split(classes)))):
            return el
    return next_link


def _pager_text(root: etree._Element, next_link: etree._Element | None) -> str:
    """Text of the pager block (counters like ``1/11``, ``共52条``), words kept apart by spaces."""
    roots = css(root, _PAGER_BLOCK)
    if not roots and next_link is not None:
        node = next_link
        for _ in range(3):
            parent = node.getparent()
            if parent is None or len(text_of(parent)) > 300:
                break
            node = parent
        roots = [node]
    if not roots:
        roots = [el for el in body_of(root).iter("span", "div", "td", "p", "em", "li")
                 if len(el) <= 3 and (_PAGES.search(text_of(el)) or _ITEMS.search(text_of(el)))
                 and len(text_of(el)) <= 60]
    return " ".join(norm_space(" ".join(text_parts(r))) for r in roots[:3])


def _total_pages(root: etree._Element, pager_text: str) -> int | None:
    for el in css(root, vsb.PAGER_COUNTER):
        match = _COUNTER.fullmatch(text_of(el))
        if match and int(match.group(1)) <= int(match.group(2)):
            return int(match.group(2))
    for match in _COUNTER.finditer(pager_text):
        if 1 <= int(match.group(1)) <= int(match.group(2)):
            return int(match.group(2))
    match = _PAGES.search(pager_text)
    if match:
        return int(match.group(1))
    numbers = [int(t) for t in (text_of(el) for el in css(root, vsb.PAGE_NUMBERS)) if t.isdigit()]
    return max(numbers) if numbers else None


def _total_items(pager_text: str) -> int | None:
    match = _ITEMS.search(pager_text)
    return int(match.group(1)) if match else None
