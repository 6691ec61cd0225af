"""parse_article on hand-written snippets of VSB article templates seen on other sites."""

from __future__ import annotations

from datetime import datetime

import pytest

from crawler.parsing import SHANGHAI, ArticlePage, Selectors, parse_article
from crawler.parsing.article import labelled_fields

URL = "https://www.example.edu.cn/info/1053/5719.htm"


def doc(body: str, head: str = "<title>文章标题-示例大学</title>") -> str:
    return f"<html><head>{head}</head><body>{body}</body></html>"


def form(inner: str) -> str:
    return f'<form name="_newscontent_fromname">{inner}</form>'


def test_vsb_content_2_body_without_v_news_content() -> None:
    html = doc(form('<h2 class="arti_title">标题二</h2><div id="vsb_content_2"><p>正文一</p><p>正文二</p></div>'))
    page = parse_article(html, URL)
    assert page.title == "标题二"
    assert page.body_text == "正文一\n正文二"
    assert page.body_html == "<p>正文一</p><p>正文二</p>"


def test_old_vsb_newscontent_with_prev_next_and_print_inside() -> None:
    html = doc(form('<h1>旧模板</h1><div id="vsb_newscontent"><p>旧正文</p>'
                    '<div><lable>上一篇：</lable><a href="5720.htm">新一篇</a></div>'
                    '<p>下一篇：<a href="5718.htm">旧一篇</a></p>'
                    '<a href="javascript:window.print()">【打印本页】</a>'
                    '<a href="javascript:window.close()">【关闭窗口】</a>'
                    "</div>"))
    page = parse_article(html, URL)
    assert page.body_text == "旧正文"
    for word in ("上一篇", "下一篇", "新一篇", "打印", "关闭"):
        assert word not in (page.body_html or "")


def test_v_news_content_is_preferred_and_subheadings_are_not_titles() -> None:
    html = doc(form('<div class="content-title">真正的标题</div><div id="vsb_content">'
                    '<div class="v_news_content"><h3>一、小标题</h3><p>内容</p></div></div>'))
    page = parse_article(html, URL)
    assert page.title == "真正的标题"
    assert page.body_text == "一、小标题\n内容"


def test_orisrc_only_images_and_suffixes() -> None:
    html = doc(form('<h1>图</h1><div class="v_news_content">'
                    '<p><img orisrc="/__local/A/BC/DE/F_1_2.jpg" class="img_vsb_content"></p>'
                    '<p><img src="../../__local/1/23/45/X.png?e=.jpg" orisrc="/__local/1/23/45/X.png"></p>'
                    '<p><img src="data:image/gif;base64,R0lGOD"></p></div>'))
    page = parse_article(html, URL)
    assert page.images == ["https://www.example.edu.cn/__local/A/BC/DE/F_1_2.jpg",
                           "https://www.example.edu.cn/__local/1/23/45/X.png?e=.jpg"]
    assert 'src="https://www.example.edu.cn/__local/A/BC/DE/F_1_2.jpg"' in (page.body_html or "")


@pytest.mark.parametrize(
    ("line", "published", "date_only", "author", "origin", "editor"),
    [
        ("发布时间：2026-07-21&nbsp;&nbsp;作者：张三&nbsp;&nbsp;来源：宣传部&nbsp;&nbsp;"
         "点击数：<script>_showDynClicks('wbnews', 1, 2)</script>",
         datetime(2026, 7, 21, tzinfo=SHANGHAI), True, "张三", "宣传部", None),
        ("日期：2018年01月23日 作者：李四 责任编辑：王五",
         datetime(2018, 1, 23, tzinfo=SHANGHAI), True, "李四", None, "王五"),
        ("时间:2019-09-29 14:30 点击:", datetime(2019, 9, 29, 14, 30, tzinfo=SHANGHAI), False, None, None, None),
        ("发布日期：2024-10-24&nbsp;&nbsp;&nbsp;&nbsp;作者：&nbsp;&nbsp;&nbsp;&nbsp;供稿单位：组织部（党校办公室）"
         "&nbsp;&nbsp;网络编辑：赵六",
         datetime(2024, 10, 24, tzinfo=SHANGHAI), True, None, "组织部（党校办公室）", "赵六"),
        ('<span>发布时间：2024-10-24</span><span>撰稿：钱七</span><span>发布单位：党委办公室</span>'
         "<span>摄影：孙八</span><span>编辑：周九</span>",
         datetime(2024, 10, 24, tzinfo=SHANGHAI), True, "钱七", "党委办公室", "周九"),
    ],
)
def test_meta_line_labels(line: str, published: datetime, date_only: bool, author: str | None,
                          origin: str | None, editor: str | None) -> None:
    html = doc(form(f'<h1>标题</h1><div class="info">{line}</div><div class="v_news_content"><p>正文</p></div>'))
    page = parse_article(html, URL)
    assert (page.published, page.date_only) == (published, date_only)
    assert (page.author, page.origin, page.editor) == (author, origin, editor)


