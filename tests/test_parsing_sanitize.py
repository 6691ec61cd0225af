"""sanitize_html / html_to_text / strip_xml_illegal on VSB editor output."""

from __future__ import annotations

import pytest

from crawler.parsing import html_to_text, sanitize_html, strip_xml_illegal

BASE = "https://zzb.ghu.edu.cn/info/1015/2556.htm"


def test_formatting_kept_styles_classes_ids_dropped() -> None:
    html = ('<p class="MsoNormal" style="text-indent:2em" id="x"><strong>粗</strong><em>斜</em><u>下</u>'
            '<sub>1</sub><sup>2</sup></p><h2 class="t">小标题</h2><ul><li>一</li></ul>'
            '<table border="1"><tbody><tr><td colspan="2" style="width:3px">格</td></tr></tbody></table>'
            '<blockquote>引</blockquote><pre><code>x</code></pre><hr><figure><figcaption>图</figcaption></figure>')
    out = sanitize_html(html, BASE)
    for tag in ("<strong>", "<em>", "<u>", "<sub>", "<sup>", "<h2>", "<ul>", "<li>", "<blockquote>", "<pre>",
                "<code>", "<hr>", "<figure>", "<figcaption>"):
        assert tag in out
    assert '<td colspan="2">' in out
    assert "style" not in out and "class" not in out and "id=" not in out and "border" not in out


def test_links_and_images_made_absolute() -> None:
    html = ('<p><a href="../../info/1015/2551.htm" title="t" target="_blank">上文</a>'
            '<img src="/__local/0/A4/89/X.jpg?e=.jpg" width="600" vurl="/_vsl/X" class="img_vsb_content">'
            '<a href="mailto:ccughczzb@126.com">邮箱</a></p>')
    out = sanitize_html(html, BASE)
    assert 'href="https://zzb.ghu.edu.cn/info/1015/2551.htm"' in out
    assert 'src="https://zzb.ghu.edu.cn/__local/0/A4/89/X.jpg?e=.jpg"' in out
    assert 'width="600"' in out and "vurl" not in out and "target" not in out
    assert 'href="mailto:ccughczzb@126.com"' in out


def test_orisrc_only_images_get_a_src() -> None:
    out = sanitize_html('<p><img orisrc="/__local/1/23/45/Y.png" alt="图"></p>', BASE)
    assert 'src="https://zzb.ghu.edu.cn/__local/1/23/45/Y.png"' in out and 'alt="图"' in out
    assert "orisrc" not in out


@pytest.mark.parametrize(
    "hostile",
    [
        '<a href="javascript:alert(1)">x</a>',
        '<a href=" JaVaScRiPt:alert(1)">x</a>',
        '<a href="java&#x09;script:alert(1)">x</a>',
        '<img src="data:image/svg+xml;base64,PHN2Zz4=">',
        '<img orisrc="javascript:alert(1)">',
        '<a href="vbscript:msgbox(1)">x</a>',
    ],
)
def test_dangerous_urls_dropped(hostile: str) -> None:
    out = sanitize_html(hostile, BASE).lower()
    assert "javascript" not in out and "data:" not in out and "vbscript" not in out


def test_scripts_styles_frames_and_handlers_removed_with_content() -> None:
    html = ('<p onclick="evil()" onmouseover="x()">正文</p><script>alert("s")</script><style>p{}</style>'
            '<iframe src="https://evil.example/">frame</iframe><object data="x">obj</object>'
            '<img src="/a.jpg" onerror="alert(1)"><svg onload="alert(1)"><text>svg</text></svg>')
    out = sanitize_html(html, BASE)
    assert "正文" in out
    for bad in ("script", "alert", "style", "iframe", "frame", "obj", "onerror", "onclick", "svg", "onload"):
        assert bad not in out


def test_hidden_spans_zero_width_and_word_tags_removed() -> None:
    html = ('<p class="vsbcontent_end"><span style="line-height: 0px; display: none;">\u200b隐藏</span>'
            '可见\u200b<o:p>&nbsp;</o:p></p>')
    out = sanitize_html(html, BASE)
    assert "隐藏" not in out and "\u200b" not in out and "o:p" not in out
    assert "可见" in out


def test_xml_illegal_characters_removed() -> None:
    out = sanitize_html("<p>a\x00b\x01c\x0bd\x0ce\x1ff\ufffeg\uffffh\ud800i&#1;j&#x0B;k&#0;l</p>", BASE)
    assert out == "<p>abcdefghijkl</p>"


def test_empty_or_odd_input() -> None:
    assert sanitize_html("", BASE) == ""
    assert sanitize_html("   ", BASE) == ""
    assert sanitize_html(None, BASE) == ""  # type: ignore[arg-type]
    assert sanitize_html("<p>x</p>", "") == "<p>x</p>"


def test_strip_xml_illegal() -> None:
    assert strip_xml_illegal("a\tb\nc\rd\x00\x08\x0b\x0c\x0e\x1f\ufffe\uffff\udc00e") == "a\tb\nc\rde"
    assert strip_xml_illegal("中文\u3000\xa0😀") == "中文\u3000\xa0😀"


def test_html_to_text_lines() -> None:
    html = ('<div><p class="MsoNormal"><span>第一段</span><span>&nbsp;续</span></p>'
            '<p><span style="font-size:16px">&nbsp;</span></p>'
            '<p>第二段<br>换行\u3000后\u200b</p><ul><li>甲</li><li>乙</li></ul>'
            '<div><div>嵌套</div></div><script>x()</script><span style="display:none">\u200b</span>'
            '<table><tr><td>格1</td><td>格2</td></tr></table></div>')
    assert html_to_text(html) == "第一段 续\n第二段\n换行 后\n甲\n乙\n嵌套\n格1 格2"


def test_html_to_text_p_ul_nesting_and_empty() -> None:
    assert html_to_text("<p><UL><li>附件一</li></UL></p>尾") == "附件一\n尾"
    assert html_to_text("") == ""
    assert html_to_text("<p> \xa0 </p>") == ""
