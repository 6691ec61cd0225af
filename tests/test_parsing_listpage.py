"""parse_list_page on hand-written snippets of the VSB list shapes seen on other sites."""

from __future__ import annotations

from datetime import datetime

from crawler.parsing import SHANGHAI, ListPage, Selectors, parse_list_page

PAGE = "https://zzb.ghu.edu.cn/dxgz/dxgzdt.htm"
DEEP_PAGE = "https://zzb.ghu.edu.cn/dxgz/dxgzdt/3.htm"
REF = datetime(2025, 6, 25, tzinfo=SHANGHAI)


def doc(body: str) -> str:
    return f"<html><head><title>x</title></head><body>{body}</body></html>"


def day(entry_published: datetime | None) -> str | None:
    return entry_published.date().isoformat() if entry_published else None


def test_glut_shape_title_attribute_and_p_date() -> None:
    html = doc('<ul><li id="line_u8_0"><a href="../info/1109/25667.htm" target="_blank" title="完整的标题">'
               "完整的...</a><p>2016-10-20</p></li></ul>")
    (entry,) = parse_list_page(html, PAGE).entries
    assert entry.url == "https://zzb.ghu.edu.cn/info/1109/25667.htm"
    assert (entry.title, entry.list_text, entry.title_truncated) == ("完整的标题", "完整的...", False)
    assert day(entry.published) == "2016-10-20" and entry.newsid == 25667


def test_ujs_shape_p_date_class() -> None:
    html = doc('<li id="line_u5_0"><a href="info/1002/3.htm" title="FULL" class="title tt1">FU…</a>'
               '<p class="date">2026-08-24</p></li>')
    (entry,) = parse_list_page(html, "https://www.ujs.edu.cn/").entries
    assert entry.title == "FULL" and day(entry.published) == "2026-08-24"


def test_sylu_shape_leading_space_date_and_em_in_link_without_title() -> None:
    html = doc('<li id="line_u9_0"><span> 2026-06-23</span>'
               '<a href="info/1116/5946.htm"><em>沈阳理工大学教务处关于…</em></a></li>'
               '<li id="line_u9_1"><span> 2026-06-22</span><a href="info/1116/5945.htm"><em>短标题</em></a></li>')
    first, second = parse_list_page(html, "https://jwc.sylu.edu.cn/jwtz.htm").entries
    assert first.url == "https://jwc.sylu.edu.cn/info/1116/5946.htm"
    assert (first.title, first.list_text) == ("沈阳理工大学教务处关于", "沈阳理工大学教务处关于…")
    assert first.title_truncated
    assert day(first.published) == "2026-06-23"
    assert (second.title, second.title_truncated) == ("短标题", False)


def test_lntdxy_shape_heading_date_and_summary_inside_link() -> None:
    html = doc('<li id="line_u7_0"><a href="../info/1039/3201.htm"><h4>招标公告标题很长很长...</h4>'
               '<p class="date">2024-10-24</p><p>摘要：本项目……</p></a></li>')
    (entry,) = parse_list_page(html, "https://www.lntdxy.com/xxgk/zbgg.htm").entries
    assert entry.title == "招标公告标题很长很长" and entry.title_truncated
    assert entry.list_text == "招标公告标题很长很长..."
    assert day(entry.published) == "2024-10-24"


def test_table_rows() -> None:
    html = doc('<table><tr id="line_u3_0"><td><a href="../info/1001/100.htm" title="表格一">表格一</a></td>'
               '<td class="time">2024/10/24</td></tr>'
               '<tr id="line_u3_1"><td><a href="../info/1001/99.htm" title="表格二">表格二</a></td>'
               "<td>[2024-10-20]</td></tr></table>")
    entries = parse_list_page(html, PAGE).entries
    assert [(e.title, day(e.published)) for e in entries] == [("表格一", "2024-10-24"), ("表格二", "2024-10-20")]


