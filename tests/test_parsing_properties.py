"""Property-based tests: the parsers never raise, and sanitized HTML is inert and XML-safe."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.parsing import (
    ArticlePage,
    ListPage,
    decode_html,
    find_column_list_url,
    html_to_text,
    parse_article,
    parse_date,
    parse_list_page,
    sanitize_html,
)

REPLICA_DIR = Path(__file__).parent / "fixtures" / "replica"
BASE = "https://zzb.ghu.edu.cn/info/1015/2556.htm"
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
ALLOWED_ATTRS = {"href", "title", "src", "alt", "width", "height", "colspan", "rowspan"}

FAST = settings(max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLOW = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def no_internal_errors() -> Iterator[None]:
    """The parsers' last-resort ``except`` logs a warning; "never raises" must not mean "crashed inside"."""
    handler, logger = _Collect(), logging.getLogger("crawler.parsing")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert not handler.records, [r.getMessage() for r in handler.records]


@pytest.fixture(scope="module")
def replica_pages(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    """(real URL, raw bytes) of list pages and a few articles of the replica, UTF-8 and GBK."""
    pages: list[tuple[str, bytes]] = []
    for variant in ([], ["--encoding", "gbk"]):
        out = tmp_path_factory.mktemp("replica") / "site"
        subprocess.run([sys.executable, "build_replica.py", "--out", str(out), "--expected", str(out) + ".json",
                        *variant], cwd=REPLICA_DIR, check=True, capture_output=True)
        for path in ("dxgz/dxgzdt.htm", "dxgz/dxgzdt/1.htm", "index.htm", "info/1015/2572.htm",
                     "info/1015/2638.htm", "info/1015/2647.htm"):
            pages.append(("https://zzb.ghu.edu.cn/" + path, (out / path).read_bytes()))
    return pages


# ---------------------------------------------------------------- never raise
@FAST
@given(st.text())
def test_parsers_never_raise_on_arbitrary_text(text: str) -> None:
    with no_internal_errors():
        assert isinstance(parse_list_page(text, BASE), ListPage)
        assert isinstance(parse_article(text, BASE), ArticlePage)
    assert isinstance(html_to_text(text), str)
    value, date_only = parse_date(text)
    assert value is None or value.tzinfo is not None
    assert isinstance(date_only, bool)


HTMLISH = st.lists(
    st.sampled_from(["<li id=line_u8_0>", "<a href='../info/1/2.htm' title='t'>", "</a>", "<span>",
                     "2024-10-24", "[10-24]", "</li>", "<form name=_newscontent_fromname>",
                     "<div class=v_news_content>", "<p><UL>", "</div>", "发布时间：", "作者：", "&nbsp;",
                     "<img orisrc=/x.jpg>", "<a href=download.jsp?x=1>", "下页", "共3页", "1/3",
                     "<div class=pb_sys_common>", "您现在的位置：", "\x00", "\ud800", "&#1;", "<script>", "<!--"])
    | st.text(max_size=8),
    max_size=40,
).map("".join)


@FAST
@given(HTMLISH)
def test_parsers_never_raise_on_vsb_like_fragments(html: str) -> None:
    with no_internal_errors():
        list_page = parse_list_page(html, BASE)
        article = parse_article(html, BASE)
    assert isinstance(list_page, ListPage) and isinstance(article, ArticlePage)
    for entry in list_page.entries:
        assert entry.url.startswith(("http://", "https://"))
    for text in (article.title or "", article.body_text, article.body_html or ""):
        assert not XML_ILLEGAL.search(text)
    find_column_list_url(html, BASE, "党校工作动态")


@FAST
@given(st.binary(max_size=2000), st.sampled_from([None, "utf-8", "gbk", "gb2312", "latin-1", "bogus", "rot13", ""]))
def test_decode_html_never_raises(body: bytes, header: str | None) -> None:
    assert isinstance(decode_html(body, header), str)


@FAST
@given(st.text(max_size=30), st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_parse_date_never_raises_with_any_reference(text: str, reference: datetime) -> None:
    value, _ = parse_date(text, reference)
    assert value is None or value.utcoffset() is not None


@SLOW
@given(st.data())
def test_truncated_real_pages_never_raise(replica_pages: list[tuple[str, bytes]], data: st.DataObject) -> None:
    url, raw = data.draw(st.sampled_from(replica_pages))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    html = decode_html(raw[:cut])
    with no_internal_errors():
        list_page = parse_list_page(html, url)
        article = parse_article(html, url)
    assert isinstance(list_page, ListPage) and isinstance(article, ArticlePage)
    if cut == len(raw) and "/info/" in url:
        assert article.title and article.body_html


# ---------------------------------------------------------------- sanitizer
HOSTILE = [
    "<script>alert(1)</script>", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "<scr<script>ipt>alert(1)</script>",
    "<img src=x onerror=alert(1)>", '<img src="javascript:alert(1)">', '<img orisrc="javascript:alert(1)">',
    '<a href="javascript:alert(1)">', '<a href="JaVaScRiPt:alert(1)">', '<a href=" javascript:alert(1)">',
    '<a href="java&#x09;script:alert(1)">', '<a href="&#106;avascript:alert(1)">', '<a href="vbscript:x">',
    '<a href="data:text/html,<script>alert(1)</script>">', '<svg onload=alert(1)>', "<svg><script>x</script></svg>",
    '<iframe src="javascript:alert(1)">', "<style>@import 'x';</style>", '<div style="background:url(javascript:x)">',
    '<object data="data:text/html,x">', "<embed src=x.swf>", "<!--<script>-->", "<![CDATA[<script>]]>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>', "<body onload=alert(1)>", '<form action="javascript:">',
    "<input onfocus=alert(1) autofocus>", "<details open ontoggle=alert(1)>", '<p onclick="x" style="color:red">',
    '<a href="/rel" onmouseover="x">', '<a href="//evil.example/x">', '<img orisrc="/a.jpg">', "<o:p>",
    '<span style="display:none">\u200b</span>', "<p>", "</p>", "<table><tr><td colspan=2 onclick=x>",
    "\x00", "\x0b", "\x1f", "\ufffe", "\ud800", "&#0;", "&#x1;", "&#xD800;", "&#65535;", "\u200b",
    "on", "click=", "javascript:", '"', "'", "<", ">", "=", " ", "正文",
]


@FAST
@given(st.lists(st.sampled_from(HOSTILE) | st.text(max_size=6), max_size=30).map("".join))
def test_sanitized_html_is_inert_and_xml_safe(html: str) -> None:
    out = sanitize_html(html, BASE)
    assert "<script" not in out.lower()
    assert not XML_ILLEGAL.search(out) and "\u200b" not in out
    for tag in re.findall(r"<[^>]*>", out):
        assert not re.search(r"\son[a-z]+\s*=", tag, re.I), tag
        assert "javascript:" not in tag.lower() and "data:" not in tag.lower(), tag
    if out.strip():
        for el in lxml.html.fragment_fromstring(out, create_parent="div").iter():
            assert el.tag not in ("script", "style", "iframe", "object", "embed", "svg")
            assert set(el.attrib) <= ALLOWED_ATTRS, el.attrib
            for attr in ("href", "src"):
                if attr in el.attrib:
                    assert el.attrib[attr].startswith(("http://", "https://", "mailto:")), el.attrib[attr]
