"""Fault injection, crawl side: a source that misbehaves per page and publishes hostile articles.

One replica carries every hostile article and every per-page fault at once, so that two real crawls
(`scrapy crawl column`) cover them all: the first with the faults, the second after the site recovered.
Each case then asserts what a reader would expect: stored cleanly, or skipped with a logged reason and
fetched again on the next run; never a crashed crawl, never an invalid feed.
"""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from db.models import Article, CrawlRun
from tests.fixtures.faulty import (
    Fault,
    FaultyServer,
    Hit,
    assert_feeds_valid,
    faulty,
    integrity_check,
    publish,
    run_cli,
)
from tests.fixtures.project import articles, project_env, runs, scrapy_crawl, write_sources
from tests.fixtures.site import BASE_ARTICLES, build_site

pytestmark = pytest.mark.slow

INFO = "/info/1015/{}.htm"
C0 = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Any of these in a published file means article markup got through the sanitizer.
MARKER = "XSS"
EVENT_ATTR = re.compile(r"<[^<>]*\son[a-z]+\s*=", re.I)
# (index.html's own favicon is the empty ``data:,``, which carries nothing)
BAD_URL = re.compile(r"""(?:href|src)\s*=\s*["']?\s*(?:javascript:|vbscript:|data:(?!,["'\s>]))""", re.I)


@dataclass(frozen=True)
class Case:
    name: str
    newsid: int
    fault: Fault
    outcome: str  # "stored" or "failed"
    reason: str = ""  # a regex the recorded fetch error must match

    @property
    def path(self) -> str:
        return INFO.format(self.newsid)


OTHER = "http://localhost:{port}"  # the "other domain": a second server, reached under another host name
PAGE_CASES = [
    Case("404", 2681, Fault("status", status=404), "failed", r"answered 404"),
    Case("500", 2676, Fault("status", status=500), "failed", r"HttpError"),
    Case("503-retry-after", 2659, Fault("status", status=503, headers={"Retry-After": "1"}), "failed", r"HttpError"),
    Case("503-once", 2572, Fault("status", status=503, times=1), "stored"),
    Case("timeout", 2647, Fault("delay", seconds=8), "failed", r"DownloadTimeoutError"),
    Case("connection-reset", 2638, Fault("reset"), "failed", r"Connection|ResponseNeverReceived"),
    Case("truncated-body", 2636, Fault("truncate"), "failed", r"DataLoss"),
    Case("redirect-loop", 2629, Fault("loop"), "failed", r"max redirections"),
    Case("offsite-redirect", 2565, Fault("redirect", location=OTHER + INFO.format(2565)), "failed",
         r"off-site .* not followed"),
    Case("20MB-body", 2594, Fault("huge"), "failed", r"DownloadCancelled.*max size"),
    Case("endless-chunked", 2583, Fault("endless"), "failed", r"DownloadCancelled"),
    Case("wrong-charset-header", 2621, Fault("charset"), "stored"),
    Case("gbk-without-charset", 2603, Fault("gbk"), "stored"),
]
LIST_FAULTS = {  # list pages 2 and 3 must still be read right
    "/dxgz/dxgzdt/3.htm": Fault("gbk"),
    "/dxgz/dxgzdt/2.htm": Fault("charset"),
}
BIG_PARAGRAPHS = 1000  # x 1000 CJK characters: a 3 MB body in UTF-8