def test_chinese_month_day_and_split_dates() -> None:
    html = doc('<ul><li id="line_u1_0"><a href="/info/1/1.htm" title="一">一</a><span>2024年10月24日</span></li>'
               '<li id="line_u1_1"><a href="/info/1/2.htm" title="二">二</a><span>[10-24]</span></li>'
               '<li id="line_u1_2"><div class="date"><span>23</span><em>2024-10</em></div>'
               '<a href="/info/1/3.htm" title="三">三</a></li>'
               '<li id="line_u1_3"><a href="/info/1/4.htm" title="四">四</a><b>2023</b><i>12-01</i></li></ul>')
    entries = parse_list_page(html, PAGE, reference=REF).entries
    assert [day(e.published) for e in entries] == ["2024-10-24", "2024-10-24", "2024-10-23", "2023-12-01"]


def test_relative_links_resolve_against_the_page() -> None:
    html = doc('<li id="line_u8_0"><a href="../../info/1015/2398.htm" title="a">a</a><span>2023-10-26</span></li>'
               '<li id="line_u8_1"><a href="2.htm" title="b">b</a><span>2023-10-25</span></li>')
    entries = parse_list_page(html, DEEP_PAGE).entries
    assert [e.url for e in entries] == ["https://zzb.ghu.edu.cn/info/1015/2398.htm",
                                        "https://zzb.ghu.edu.cn/dxgz/dxgzdt/2.htm"]


def test_content_jsp_links_are_canonicalised() -> None:
    html = doc('<li id="line_u8_0"><a href="../content.jsp?urltype=news.NewsContentUrl&amp;wbtreeid=1015&amp;'
               'wbnewsid=2690" title="新稿">新稿</a><span>2025-06-24</span></li>')
    (entry,) = parse_list_page(html, PAGE).entries
    assert entry.url == "https://zzb.ghu.edu.cn/info/1015/2690.htm" and entry.newsid == 2690


def test_external_wechat_entries_are_returned() -> None:
    html = doc('<li id="line_u8_0"><a href="https://mp.weixin.qq.com/s/Rk3v9XcQm2LwP7aYdT1hZg" title="微信文章">'
               "微信...</a><span>2025-05-29</span></li>")
    (entry,) = parse_list_page(html, PAGE).entries
    assert entry.url == "https://mp.weixin.qq.com/s/Rk3v9XcQm2LwP7aYdT1hZg"
    assert entry.newsid is None and entry.title == "微信文章" and not entry.title_truncated


def test_duplicates_and_pc_mobile_double_rendering() -> None:
    items = ('<li id="line_u{c}_0"><a href="../info/1/1.htm" title="一">一</a><span>2024-01-02</span></li>'
             '<li id="line_u{c}_1"><a href="../info/1/1.htm" title="一">一</a><span>2024-01-02</span></li>'
             '<li id="line_u{c}_2"><a href="../info/1/2.htm" title="二">二</a><span>2024-01-01</span></li>')
    html = doc(f'<div class="pc"><ul>{items.format(c=8)}</ul></div>'
               f'<div class="mobile"><ul>{items.format(c=9)}</ul></div>')
    assert [e.title for e in parse_list_page(html, PAGE).entries] == ["一", "二"]


def test_sidebar_component_far_from_the_pager_is_ignored() -> None:
    sidebar = ''.join(f'<li id="line_u3_{i}"><a href="../info/9/{i}.htm" title="热点{i}">热点{i}</a>'
                      f'<span>2024-01-0{i + 1}</span></li>' for i in range(5))
    main = ('<div class="list"><ul><li id="line_u8_0"><a href="../info/1015/1.htm" title="正文">正文</a>'
            '<span>2024-02-01</span></li></ul><div><div class="pb_sys_common pb_sys_normal">'
            '<span class="p_t">共16条</span>'
            '<span class="p_next_d p_fun_d">下页</span><span class="p_t">2/2</span></div></div></div>')
    html = doc(f'<div class="main"><div class="left"><div class="box"><ul>{sidebar}</ul></div></div>{main}</div>')
    page = parse_list_page(html, PAGE)
    assert [e.title for e in page.entries] == ["正文"]
    assert (page.next_url, page.total_pages, page.total_items) == (None, 2, 16)