def test_labelled_fields_values_end_at_labels_or_double_spaces() -> None:
    assert labelled_fields("作者：张三  李四 来源：宣传部") == {"author": "张三", "origin": "宣传部"}
    assert labelled_fields("作者：　来源：") == {"author": None, "origin": None}
    assert labelled_fields("没有标签") == {}


def test_credits_paragraph_fills_missing_origin_and_editor() -> None:
    html = doc(form('<h1>标题</h1><div class="info">时间：2019-09-29 点击：</div>'
                    '<div class="v_news_content"><p>正文。</p><p>（供稿：宣传部 审核：张三 编辑：李四）</p></div>'))
    page = parse_article(html, URL)
    assert (page.origin, page.editor) == ("宣传部", "李四")
    assert page.body_text.endswith("（供稿：宣传部 审核：张三 编辑：李四）")  # still part of the body


def test_meta_line_wins_over_credits() -> None:
    html = doc(form('<h1>标题</h1><div class="info">来源：组织部</div>'
                    '<div class="v_news_content"><p>正文。(供稿:宣传部 编辑:李四)</p></div>'))
    page = parse_article(html, URL)
    assert (page.origin, page.editor) == ("组织部", "李四")


def test_head_meta_tags_without_form() -> None:
    head = ('<title>站内标题-某大学</title><meta name="ArticleTitle" content="元数据标题">'
            '<meta name="PubDate" content="2024-10-24 09:30"><meta name="ContentSource" content="新闻中心">')
    page = parse_article(doc('<div class="v_news_content"><p>正文</p></div>', head), URL)
    assert page.title == "元数据标题"
    assert (page.published, page.date_only) == (datetime(2024, 10, 24, 9, 30, tzinfo=SHANGHAI), False)
    assert page.origin == "新闻中心"


def test_pubdate_adds_the_time_of_a_date_only_line() -> None:
    head = '<meta name="PubDate" content="2024-10-24 09:30">'
    html = doc(form('<h1>t</h1><p class="info">发布时间：2024-10-24</p><div class="v_news_content">x</div>'), head)
    assert parse_article(html, URL).published == datetime(2024, 10, 24, 9, 30, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("title", "expected"),
    [("文章标题-示例大学", "文章标题"), ("2024-2025学年校历", "2024-2025学年校历"),
     ("关于2024-2025学年的通知-组织部", "关于2024-2025学年的通知"), ("无后缀", "无后缀")],
)
def test_title_from_head_strips_the_site_name(title: str, expected: str) -> None:
    assert parse_article(doc("<p>x</p>", f"<title>{title}</title>"), URL).title == expected


def test_attachments_after_body_and_files_in_body() -> None:
    html = doc(form(
        '<h1>通知</h1><div class="v_news_content"><p>见<a href="/__local/2/9F/13/ABC_1_2.docx">安排表.docx</a></p>'
        '<p><a href="/__local/0/A4/89/X.jpg">大图</a><a href="https://other.example/">外链</a></p></div>'
        '<div id="div_vote_id"></div><p><UL style="list-style-type:none;">'
        '<li>附件【<a href="/system/_content/download.jsp?urltype=news.DownloadAttachUrl&amp;owner=1&amp;wbfileid=9"'
        ' target="_blank"> 名单.xlsx </a>】已下载<span id="nattach1"><script>getClickTimes(1,1,"wbnewsfile","attach")'
        "</script></span>次</li></UL></p>"
        '<table class="winstyle1"><tr><td><span class="attachfont1">附件：</span>'
        '<a href="../../system/_content/download.jsp?urltype=news.DownloadAttachUrl&amp;owner=1&amp;wbfileid=10">'
        "旧模板.doc</a></td></tr></table>"))
    page = parse_article(html, URL)
    base = "https://www.example.edu.cn"
    download = base + "/system/_content/download.jsp?urltype=news.DownloadAttachUrl&owner=1&wbfileid="
    assert [(a.name, a.url, a.in_body) for a in page.attachments] == [
        ("名单.xlsx", download + "9", False),
        ("旧模板.doc", download + "10", False),
        ("安排表.docx", base + "/__local/2/9F/13/ABC_1_2.docx", True),
    ]
    assert "名单" not in page.body_text