def hostile_articles(other: str) -> list[dict[str, Any]]:
    """Articles a careless or compromised editor could publish; ids above the base replica's."""
    scripts = (
        '<p onclick="alert(\'XSS-onclick\')">点击<script>alert("XSS-script")</script>这里</p>'
        "<style>.XSS-style{display:none}</style>"
        "<iframe src=\"javascript:alert('XSS-iframe')\"></iframe>"
        "<p><a href=\"javascript:alert('XSS-js-url')\">链接一</a> "
        '<a href="data:text/html;base64,WFNTLWRhdGE=">链接二</a> '
        "<a href=\" JaVaScRiPt:alert('XSS-mixed-case')\">链接三</a>"
        "<img src=\"data:image/png;base64,AAAA\" onerror=\"alert('XSS-onerror')\"></p>"
        "<svg onload=\"alert('XSS-svg')\"><script>XSS-svg-script</script></svg>"
        "<object data=\"javascript:alert('XSS-object')\"></object>"
        '<form action="javascript:alert(1)"><input value="XSS-input" onfocus="alert(1)"></form>'
        "<p style=\"background:url(javascript:alert('XSS-css'))\">样式</p>"
    )
    return [
        dict(id=2709, date="2025-07-29", author="作者\x01名", source="组织部",
             title="控制字符\x01\x08\x0b测试\x1f标题", body=["正文\x02含\x1b控制字符。", "第二段\x0c结束。"]),
        dict(id=2708, date="2025-07-28", author="x", source="组织部", title="脚本注入测试",
             body=[("raw", scripts, ["点击这里", "链接一 链接二 链接三", "样式"])]),
        dict(id=2707, date="2025-07-27", author="x", source="组织部", title="未闭合标签测试",
             body=[("raw", "<p><b>粗体<i>斜体<div>未闭合<table><tr><td>单元格", ["粗体斜体未闭合单元格"])]),
        dict(id=2706, date="2025-07-26", author="x", source="组织部", title="  \u3000 \t ",
             body=["空白标题文章的第一行。", "第二行。"]),
        dict(id=2705, date="2025-07-25", author="x", source="组织部", title="超大正文测试",
             body=["大" * 1000] * BIG_PARAGRAPHS),
        dict(id=2704, date="2025-07-24", author="x", source="组织部", title="附件是可执行文件",
             body=["见附件。"], attachments=[("setup.exe", "num")]),
        dict(id=2703, date="2025-07-23", author="x", source="组织部", title="外站链接测试",
             body=[("raw", f'<p><a href="{other}/evil/body-link.htm">外站页面</a>'
                           f'<img src="{other}/evil/pixel.png"></p>'
                           f'<p><a href="{other}/evil/file.pdf">外站文件.pdf</a></p>', ["外站页面", "外站文件.pdf"])]),
        dict(id=2702, date="2025-07-22", title="外站列表项", external=f"{other}/evil/list-link.htm"),
        dict(id=2701, date="2025-07-21", title="脚本链接列表项", external="javascript:alert('XSS-list-js')"),
        dict(id=2700, date="2025-07-20", title="数据链接列表项", external="data:text/html,XSS-list-data"),
    ]


@dataclass
class Run:
    returncode: int
    log: str
    run: CrawlRun
    articles: dict[str, Article]
    hits: list[Hit]


@dataclass
class Scenario:
    site: FaultyServer
    other: FaultyServer
    env: dict[str, str]
    feeds: Path
    first: Run
    second: Run
    feeds_checked: list[int]

    def url(self, path: str) -> str:
        return self.site.base + path


def _crawl(env: dict[str, str], site: FaultyServer) -> Run:
    site.reset_log()
    result = scrapy_crawl("dxgzdt", env)
    db = env["DATABASE_URL"]
    return Run(result.returncode, result.stderr, runs(db)[-1], {a.url: a for a in articles(db)}, site.hits)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, replica_build: tuple[Path, dict]) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("faults")
    with faulty(replica_build[0]) as other:
        hostile = hostile_articles(OTHER.format(port=other.port))
        twice = hostile[1]  # the script article is linked twice from the list
        build_site(tmp / "site", articles=[*hostile[:3], twice, *hostile[3:], *copy.deepcopy(BASE_ARTICLES)])
        with faulty(tmp / "site") as site:
            for case in PAGE_CASES:
                fault = case.fault
                if fault.location:
                    fault = Fault(fault.kind, location=fault.location.format(port=other.port))
                site.inject(case.path, fault)
            for path, fault in LIST_FAULTS.items():
                site.inject(path, fault)
            sources = write_sources(tmp / "sources.toml", {
                "name": "dxgzdt", "title": "党校工作动态", "list_url": f"{site.base}/dxgz/dxgzdt.htm"})
            env = project_env(f"sqlite:///{tmp / 'ghu.db'}", sources, tmp / "feeds", DOWNLOAD_TIMEOUT=1)
            checked = []
            first = _crawl(env, site)
            publish(env)
            checked.append(assert_feeds_valid(tmp / "feeds"))
            site.clear()
            second = _crawl(env, site)
            publish(env)
            checked.append(assert_feeds_valid(tmp / "feeds"))
            yield Scenario(site, other, env, tmp / "feeds", first, second, checked)


# ---------------------------------------------------------------- the crawl itself
def test_faults_never_crash_the_crawl_and_every_run_is_recorded(scenario: Scenario) -> None:
    for run in (scenario.first, scenario.second):
        assert run.returncode == 0, run.log[-3000:]
        assert "Traceback" not in run.log, run.log[-3000:]
        assert run.run.status == "ok", run.run.error
        assert run.run.finished_at is not None
    failing = [c for c in PAGE_CASES if c.outcome == "failed"]
    assert scenario.first.run.failed == len(failing)
    assert scenario.second.run.failed == 0
    assert integrity_check(scenario.env["DATABASE_URL"]) == "ok"


