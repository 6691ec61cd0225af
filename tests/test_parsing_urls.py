"""URL identity: dynamic VSB article URLs map to /info/T/N.htm; domain checks are exact."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.parsing import canonical_article_url, is_on_domains, newsid_of

STATIC = "https://zzb.ghu.edu.cn/info/1015/2556.htm"


@pytest.mark.parametrize(
    "url",
    [
        "https://zzb.ghu.edu.cn/content.jsp?urltype=news.NewsContentUrl&wbtreeid=1015&wbnewsid=2556",
        "https://zzb.ghu.edu.cn/content.jsp?wbnewsid=2556&wbtreeid=1015&urltype=news.NewsContentUrl",
        "https://zzb.ghu.edu.cn/neirongye.jsp?urltype=news.NewsContentUrl&wbtreeid=1015&wbnewsid=2556",
        "https://zzb.ghu.edu.cn/nry.jsp?wbtreeid=1015&wbnewsid=2556",
        "https://ZZB.ghu.edu.cn/content.jsp?urltype=news.NewsContentUrl&wbtreeid=1015&wbnewsid=2556#top",
        STATIC,
        STATIC + "#comments",
        "  " + STATIC + "\n",
    ],
)
def test_canonical_article_url(url: str) -> None:
    assert canonical_article_url(url) == STATIC


def test_canonical_keeps_scheme_and_port() -> None:
    url = "http://127.0.0.1:8000/content.jsp?urltype=news.NewsContentUrl&wbtreeid=1015&wbnewsid=7"
    assert canonical_article_url(url) == "http://127.0.0.1:8000/info/1015/7.htm"
    assert canonical_article_url("http://127.0.0.1:8000/info/1015/7.htm") == "http://127.0.0.1:8000/info/1015/7.htm"


@pytest.mark.parametrize(
    "url",
    [
        "https://zzb.ghu.edu.cn/system/_content/download.jsp?urltype=news.DownloadAttachUrl&owner=1&wbfileid=9",
        "https://zzb.ghu.edu.cn/list.jsp?urltype=tree.TreeTempUrl&wbtreeid=1015",
        "https://zzb.ghu.edu.cn/system/resource/code/news/click/clicktimes.jsp?wbnewsid=12&owner=1",
        "https://zzb.ghu.edu.cn/content.jsp?urltype=news.NewsContentUrl&wbtreeid=abc&wbnewsid=2556",
    ],
)
def test_non_article_jsp_urls_are_not_mapped(url: str) -> None:
    assert "/info/" not in canonical_article_url(url)


def test_external_urls_stay_usable() -> None:
    wechat = "https://mp.weixin.qq.com/s/Rk3v9XcQm2LwP7aYdT1hZg"
    assert canonical_article_url(wechat) == wechat
    assert canonical_article_url(wechat + "#rd") == wechat


def test_canonical_never_raises() -> None:
    assert canonical_article_url("http://[::1") == "http://[::1"
    assert canonical_article_url("") == ""
    assert canonical_article_url(None) == ""  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "newsid"),
    [
        (STATIC, 2556),
        ("https://zzb.ghu.edu.cn/content.jsp?urltype=news.NewsContentUrl&wbtreeid=1015&wbnewsid=2556", 2556),
        ("https://mp.weixin.qq.com/s/Rk3v9XcQm2LwP7aYdT1hZg", None),
        ("https://zzb.ghu.edu.cn/dxgz/dxgzdt/3.htm", None),
        ("not a url", None),
    ],
)
def test_newsid_of(url: str, newsid: int | None) -> None:
    assert newsid_of(url) == newsid


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://zzb.ghu.edu.cn/info/1015/2556.htm", True),
        ("https://ghu.edu.cn/", True),
        ("https://www.ghu.edu.cn/x", True),
        ("https://ZZB.GHU.EDU.CN:8443/x", True),
        ("https://evilghu.edu.cn/x", False),
        ("https://ghu.edu.cn.evil.com/x", False),
        ("https://mp.weixin.qq.com/s/abc", False),
        ("/info/1015/2556.htm", False),
        ("http://[::1", False),
    ],
)
def test_is_on_domains(url: str, expected: bool) -> None:
    assert is_on_domains(url, ["ghu.edu.cn"]) is expected


def test_is_on_domains_several_and_odd_domains() -> None:
    assert is_on_domains("https://mp.weixin.qq.com/s/x", ["ghu.edu.cn", ".qq.com"])
    assert not is_on_domains("https://zzb.ghu.edu.cn/", [])
    assert not is_on_domains("https://zzb.ghu.edu.cn/", ["", "  "])


def test_canonical_article_url_never_raises_on_malformed_hosts() -> None:
    from crawler.parsing import canonical_article_url

    assert canonical_article_url("https://c:z@aA[%: 0b#é/info/1/2.htm") == "https://c:z@aA[%: 0b"
    assert canonical_article_url("http://[::1/info/1/2.htm#x") == "http://[::1/info/1/2.htm"


@pytest.mark.parametrize("port", ["", ":1", ":8000", ":45675", ":65535"])
def test_static_urls_take_the_fast_path_and_agree_with_w3lib(port: str) -> None:
    """The regex shortcut must give what w3lib gives, for any port a local mirror may use."""
    from w3lib.url import canonicalize_url

    from crawler.parsing import urls

    url = f"http://127.0.0.1{port}/info/1015/2556.htm"
    assert urls._ALREADY_CANONICAL.match(url)
    assert canonical_article_url(url) == url == canonicalize_url(url, keep_fragments=False)
    assert newsid_of(url) == 2556


# ---------------------------------------------------------------- one article, many spellings (issue 10)
SPELLINGS = {
    "fragment": STATIC + "#top",
    "empty fragment": STATIC + "#",
    "query on the static page": STATIC + "?from=list&t=1",
    "empty query": STATIC + "?",
    "query and fragment": STATIC + "?from=list#top",
    "./ segment": "https://zzb.ghu.edu.cn/info/1015/./2556.htm",
    "../ segment": "https://zzb.ghu.edu.cn/info/9999/../1015/2556.htm",
    "leading ../ segments": "https://zzb.ghu.edu.cn/../../info/1015/2556.htm",
    "upper-case host": "https://ZZB.GHU.EDU.CN/info/1015/2556.htm",
    "upper-case scheme and host": "HTTPS://Zzb.Ghu.Edu.Cn/info/1015/2556.htm",
    "default port": "https://zzb.ghu.edu.cn:443/info/1015/2556.htm",
    "trailing dot segment and default port": "https://zzb.ghu.edu.cn:443/info/1015/./2556.htm#x",
    "dynamic, default port": "https://zzb.ghu.edu.cn:443/content.jsp?urltype=news.NewsContentUrl&wbtreeid=1015"
                             "&wbnewsid=2556",
    "dynamic, upper-case host and fragment": "HTTPS://ZZB.GHU.EDU.CN/content.jsp?wbtreeid=1015&wbnewsid=2556#c",
    "everything at once": "HTTPS://ZZB.ghu.edu.cn:443/info/x/.././1015/2556.htm?from=list#top",
}


@pytest.mark.parametrize("url", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_every_spelling_of_one_article_is_one_url(url: str) -> None:
    assert canonical_article_url(url) == STATIC
    assert canonical_article_url(canonical_article_url(url)) == STATIC
    assert newsid_of(url) == 2556


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://zzb.ghu.edu.cn:80/info/1015/2556.htm", "http://zzb.ghu.edu.cn/info/1015/2556.htm"),
        ("HTTP://ZZB.GHU.EDU.CN:80/info/1015/2556.htm#x", "http://zzb.ghu.edu.cn/info/1015/2556.htm"),
        ("http://zzb.ghu.edu.cn:0080/info/1015/2556.htm", "http://zzb.ghu.edu.cn/info/1015/2556.htm"),
        # a default port of the other scheme is a real port
        ("https://zzb.ghu.edu.cn:80/info/1015/2556.htm", "https://zzb.ghu.edu.cn:80/info/1015/2556.htm"),
        ("http://zzb.ghu.edu.cn:443/info/1015/2556.htm", "http://zzb.ghu.edu.cn:443/info/1015/2556.htm"),
        ("http://127.0.0.1:8080/info/1015/./7.htm?x=1", "http://127.0.0.1:8080/info/1015/7.htm"),
        ("http://[::1]:80/info/1015/7.htm", "http://[::1]/info/1015/7.htm"),
        ("http://[::1]:80/content.jsp?wbtreeid=1015&wbnewsid=7", "http://[::1]/info/1015/7.htm"),
        ("http://user:pw@zzb.ghu.edu.cn:80/info/1015/7.htm", "http://user:pw@zzb.ghu.edu.cn/info/1015/7.htm"),
    ],
)
def test_default_ports_go_other_ports_stay(url: str, expected: str) -> None:
    assert canonical_article_url(url) == expected


def test_a_query_is_dropped_only_on_static_article_pages() -> None:
    """A list page or a .jsp page may need its query; only /info/T/N.htm is a static file."""
    assert canonical_article_url("https://zzb.ghu.edu.cn/dxgz/dxgzdt.htm?b=2&a=1#x") == \
        "https://zzb.ghu.edu.cn/dxgz/dxgzdt.htm?a=1&b=2"
    assert canonical_article_url("https://zzb.ghu.edu.cn/list.jsp?wbtreeid=1015") == \
        "https://zzb.ghu.edu.cn/list.jsp?wbtreeid=1015"
    wechat = "https://mp.weixin.qq.com/s?__biz=MzA&mid=2&idx=1&sn=abc#rd"
    assert canonical_article_url(wechat) == "https://mp.weixin.qq.com/s?__biz=MzA&idx=1&mid=2&sn=abc"


def test_a_list_page_lists_an_article_once_whatever_its_spelling() -> None:
    from crawler.parsing import parse_list_page

    page = "https://zzb.ghu.edu.cn/dxgz/dxgzdt.htm"
    hrefs = ["../info/1015/2556.htm", "../info/1015/2556.htm#top", "../info/1015/2556.htm?from=list",
             "../info/1015/./2556.htm", "../info/9999/../1015/2556.htm", "HTTPS://ZZB.GHU.EDU.CN/info/1015/2556.htm",
             "https://zzb.ghu.edu.cn:443/info/1015/2556.htm",
             "../content.jsp?urltype=news.NewsContentUrl&wbtreeid=1015&wbnewsid=2556",
             "../info/1015/2551.htm"]
    items = "".join(f'<li id="line_u8_{n}"><a href="{href}" title="T{n}">T{n}</a><span>2024-10-24</span></li>'
                    for n, href in enumerate(hrefs))
    listing = parse_list_page(f"<html><body><ul>{items}</ul></body></html>", page)
    assert [e.url for e in listing.entries] == [STATIC, "https://zzb.ghu.edu.cn/info/1015/2551.htm"]


@given(st.sampled_from(list(SPELLINGS.values())), st.sampled_from(["", "#a", "?q=1", "?q=1#a"]))
def test_canonical_is_idempotent(url: str, suffix: str) -> None:
    once = canonical_article_url(url + suffix)
    assert canonical_article_url(once) == once


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_canonical_is_idempotent_on_any_text(text: str) -> None:
    for url in (text, "http://zzb.ghu.edu.cn/" + text, "HTTP://ZZB.ghu.edu.cn:80/info/1/" + text):
        once = canonical_article_url(url)
        assert canonical_article_url(once) == once
