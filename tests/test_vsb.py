"""crawler.vsb (what the project knows about VSB sites), the Content-Type charset and the shared file types."""

from __future__ import annotations

import pytest

from crawler import vsb
from crawler.parsing import header_charset
from db import filetypes


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://zzb.ghu.edu.cn/info/1015/2556.htm", True),
        ("https://zzb.ghu.edu.cn/content.jsp?urltype=news.NewsContentUrl&wbtreeid=1015&wbnewsid=2556", True),
        ("https://zzb.ghu.edu.cn/system/_content/download.jsp?urltype=news.DownloadAttachUrl&wbnewsid=1", False),
        ("https://zzb.ghu.edu.cn/dxgz/dxgzdt.htm", False),
        ("https://zzb.ghu.edu.cn/dxgz/dxgzdt/3.htm", False),
        ("http://[::1", False),
    ],
)
def test_is_article_url(url: str, expected: bool) -> None:
    assert vsb.is_article_url(url) is expected


@pytest.mark.parametrize("path", ["", "/", "/index.htm", "/INDEX.HTM", "/index.jsp", "/main.htm"])
def test_home_paths(path: str) -> None:
    assert vsb.is_home_path(path)
    assert vsb.is_home_url("https://zzb.ghu.edu.cn" + path)


def test_not_home() -> None:
    assert not vsb.is_home_url("https://zzb.ghu.edu.cn/dxgz.htm")
    assert not vsb.is_home_url("http://[::1")


def test_template_of_reads_the_visit_counter() -> None:
    assert vsb.template_of("<script>_jsq_(1015,'/content.jsp',2556,1698203425)</script>") == vsb.ARTICLE_TEMPLATE
    assert vsb.template_of('<script>_jsq_( 1015 , "/list.jsp",-1,1)</script>') == vsb.LIST_TEMPLATE
    assert vsb.template_of("<script>_jsq_(1001,'index.jsp',-1,1)</script>") == vsb.HOME_TEMPLATE
    assert vsb.template_of("<p>no counter</p>") == ""


def test_reverse_numbered_list_pages() -> None:
    match = vsb.NUMBERED_LIST_PAGE.match("https://zzb.ghu.edu.cn/dxgz/dxgzdt/3.htm")
    assert match and match.groups() == ("https://zzb.ghu.edu.cn/dxgz/dxgzdt/", "3")
    assert vsb.NUMBERED_LIST_PAGE.match("https://zzb.ghu.edu.cn/dxgz/dxgzdt.htm") is None


def test_static_article_url() -> None:
    assert vsb.static_article_url("https", "zzb.ghu.edu.cn", "01015", 2556) == "https://zzb.ghu.edu.cn/info/1015/2556.htm"


def test_looks_like_vsb_needs_one_strong_or_two_weak_markers() -> None:
    assert vsb.looks_like_vsb('<div class="v_news_content">x</div>')
    assert not vsb.looks_like_vsb('<li id="line_u1_0">x</li>')
    assert vsb.looks_like_vsb('<li id="line_u1_0"><a href="/__local/a.jpg">x</a></li>')
    assert not vsb.looks_like_vsb(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "codec"),
    [
        ("text/html; charset=GB2312", "gb18030"),
        ("text/html;charset=gbk", "gb18030"),
        ('text/html; charset="UTF-8"', "utf-8"),
        ("text/html; foo=bar; charset=utf-8", "utf-8"),
        (b"text/html; charset=utf-8", "utf-8"),
        ("text/html", None),
        ("text/html; charset=", None),
        ("text/html; charset=no-such-codec", None),
        ('text/html; x="a; charset=gbk"', None),  # inside a quoted string: not a parameter
        ("", None),
        (None, None),
    ],
)
def test_header_charset(value: str | bytes | None, codec: str | None) -> None:
    assert header_charset(value) == codec


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("报名表.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("通知.PDF", "application/pdf"),
        ("a.rar", "application/vnd.rar"),
        ("a.wps", "application/vnd.ms-works"),
        ("photo.gif", "image/gif"),  # Python's built-in table
        ("附件", "application/octet-stream"),
        ("a.no-such-ext", "application/octet-stream"),
        ("", "application/octet-stream"),
    ],
)
def test_mime_type(name: str, mime: str) -> None:
    assert filetypes.mime_type(name) == mime


def test_generic_types_and_extensions() -> None:
    assert filetypes.is_generic("application/octet-stream; name=x")
    assert filetypes.is_generic(None)
    assert not filetypes.is_generic("application/pdf")
    assert filetypes.url_extension("https://h/system/x.PDF?e=.jpg#y") == "pdf"
    assert filetypes.url_extension("https://h/dir.d/file") == ""