def test_feeds_are_valid_after_each_run(scenario: Scenario) -> None:
    assert all(n >= 4 for n in scenario.feeds_checked), scenario.feeds_checked  # rss, atom, json, opml


@pytest.mark.parametrize("case", PAGE_CASES, ids=[c.name for c in PAGE_CASES])
def test_page_fault(scenario: Scenario, case: Case) -> None:
    url = scenario.url(case.path)
    first = scenario.first.articles[url]
    if case.outcome == "stored":
        assert first.status == "ok", first.fetch_error
        expected = next(a for a in BASE_ARTICLES if a["id"] == case.newsid)
        assert first.title == expected["title"]  # decoded right, not mojibake
        assert "\ufffd" not in (first.body_text or "")
    else:
        assert first.status == "failed"
        assert re.search(case.reason, first.fetch_error or ""), first.fetch_error
        assert f"skipped {url}: " in scenario.first.log and "(will retry next run)" in scenario.first.log
        assert first.body_html is None
        # the next run asks for the page again and stores it
        assert [h for h in scenario.second.hits if h.path == case.path], "not fetched again"
    second = scenario.second.articles[url]
    assert second.status == "ok", second.fetch_error
    assert second.fetch_error is None and second.body_html


def test_every_article_is_stored_once_after_recovery(scenario: Scenario) -> None:
    stored = list(scenario.second.articles.values())
    local = [a for a in stored if not a.external]
    assert all(a.status == "ok" for a in local), [(a.url, a.fetch_error) for a in local if a.status != "ok"]
    expected_local = 45 + len([h for h in hostile_articles("x") if "external" not in h])
    assert len(local) == expected_local
    assert len(stored) == expected_local + 2  # the WeChat item and the off-site list item


# ---------------------------------------------------------------- hostile content
def _stored(scenario: Scenario, newsid: int) -> Article:
    return scenario.first.articles[scenario.url(INFO.format(newsid))]


def test_control_characters_are_stripped(scenario: Scenario) -> None:
    art = _stored(scenario, 2709)
    assert art.status == "ok"
    assert art.title == "控制字符测试标题"
    assert art.author == "作者名"
    for text in (art.title, art.list_title or "", art.body_html or "", art.body_text or "", art.author or ""):
        assert not C0.search(text), repr(text)


def test_scripts_styles_frames_handlers_and_bad_urls_are_removed(scenario: Scenario) -> None:
    art = _stored(scenario, 2708)
    assert art.status == "ok"
    body = art.body_html or ""
    assert MARKER not in body
    for bad in ("<script", "<style", "<iframe", "<svg", "<object", "<form", "<input", "style="):
        assert bad not in body.lower(), bad
    assert not EVENT_ATTR.search(body) and not BAD_URL.search(body) and "javascript:" not in body.lower()
    for kept in ("点击", "这里", "链接一", "链接二", "链接三", "样式"):
        assert kept in (art.body_text or ""), kept


def test_unclosed_tags_are_stored_as_well_formed_html(scenario: Scenario) -> None:
    art = _stored(scenario, 2707)
    assert art.status == "ok" and art.title == "未闭合标签测试"
    assert "粗体" in art.body_text and "单元格" in art.body_text


def test_whitespace_title_falls_back_to_the_first_line_not_the_meta_line(scenario: Scenario) -> None:
    art = _stored(scenario, 2706)
    assert art.status == "ok"
    assert art.title == "空白标题文章的第一行。"


def test_a_3mb_body_is_stored_whole(scenario: Scenario) -> None:
    art = _stored(scenario, 2705)
    assert art.status == "ok"
    assert len((art.body_text or "").replace("\n", "")) == 1000 * BIG_PARAGRAPHS
    assert len((art.body_html or "").encode()) > 3_000_000


def test_an_article_linked_twice_is_fetched_and_stored_once(scenario: Scenario) -> None:
    path = INFO.format(2708)
    assert len([h for h in scenario.first.hits if h.path == path]) == 1
    urls = [a.url for a in scenario.first.articles.values()]
    assert urls.count(scenario.url(path)) == 1


def test_an_exe_attachment_is_listed_never_downloaded(scenario: Scenario) -> None:
    art = _stored(scenario, 2704)
    assert [(a.name, a.mime_type) for a in art.attachments] == [("setup.exe", "application/octet-stream")]
    assert not [h for h in scenario.first.hits + scenario.second.hits if "download.jsp" in h.target]


def test_other_domains_are_never_requested(scenario: Scenario) -> None:
    """Off-site list item, body link, image, in-body file and redirect: none of them is fetched."""
    assert scenario.other.hits == []
    own = f"127.0.0.1:{scenario.site.port}"
    assert {h.host for h in scenario.first.hits + scenario.second.hits} == {own}
    listed = scenario.first.articles[OTHER.format(port=scenario.other.port) + "/evil/list-link.htm"]
    assert listed.external and listed.status == "ok"
    linking = _stored(scenario, 2703)
    assert f"localhost:{scenario.other.port}/evil/body-link.htm" in (linking.body_html or "")