def test_breadcrumb_variants() -> None:
    html = doc('<div class="position"><span>当前位置:</span> <a href="../../index.htm">网站首页</a> &gt;&gt; '
               '<a href="../../ghzx.htm">光华资讯</a> &gt;&gt; 正文</div>'
               + form('<h1>t</h1><div class="v_news_content"><p>我们的位置：很重要 <a href="/x.htm">x</a></p></div>'))
    page = parse_article(html, URL)
    assert page.breadcrumb == [("网站首页", "https://www.example.edu.cn/index.htm"),
                               ("光华资讯", "https://www.example.edu.cn/ghzx.htm")]


def test_breadcrumb_by_class_without_label() -> None:
    html = doc('<div class="breadcrumb"><a href="/">首页</a> / <a href="/xwzx.htm">新闻中心</a></div>')
    assert [t for t, _ in parse_article(html, URL).breadcrumb] == ["首页", "新闻中心"]


def test_hidden_zero_width_spans_and_word_markup() -> None:
    html = doc(form('<h1>t</h1><div class="v_news_content"><p class="MsoNormal"><span style="font-family:仿宋">'
                    "甲<o:p></o:p></span></p><p class=\"vsbcontent_end\">"
                    '<span style="line-height: 0px; display: none;">\u200b</span><br></p></div>'))
    page = parse_article(html, URL)
    assert page.body_text == "甲"
    assert "\u200b" not in (page.body_html or "") and "display" not in (page.body_html or "")


def test_selectors_override() -> None:
    html = doc('<div class="hd">自定义标题</div><div class="meta">作者：某人</div>'
               '<div class="bd"><p>自定义正文</p></div>'
               '<div class="files"><a href="/f/1.pdf">一.pdf</a></div>')
    page = parse_article(html, URL, Selectors(title=".hd", meta=".meta", body=".bd", attachments=".files"))
    assert (page.title, page.author, page.body_text) == ("自定义标题", "某人", "自定义正文")
    assert [(a.name, a.in_body) for a in page.attachments] == [("一.pdf", False)]


def test_nothing_found() -> None:
    empty = parse_article("", URL)
    assert empty == ArticlePage(title=None, published=None, date_only=False, author=None, origin=None,
                                editor=None, body_html=None, body_text="")
    page = parse_article("<html><body><p>no anchors</p></body></html>", URL)
    assert page.title is None and page.body_html is None and page.body_text == ""


def test_old_template_numbered_style_classes() -> None:
    html = doc(form('<table><tr><td class="titlestyle1139">旧式标题</td></tr>'
                    '<tr><td><span class="timestyle1139">2012-05-06 10:33</span>&nbsp;'
                    '<span class="authorstyle1139">王老师</span></td></tr>'
                    '<tr><td class="contentstyle1139"><div id="vsb_content_4"><p>旧式正文</p></div></td></tr></table>'))
    page = parse_article(html, URL)
    assert (page.title, page.author, page.body_text) == ("旧式标题", "王老师", "旧式正文")
    assert (page.published, page.date_only) == (datetime(2012, 5, 6, 10, 33, tzinfo=SHANGHAI), False)


def test_hidden_images_are_not_listed() -> None:
    html = doc(form('<h1>t</h1><div class="v_news_content"><p><img src="/a.jpg"></p>'
                    '<p style="display:none"><img src="/hidden.jpg"></p></div>'))
    assert parse_article(html, URL).images == ["https://www.example.edu.cn/a.jpg"]
