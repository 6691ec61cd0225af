"""Find a column's list page from any page of the site, and recognise VSB sites.

The column list URL is guessed from pinyin initials at best (VSB-SITE-MODEL §1), so it is looked up
by the column's name: the breadcrumb of an article names its column, navigation menus name the rest.
"""

from __future__ import annotations

import re
from urllib.parse import urldefrag, urlsplit

from lxml import etree

from ._dom import absolute_url, body_of, parse_html, text_of
from .article import breadcrumb

_HOME_PATHS = frozenset({"", "/", "/index.htm", "/index.html", "/index.jsp", "/main.htm", "/default.htm"})
_HOME_TEXTS = frozenset({"首页", "网站首页", "主页", "返回首页", "学校首页", "Home", "HOME", "home"})
_COLUMN_NAV = re.compile(r"left|lm|lanmu|column|side|sub|ejdh|erji|n-nav|list-nav", re.I)
_ANY_NAV = re.compile(r"nav|menu|dh|daohang", re.I)
_WS = re.compile(r"\s+")

# Markers printed by the VSB template engine itself; one is enough.
_STRONG_MARKERS = ("Visual SiteBuilder", "_newscontent_fromname", "v_news_content", "pb_sys_common",
                   "/system/resource/js/", "_sitegray/", "vsbscreen", "_jsq_(", "_showDynClick",
                   "/system/resource/css/pagedown")
# Markers that other systems could print by coincidence; two are needed.
_WEAK_MARKERS = ("line_u", "/__local/", "wbtreeid", "wbnewsid", "DownloadAttachUrl", "vsb_content",
                 "CustomerNO", "pb_sys_", "vsbcontent_", "img_vsb_content")


def _key(text: str) -> str:
    return _WS.sub("", text)


def _is_home(text: str, url: str) -> bool:
    return text in _HOME_TEXTS or urlsplit(url).path.lower() in _HOME_PATHS


def _nav_tier(a: etree._Element) -> int:
    """1 for a column (left/sub) menu, 2 for any other navigation, 3 for links elsewhere."""
    tier = 3
    node = a.getparent()
    while node is not None and tier > 1:
        marks = " ".join(filter(None, (node.get("class"), node.get("id"))))
        if marks and _COLUMN_NAV.search(marks):
            tier = 1
        elif tier > 2 and (node.tag == "nav" or (marks and _ANY_NAV.search(marks))):
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
        tier = _nav_tier(a)
        if best is None or tier < best[0]:
            best = (tier, urldefrag(url)[0])
    return best[1] if best else None


def looks_like_vsb(html: str) -> bool:
    """True when the page carries VSB (博达 Visual SiteBuilder) template fingerprints."""
    if not isinstance(html, str):
        return False
    if any(marker in html for marker in _STRONG_MARKERS):
        return True
    return sum(marker in html for marker in _WEAK_MARKERS) >= 2