def test_heuristic_fallback_without_line_u_ids() -> None:
    html = doc('<ul class="nav"><li><a href="../index.htm">首页</a></li>'
               '<li><a href="../dxgz.htm">党校工作</a></li></ul>'
               '<ul class="news"><li><a href="../info/1/3.htm">第三条</a><span>2024-01-03</span></li>'
               '<li><a href="../info/1/2.htm">第二条</a><span>2024-01-02</span></li>'
               '<li><a href="https://mp.weixin.qq.com/s/x">微信</a><span>2024-01-01</span></li></ul>')
    entries = parse_list_page(html, PAGE).entries
    assert [e.title for e in entries] == ["第三条", "第二条", "微信"]
    assert entries[2].url == "https://mp.weixin.qq.com/s/x"


def test_pager_variants() -> None:
    vsb = ('<div class="pb_sys_common pb_sys_style1"><span class="p_t">共52条</span><span class="p_pages">'
           '<span class="p_no_d">1</span><span class="p_no"><a href="dxgzdt/10.htm">2</a></span>'
           '<span class="p_next p_fun"><a href="dxgzdt/10.htm">下页</a></span></span>'
           '<span class="p_t">1/11</span></div>')
    page = parse_list_page(doc(vsb), PAGE)
    assert (page.next_url, page.total_pages, page.total_items) == ("https://zzb.ghu.edu.cn/dxgz/dxgzdt/10.htm", 11, 52)

    full = '<div class="pb_sys_full">共31页 <a class="Next" href="dxgzdt/30.htm">下页</a></div>'
    page = parse_list_page(doc(full), PAGE)
    assert (page.next_url, page.total_pages) == ("https://zzb.ghu.edu.cn/dxgz/dxgzdt/30.htm", 31)

    plain = '<div class="page"><a href="list_2.htm">下一页</a> <a href="list_9.htm">尾页</a></div>'
    assert parse_list_page(doc(plain), PAGE).next_url == "https://zzb.ghu.edu.cn/dxgz/list_2.htm"

    arrow = '<p><a href="p2.htm">下页&gt;</a></p>'
    assert parse_list_page(doc(arrow), PAGE).next_url == "https://zzb.ghu.edu.cn/dxgz/p2.htm"

    js_only = '<div class="pb_sys_common"><a href="javascript:void(0)" onclick="go(2)">下一页</a></div>'
    assert parse_list_page(doc(js_only), PAGE).next_url is None

    numbers = ('<div class="pb_sys_common"><span class="p_no_d">1</span>'
               '<span class="p_no"><a href="a/2.htm">2</a></span>'
               '<span class="p_no"><a href="a/1.htm">3</a></span></div>')
    assert parse_list_page(doc(numbers), PAGE).total_pages == 3


def test_custom_selectors_override_defaults() -> None:
    html = doc('<div class="news-item"><a class="t" href="/a/1.html">自定义</a><i class="d">2024-05-06</i></div>'
               '<div class="news-item"><a class="t" href="/a/2.html">另一条</a><i class="d">2024-05-05</i></div>'
               '<div class="more"><a class="go" href="/list/2.html">more</a></div>')
    selectors = Selectors(list_item="div.news-item", list_link="a.t", list_date="i.d", next_page="a.go")
    page = parse_list_page(html, PAGE, selectors)
    assert [(e.url, e.title, day(e.published)) for e in page.entries] == [
        ("https://zzb.ghu.edu.cn/a/1.html", "自定义", "2024-05-06"),
        ("https://zzb.ghu.edu.cn/a/2.html", "另一条", "2024-05-05")]
    assert page.next_url == "https://zzb.ghu.edu.cn/list/2.html"


def test_invalid_selector_matches_nothing_instead_of_raising() -> None:
    page = parse_list_page(doc('<li id="line_u1_0"><a href="/info/1/1.htm">x</a></li>'), PAGE,
                           Selectors(list_item="li[[["))
    assert page.entries == []


def test_item_without_date_or_title() -> None:
    html = doc('<li id="line_u1_0"><a href="/info/1/1.htm"><img src="x.jpg"></a></li>')
    (entry,) = parse_list_page(html, PAGE).entries
    assert entry.published is None and entry.title == "" and entry.title_truncated


def test_garbage_gives_an_empty_page() -> None:
    for html in ("", "not html at all", "<li id=line_u1_0><a href=", "\x00\x01<<<>>>", "<html><body></body>"):
        assert parse_list_page(html, PAGE) == ListPage(entries=[], next_url=None, total_pages=None, total_items=None)