def test_script_and_data_links_in_the_list_are_dropped(scenario: Scenario) -> None:
    urls = list(scenario.second.articles)
    assert not [u for u in urls if not u.startswith(("http://", "https://"))], urls
    assert not [a for a in scenario.second.articles.values() if a.title in ("脚本链接列表项", "数据链接列表项")]


def test_published_files_carry_no_executable_content(scenario: Scenario) -> None:
    """Feeds, archive pages, index.html and OPML: no article markup that could run in a reader."""
    checked = 0
    for path in sorted(scenario.feeds.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        text = path.read_text("utf-8")
        assert MARKER not in text, path
        assert "\x01" not in text and "\x1b" not in text, path
        unescaped = html.unescape(html.unescape(text))  # feeds escape article HTML once, JSON may too
        assert not EVENT_ATTR.search(unescaped), (path, EVENT_ATTR.search(unescaped))
        assert not BAD_URL.search(unescaped), (path, BAD_URL.search(unescaped))
        assert "javascript:" not in unescaped.lower(), path
        if path.suffix != ".html":
            assert "<script" not in unescaped.lower(), path
        checked += 1
    assert checked >= 5
    index = (scenario.feeds / "index.html").read_text("utf-8")
    assert index.lower().count("<script") <= 1  # the page's own copy-button script, nothing from articles


# ---------------------------------------------------------------- list page faults
LIST_CASES = [
    ("503-retry-after", "/dxgz/dxgzdt.htm", Fault("status", status=503, headers={"Retry-After": "1"}), r"503"),
    ("timeout", "/dxgz/dxgzdt.htm", Fault("delay", seconds=8), r"DownloadTimeoutError"),
    ("connection-reset", "/dxgz/dxgzdt/3.htm", Fault("reset"), r"Connection|ResponseNeverReceived"),
    ("truncated-body", "/dxgz/dxgzdt/2.htm", Fault("truncate"), r"DataLoss"),
    ("redirect-loop", "/dxgz/dxgzdt.htm", Fault("loop"), r"max redirections"),
    ("offsite-redirect", "/dxgz/dxgzdt.htm", Fault("redirect", location=OTHER + "/dxgz/dxgzdt.htm"), r"off-site"),
    ("20MB-body", "/dxgz/dxgzdt/3.htm", Fault("huge"), r"DownloadCancelled"),
    ("endless-chunked", "/dxgz/dxgzdt/1.htm", Fault("endless"), r"DownloadCancelled"),
]


@pytest.mark.parametrize(("path", "fault", "reason"), [c[1:] for c in LIST_CASES], ids=[c[0] for c in LIST_CASES])
def test_list_page_fault_fails_the_run_keeps_what_it_got_and_the_next_run_completes(
        replica_build: tuple[Path, dict], tmp_path: Path, path: str, fault: Fault, reason: str) -> None:
    root, _manifest = replica_build
    with faulty(root) as other, faulty(root) as site:
        if fault.location:
            fault = Fault(fault.kind, location=fault.location.format(port=other.port))
        site.inject(path, fault)
        sources = write_sources(tmp_path / "sources.toml", {
            "name": "dxgzdt", "title": "党校工作动态", "list_url": f"{site.base}/dxgz/dxgzdt.htm"})
        env = project_env(f"sqlite:///{tmp_path / 'ghu.db'}", sources, tmp_path / "feeds", DOWNLOAD_TIMEOUT=1)
        db = env["DATABASE_URL"]
        failed = run_cli(env, "--once")
        assert failed.returncode == 1, failed.stderr[-3000:]
        assert "Traceback" not in failed.stderr, failed.stderr[-3000:]
        run = runs(db)[-1]
        assert run.status == "failed" and re.search(reason, run.error or ""), run.error
        kept = {a.url for a in articles(db) if a.status == "ok"}
        if path != "/dxgz/dxgzdt.htm":
            assert len(kept) >= 15, "articles of the pages before the broken one were not kept"
        assert_feeds_valid(tmp_path / "feeds")
        assert other.hits == []

        site.clear()
        ok = run_cli(env, "--once")
        assert ok.returncode == 0, ok.stderr[-3000:]
        assert runs(db)[-1].status == "ok"
        stored = articles(db)
        assert len(stored) == len({a.url for a in stored}) == 46
        assert kept <= {a.url for a in stored if a.status == "ok"}
        assert_feeds_valid(tmp_path / "feeds")
