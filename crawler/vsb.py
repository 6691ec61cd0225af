"""What the project knows about VSB (博达 Visual SiteBuilder) sites, in one place.

The parsers (``crawler.parsing``), the spider, discovery and ``scheduler.py add`` all read these facts
from here, so that a template seen in the wild is taught to every part at once. Evidence for each fact
is in tests/fixtures/replica/VSB-SITE-MODEL.md (section numbers below). Only constants and small
string/regex functions: no lxml, no network, no imports from the rest of the project.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# ---------------------------------------------------------------- markers (§5)
# Printed by the VSB template engine itself; one is enough.
STRONG_MARKERS = ("Visual SiteBuilder", "_newscontent_fromname", "v_news_content", "pb_sys_common",
                  "/system/resource/js/", "_sitegray/", "vsbscreen", "_jsq_(", "_showDynClick",
                  "/system/resource/css/pagedown")
# Could be printed by other systems by coincidence; two are needed.
WEAK_MARKERS = ("line_u", "/__local/", "wbtreeid", "wbnewsid", "DownloadAttachUrl", "vsb_content",
                "CustomerNO", "pb_sys_", "vsbcontent_", "img_vsb_content")


def looks_like_vsb(html: str) -> bool:
    """True when the page carries VSB template fingerprints."""
    if not isinstance(html, str):
        return False
    if any(marker in html for marker in STRONG_MARKERS):
        return True
    return sum(marker in html for marker in WEAK_MARKERS) >= 2


# The visit counter names the template that rendered the page: _jsq_(1015,'/content.jsp',2556,<owner>),
# '/list.jsp' on list pages, '/index.jsp' on the home page (§5).
_JSQ = re.compile(r"_jsq_\(\s*\d+\s*,\s*['\"]/?(\w+)\.jsp['\"]")
ARTICLE_TEMPLATE, LIST_TEMPLATE, HOME_TEMPLATE = "content", "list", "index"


def template_of(html: str) -> str:
    """``content``, ``list``, ``index`` (or another template name) from the counter call; "" without one."""
    match = _JSQ.search(html)
    return match.group(1).lower() if match else ""


# ---------------------------------------------------------------- URLs (§2)
# Article, static form: /info/<treeid>/<newsid>.htm (the path only).
ARTICLE_PATH = re.compile(r"/info/(\d+)/(\d+)\.htm$", re.I | re.A)
# An href that is an article link in either form (static, or a .jsp carrying wbnewsid).
ARTICLE_HREF = re.compile(r"/info/\d+/\d+\.htm|\.jsp\?.*wbnewsid=\d+", re.I)
# Article, dynamic form: /content.jsp?urltype=news.NewsContentUrl&wbtreeid=T&wbnewsid=N (or any
# template-named .jsp carrying both ids); query keys compared in lower case.
TREE_PARAM, NEWS_PARAM, URLTYPE_PARAM = "wbtreeid", "wbnewsid", "urltype"
ARTICLE_URLTYPE = "newscontenturl"  # news.NewsContentUrl; news.DownloadAttachUrl is a file
# Attachments: /system/_content/download.jsp?urltype=news.DownloadAttachUrl&owner=..&wbfileid=..
DOWNLOAD_HREF = re.compile(r"download\.jsp|DownloadAttachUrl", re.I)
# List page k >= 2 of T: /<path>/<slug>/<T-k+1>.htm (reverse numbering: the last page is 1.htm, and every
# file shifts when an article is added). Groups: the folder (with its trailing slash), the file number.
NUMBERED_LIST_PAGE = re.compile(r"^(.*/)(\d+)\.htm$")
# Paths a site's home page is served under (the root first).
HOME_PATHS = frozenset({"", "/", "/index.htm", "/index.html", "/index.jsp", "/main.htm", "/default.htm"})


def static_article_url(scheme: str, host: str, tree: int | str, news: int | str) -> str:
    """``<scheme>://<host>/info/<tree>/<news>.htm`` (``host`` with its port, if any)."""
    return f"{scheme}://{host}/info/{int(tree)}/{int(news)}.htm"


def is_article_url(url: str) -> bool:
    """An article page in either form (not an attachment download)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if ARTICLE_PATH.search(parts.path):
        return True
    query = parts.query.lower()
    return NEWS_PARAM in query and "downloadattachurl" not in query


def is_home_path(path: str) -> bool:
    return path.lower() in HOME_PATHS


def is_home_url(url: str) -> bool:
    try:
        return is_home_path(urlsplit(url).path)
    except ValueError:
        return False


# ---------------------------------------------------------------- default selectors (§3-§5)
LIST_ITEM_ID_PREFIX = "line_u"  # <li id="line_u<component>_<n>">: the one selector every list shares
LIST_ITEMS = "li[id^=line_u], tr[id^=line_u], dd[id^=line_u], div[id^=line_u]"
LIST_ITEM_COMPONENT = re.compile(r"^line_u(\d+)_")
NEXT_PAGE = "span.p_next a[href], a.Next[href], a.next[href], a.p_next[href]"
PAGER_CLASS = "pb_sys"  # pb_sys_common pb_sys_normal pb_sys_style1: VSB's pager block
PAGER_ROOTS = "[class*=pb_sys], .pagination, .pager, .paging, .pages, .page"
PAGER_COUNTER = "span.p_t"  # "共52条" and "1/11"
PAGE_NUMBERS = ".p_no, .p_no_d"
ARTICLE_FORM_NAME = "_newscontent_fromname"  # <form name=...> wraps the article
ARTICLE_FORM = f"form[name={ARTICLE_FORM_NAME}]"
BODY_SELECTORS = (".v_news_content", "[id^=vsb_content]", "#vsb_newscontent", "[id^=vsb_newscontent]",
                  ".article-content", ".article_content", ".arti_content")
TITLE_SELECTORS = ("h1", "h2", "h3", ".title", ".nr-tit", ".arti_title", ".arti-title", ".content-title",
                   ".article-title", ".news-title", ".news_title", "[class^=titlestyle]", ".tit", ".bt")
# Old templates print bare values in numbered classes: <span class="timestyle1139">2024-10-24</span>
STYLE_FIELDS = {"published": "[class^=timestyle]", "author": "[class^=authorstyle]"}
BREADCRUMB_CLASSES = (".dqwz, .position, .location, .breadcrumb, .crumb, .crumbs, [class*=breadcrumb], "
                      "[class*=position], [class*=location], [class*=dqwz], [class*=weizhi]")
POSITION_LABEL = re.compile(r"(您现在的位置|当前位置|现在位置|所在位置|位置)\s*(?:是)?\s*[:：]")

# ---------------------------------------------------------------- navigation hints (§1, §7)
HOME_TEXTS = frozenset({"首页", "网站首页", "主页", "返回首页", "学校首页", "Home", "HOME", "home"})
# class/id of a column (left, sub) menu, and of any navigation block
COLUMN_NAV = re.compile(r"left|lm|lanmu|column|side|sub|ejdh|erji|n-nav|list-nav", re.I)
ANY_NAV = re.compile(r"nav|menu|dh|daohang", re.I)
# the text of a home-page block's link to its column's list
MORE_TEXT = re.compile(r"^(?:查看)?更多|^\+?\s*more\b|^[>»›+]+$", re.I)
