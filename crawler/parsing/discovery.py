"""Find a column's list page from any page of the site.

The column list URL is guessed from pinyin initials at best (VSB-SITE-MODEL §1), so it is looked up
by the column's name: the breadcrumb of an article names its column, navigation menus name the rest.
"""

from __future__ import annotations

import re
from urllib.parse import urldefrag

from lxml import etree

from crawler import vsb

from ._dom import absolute_url, body_of, parse_html, text_of
from .article import breadcrumb

_WS = re.compile(r"\s+")


def _key(text: str) -> str:
    return _WS.sub("", text)


def _is_home(text: str, url: str) -> bool:
    return text in vsb.HOME_TEXTS or vsb.is_home_url(url)


def nav_tier(a: etree._Element) -> int:
    """1 for a link in a column (left/sub) menu, 2 in any other navigation, 3 elsewhere."""
    tier = 3
    node = a.getparent()
    while node is not None and tier > 1:
        marks = " ".join(filter(None, (node.get("class"), node.get("id"))))
        if marks and vsb.COLUMN_NAV.search(marks):
            tier = 1
        elif tier > 2 and (node.tag == "nav" or (marks and vsb.ANY_NAV.search(marks))):
            tier = 2
        node = node.getparent()
    return tier


def find_column_list_url(html: str, page_url: str, column: str | None) -> str | None:
    """Absolute URL of the column's list page, or None.

    With a column name: the first link whose whitespace-free text equals it, preferring the breadcrumb,
    then column menus, then other navigation, then any link. Without one: the breadcrumb's last link.
    Links to the home page are never returned. Never raises.
    """
    try:
        root = parse_html(html)
        trail = [(t, urldefrag(u)[0]) for t, u in breadcrumb(root, page_url) if not _is_home(t, u)]
        if column is None:
            return trail[-1][1] if trail else None
        wanted = _key(column)
        if not wanted:
            return None
        for text, url in trail:
            if _key(text) == wanted:
                return url
        return _menu_link(root, page_url, wanted)
    except Exception:  # discovery is best effort; a bad page means "not found"
        return None


def _menu_link(root: etree._Element, page_url: str, wanted: str) -> str | None:
    best: tuple[int, str] | None = None
    for a in body_of(root).iter("a"):
        text = text_of(a) or (a.get("title") or "")
        url = absolute_url(page_url, a.get("href"))
        if url is None or _key(text) != wanted or _is_home(text, url):
            continue
        tier = nav_tier(a)
        if best is None or tier < best[0]:
            best = (tier, urldefrag(url)[0])
    return best[1] if best else None
