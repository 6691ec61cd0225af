"""find_column_list_url and looks_like_vsb."""

from __future__ import annotations

import pytest

from crawler.parsing import find_column_list_url, looks_like_vsb

ARTICLE = "https://zzb.ghu.edu.cn/info/1015/2556.htm"


def doc(body: str) -> str:
    return f"<html><head><title>t</title></head><body>{body}</body></html>"


NAV = ('<div class="nav"><ul><li><a href="../../index.htm">首页</a></li>'
       '<li><a href="../../dxgz.htm">党校工作</a><ul class="sub"><li><a href="../../dxgz/dxgzdt.htm">党校工作动态</a>'
       "</li></ul></li></ul></div>")
CRUMB = ('<div class="dqwz">您现在的位置是：<a href="../../index.htm">首页</a> - <a href="../../dxgz.htm">党校工作</a>'
         ' - <a href="../../dxgz/dxgzdt.htm">党校 工作动态</a></div>')


def test_breadcrumb_first() -> None:
    html = doc('<div class="footer"><a href="/other/dxgzdt.htm">党校工作动态</a></div>' + CRUMB)
    assert find_column_list_url(html, ARTICLE, "党校工作动态") == "https://zzb.ghu.edu.cn/dxgz/dxgzdt.htm"


def test_column_menu_before_top_navigation_before_other_links() -> None:
    html = doc('<p><a href="/p/x.htm">党校工作动态</a></p>'
               '<div class="menu"><a href="/nav/x.htm">党校工作动态</a></div>'
               '<div class="n-left"><ul class="n-left-nav"><li><a href="/left/x.htm">党校工作动态</a></li></ul></div>')
    assert find_column_list_url(html, ARTICLE, "党校工作动态") == "https://zzb.ghu.edu.cn/left/x.htm"
    html = doc('<p><a href="/p/x.htm">党校工作动态</a></p><div id="menu"><a href="/nav/x.htm">党校工作动态</a></div>')
    assert find_column_list_url(html, ARTICLE, "党校工作动态") == "https://zzb.ghu.edu.cn/nav/x.htm"
    assert find_column_list_url(doc('<p><a href="/p/x.htm#a">党校工作动态</a></p>'), ARTICLE,
                                "党校工作动态") == "https://zzb.ghu.edu.cn/p/x.htm"


def test_home_page_menu() -> None:
    assert find_column_list_url(doc(NAV), "https://zzb.ghu.edu.cn/index.htm", "党校工作动态") == \
        "https://zzb.ghu.edu.cn/dxgz/dxgzdt.htm"


def test_without_column_name_the_breadcrumb_end_is_used() -> None:
    assert find_column_list_url(doc(NAV + CRUMB), ARTICLE, None) == "https://zzb.ghu.edu.cn/dxgz/dxgzdt.htm"
    only_home = '<div class="position">当前位置：<a href="/index.htm">网站首页</a> &gt;&gt; 正文</div>'
    assert find_column_list_url(doc(only_home), ARTICLE, None) is None


@pytest.mark.parametrize("column", ["首页", "不存在的栏目", "", "  "])
def test_home_and_unknown_columns_give_none(column: str) -> None:
    assert find_column_list_url(doc(NAV + CRUMB), ARTICLE, column) is None


def test_garbage_input() -> None:
    assert find_column_list_url("", ARTICLE, "x") is None
    assert find_column_list_url("\x00<<a href=", ARTICLE, None) is None


@pytest.mark.parametrize(
    "html",
    [
        "<!--Announced by Visual SiteBuilder 9--><html></html>",
        '<script src="../_sitegray/_sitegray.js"></script>',
        '<form name="_newscontent_fromname"></form>',
        '<div class="v_news_content"></div>',
        '<div class="pb_sys_common pb_sys_normal"></div>',
        '<li id="line_u8_0"><a href="../info/1015/1.htm?wbtreeid=1">x</a></li>',
    ],
)
def test_looks_like_vsb(html: str) -> None:
    assert looks_like_vsb(html)


@pytest.mark.parametrize(
    "html",
    ["", "<html><body><p>WordPress</p></body></html>", '<li id="line_up">x</li>', None],
)
def test_does_not_look_like_vsb(html: str | None) -> None:
    assert not looks_like_vsb(html)  # type: ignore[arg-type]
