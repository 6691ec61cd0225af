"""URL identity: dynamic VSB article URLs map to /info/T/N.htm; domain checks are exact."""

from __future__ import annotations

import pytest

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
