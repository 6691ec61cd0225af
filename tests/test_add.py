"""`python scheduler.py add URL`: any page of a VSB column becomes a working source in one command; anything
else is refused in one line with the sources file untouched. And several sources crawl and publish
together (combined feeds, index, OPML, status).

Everything runs against sites on 127.0.0.1: replica variants and a plain (non-VSB) static server.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import http.server
import io
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import feedparser
import lxml.html
import pytest
from lxml import etree

from crawler.add_source import AddError, add_source, slug_for
from crawler.sources import load_sources
from settings import load_config
from tests.crawl_helpers import assert_matches_manifest
from tests.fixtures.project import ROOT, articles, project_env, runs, write_sources
from tests.fixtures.site import BASE_ARTICLES, SiteServer, build_site, serve

COLUMN = "党校工作动态"
SITE_NAME = "长春光华学院组织部"
LIST_PATH = "/news/dtxx.htm"  # moved away from the /dxgz/dxgzdt.htm guess: add must find it, not guess it
HEADER = ("# Columns to crawl (test copy).\n"
          "# This comment and the blank line below must survive `add`.\n"
          "\n"
          "# title is what feed readers show.\n")


@pytest.fixture(scope="module")
def moved_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SiteServer, dict[str, Any]]]:
    """The replica with its list page moved; read-only for the tests (one extra page: empty.htm)."""
    root = tmp_path_factory.mktemp("add") / "site"
    manifest = build_site(root, LIST_DIR="news", LIST_SLUG="dtxx")
    (root / "empty.htm").write_text(
        '<html><head><script type="text/javascript">_jsq_(1015,\'/list.jsp\',-1,1698203425)</script></head>'
        '<body><div class="n-list"><ul></ul><div class="pb_sys_common pb_sys_normal"><span class="p_t">共0条'
        "</span></div></div></body></html>", encoding="utf-8")
    with serve(root) as site:
        yield site, manifest


@contextlib.contextmanager
def plain_site(root: Path) -> Iterator[str]:
    """Python's own static file server: an ordinary, non-VSB web site."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "scheduler.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def newest_on_page_one(manifest: dict[str, Any]) -> dict[str, Any]:
    local = [a for a in manifest["articles"] if a["list_page_index"] == 1 and not a["external"]]
    return max(local, key=lambda a: (a["published"], -a["position"]))


# ---------------------------------------------------------------- add: one command, then a working crawl
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["list", "article", "home"])
def test_add_appends_a_source_that_crawls(kind: str, moved_site: tuple[SiteServer, dict[str, Any]],
                                          sqlite_url: str, tmp_path: Path) -> None:
    site, manifest = moved_site
    url = {"list": site.base + LIST_PATH, "article": f"{site.base}/info/1015/2556.htm", "home": site.base + "/"}[kind]
    sources = tmp_path / "sources.toml"
    sources.write_text(HEADER, encoding="utf-8")
    env = project_env(sqlite_url, sources, tmp_path / "feeds")

    result = run_cli(env, "add", url, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    list_url = site.base + LIST_PATH
    assert COLUMN in out and list_url in out
    assert "15 on page 1" in out
    newest = newest_on_page_one(manifest)
    assert newest["title"] in out and newest["published"] in out
    assert "default VSB selectors" in out

    text = sources.read_text(encoding="utf-8")
    assert text.startswith(HEADER), "existing comments and layout must be kept byte for byte"
    src = load_sources(sources)["dtxx"]
    assert (src.list_url, src.column, src.title) == (list_url, COLUMN, f"{SITE_NAME} · {COLUMN}")
    assert src.seed_url == (url if kind == "article" else None)

    once = run_cli(env, "--once")
    assert once.returncode == 0, once.stderr[-3000:]
    assert [r.status for r in runs(sqlite_url)] == ["ok"]
    assert_matches_manifest(articles(sqlite_url, "dtxx"), manifest, site.base)
    assert (tmp_path / "feeds" / "dtxx.xml").is_file()


# ---------------------------------------------------------------- add: refusals leave the file alone
def _refused(env: dict[str, str], sources: Path, *args: str) -> str:
    before = sources.read_bytes()
    result = run_cli(env, "add", *args, timeout=120)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert sources.read_bytes() == before
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _existing_sources(tmp_path: Path) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(HEADER + '\n[[source]]\nname = "other"  # keep\ntitle = "Other"\n'
                    'list_url = "http://127.0.0.1:9/other/list.htm"\n', encoding="utf-8")
    return path


@pytest.mark.slow
def test_add_refuses_a_non_vsb_page(sqlite_url: str, tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text('<html><head><title>Plain</title></head><body><h1>Hello</h1>'
                                    '<ul><li><a href="a.html">A page</a> 2024-10-24</li></ul></body></html>',
                                    encoding="utf-8")
    sources = _existing_sources(tmp_path)
    env = project_env(sqlite_url, sources)
    with plain_site(www) as base:
        line = _refused(env, sources, base + "/")
    assert "not a VSB" in line


@pytest.mark.slow
def test_add_refuses_an_unreachable_host(sqlite_url: str, tmp_path: Path) -> None:
    sources = _existing_sources(tmp_path)
    line = _refused(project_env(sqlite_url, sources), sources, f"http://127.0.0.1:{closed_port()}/dxgz/dxgzdt.htm")
    assert "cannot reach" in line


@pytest.mark.slow
@pytest.mark.parametrize(("path", "args", "why"), [
    ("/nope.htm", (), "HTTP 404"),
    ("/empty.htm", (), "no entries"),
    ("/", ("--column", "不存在的栏目"), "no link named"),
    (LIST_PATH, ("--name", "other"), "already has a source named"),
    (LIST_PATH, ("--name", "All"), "--name"),
])
def test_add_refuses_what_is_not_a_usable_column(path: str, args: tuple[str, ...], why: str,
                                                 moved_site: tuple[SiteServer, dict[str, Any]],
                                                 sqlite_url: str, tmp_path: Path) -> None:
    site, _manifest = moved_site
    sources = _existing_sources(tmp_path)
    assert why in _refused(project_env(sqlite_url, sources), sources, site.base + path, *args)


def test_add_refuses_a_column_already_configured(moved_site: tuple[SiteServer, dict[str, Any]],
                                                 tmp_path: Path) -> None:
    site, _manifest = moved_site
    sources = write_sources(tmp_path / "sources.toml", {"name": "dx", "title": COLUMN,
                                                        "list_url": site.base + LIST_PATH})
    before = sources.read_bytes()
    with pytest.raises(AddError, match="already has this column as source 'dx'"):
        add_source(load_config({"SOURCES_FILE": str(sources)}), f"{site.base}/info/1015/2556.htm",
                   name=None, column=None, out=io.StringIO())
    assert sources.read_bytes() == before


def test_add_makes_names_unique_and_creates_a_missing_file(moved_site: tuple[SiteServer, dict[str, Any]],
                                                           tmp_path: Path) -> None:
    site, _manifest = moved_site
    sources = tmp_path / "new" / "sources.toml"
    cfg = load_config({"SOURCES_FILE": str(sources)})
    first = add_source(cfg, site.base + "/", name=None, column=COLUMN, out=io.StringIO())
    assert first.name == "dtxx" and first.list_url == site.base + LIST_PATH
    assert list(load_sources(sources)) == ["dtxx"]
    text = sources.read_text(encoding="utf-8").replace(site.base + LIST_PATH, site.base + "/elsewhere.htm")
    sources.write_text(text, encoding="utf-8")  # same name, another list: the next add needs a new name
    second = add_source(cfg, site.base + LIST_PATH, name=None, column=None, out=io.StringIO())
    assert second.name == "dtxx-2"
    assert list(load_sources(sources)) == ["dtxx", "dtxx-2"]
    assert not [p for p in sources.parent.iterdir() if p.name.endswith(".tmp")]


def test_slug_for_list_urls() -> None:
    assert slug_for("https://zzb.ghu.edu.cn/dxgz/dxgzdt.htm", set()) == "dxgzdt"
    assert slug_for("https://zzb.ghu.edu.cn/dxgz/dxgzdt.htm", {"dxgzdt", "dxgzdt-2"}) == "dxgzdt-3"
    assert slug_for("https://x.edu.cn/list.jsp?urltype=tree.TreeTempUrl&wbtreeid=1102", set()) == "column1102"
    assert slug_for("https://x.edu.cn/Tzgg/XSTZ.htm", set()) == "xstz"
    assert slug_for("https://x.edu.cn/all.htm", set()) == "column-all"
    assert slug_for("https://x.edu.cn/新闻.htm", set()) == "column"


# ---------------------------------------------------------------- several sources
SECOND_COLUMN = "工作通知"
SECOND_TITLE = f"{SITE_NAME} · {SECOND_COLUMN}"
FIRST_TITLE = f"{SITE_NAME} · {COLUMN}"


def _second_column_articles() -> list[dict[str, Any]]:
    """Four notices with their own ids, dated between the replica's items so the merge order matters."""
    template = next(a for a in BASE_ARTICLES if not a.get("external") and not a.get("seed"))
    dates = ["2025-06-25", "2025-05-20", "2024-12-10", "2023-03-01"]
    return [{**copy.deepcopy(template), "id": 3001 + i, "date": date, "attachments": [],
             "title": f"关于做好{date[:4]}年第{i + 1}批组织工作事项的通知",
             "body": [f"各党总支：现将第{i + 1}批工作事项通知如下。", "请按时完成。", ("right", "组织部")]}
            for i, date in enumerate(dates)]


def _entry_time(entry: Any) -> datetime:
    return datetime(*entry.published_parsed[:6])


@pytest.mark.slow
def test_two_sources_crawl_and_publish_together(sqlite_url: str, tmp_path: Path) -> None:
    first_manifest = build_site(tmp_path / "a")
    second_manifest = build_site(tmp_path / "b", articles=_second_column_articles(), COLUMN=SECOND_COLUMN,
                                 TREE_ID=1016, PARENT="组织工作", PARENT_TREE_ID=1012, LIST_DIR="zzgz",
                                 LIST_SLUG="gztz")
    feeds = tmp_path / "feeds"
    with serve(tmp_path / "a") as a, serve(tmp_path / "b") as b:
        sources = write_sources(
            tmp_path / "sources.toml",
            {"name": "dxgzdt", "title": FIRST_TITLE, "list_url": a.base + "/dxgz/dxgzdt.htm", "column": COLUMN},
            {"name": "gztz", "title": SECOND_TITLE, "list_url": b.base + "/zzgz/gztz.htm", "column": SECOND_COLUMN})
        env = project_env(sqlite_url, sources, feeds, FEED_MAX_ITEMS=100, PUBLIC_URL="http://feeds.test/")
        once = run_cli(env, "--once")
        assert once.returncode == 0, once.stderr[-3000:]
        assert_matches_manifest(articles(sqlite_url, "dxgzdt"), first_manifest, a.base)
        assert_matches_manifest(articles(sqlite_url, "gztz"), second_manifest, b.base)

        status = run_cli(env, "status", timeout=60)
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:] if line.strip()}
    assert rows["dxgzdt"][1] == "46" and rows["gztz"][1] == "4", status.stdout
    assert "ok" in rows["dxgzdt"] and "ok" in rows["gztz"], status.stdout

    def expected(manifest: dict[str, Any], base: str, title: str) -> dict[str, str]:
        return {(x["url"] if x["external"] else base + x["url"]): title for x in manifest["articles"]}

    column_of = {**expected(first_manifest, a.base, FIRST_TITLE), **expected(second_manifest, b.base, SECOND_TITLE)}
    assert len(column_of) == 50

    for ext in ("xml", "atom"):
        feed = feedparser.parse((feeds / f"all.{ext}").read_bytes())
        assert feed.bozo == 0, (ext, feed.get("bozo_exception"))
        links = [e.link for e in feed.entries]
        assert sorted(links) == sorted(column_of), ext  # every entry of both columns, each exactly once
        times = [_entry_time(e) for e in feed.entries]
        assert times == sorted(times, reverse=True), ext
        for e in feed.entries:
            assert [t.term for t in e.tags] == [column_of[e.link]], (ext, e.link)
        assert links.index(f"{b.base}/info/1016/3001.htm") < links.index(f"{a.base}/info/1015/2681.htm")

    doc = json.loads((feeds / "all.json").read_text(encoding="utf-8"))
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    items = doc["items"]
    assert sorted(i["url"] for i in items) == sorted(column_of)
    assert len({i["id"] for i in items}) == len(items)
    stamps = [datetime.fromisoformat(i["date_published"]) for i in items]
    assert stamps == sorted(stamps, reverse=True)
    assert all(i["tags"] == [column_of[i["url"]]] for i in items)

    index = lxml.html.fromstring((feeds / "index.html").read_bytes())
    hrefs = set(index.xpath("//a/@href"))
    text = index.text_content()
    for slug, title in (("dxgzdt", FIRST_TITLE), ("gztz", SECOND_TITLE), ("all", None)):
        assert {f"http://feeds.test/{slug}.{e}" for e in ("xml", "atom", "json")} & hrefs, slug
        if title:
            assert title in text
    opml = etree.fromstring((feeds / "opml.xml").read_bytes())
    xml_urls = {o.get("xmlUrl") for o in opml.iter("outline")}
    assert {"http://feeds.test/dxgzdt.xml", "http://feeds.test/gztz.xml"} <= xml_urls
    titles = {o.get("title") or o.get("text") for o in opml.iter("outline")}
    assert {FIRST_TITLE, SECOND_TITLE} <= titles


def test_add_obeys_robots_txt_and_stays_on_the_host(moved_site: tuple[SiteServer, dict[str, Any]],
                                                    tmp_path: Path) -> None:
    site, _manifest = moved_site
    sources = _existing_sources(tmp_path)
    before = sources.read_bytes()
    cfg = load_config({"SOURCES_FILE": str(sources)})
    root = tmp_path / "site"
    build_site(root)
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /info/\n", encoding="utf-8")
    with serve(root) as guarded, pytest.raises(AddError, match="robots.txt"):
        add_source(cfg, f"{guarded.base}/info/1015/2556.htm", name=None, column=None, out=io.StringIO())

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # every page "moved" to the replica on another port
            if self.path == "/robots.txt":
                self.send_error(404)
                return
            self.send_response(302)
            self.send_header("Location", site.base + LIST_PATH)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(AddError, match="redirects to another host"):
            add_source(cfg, f"http://127.0.0.1:{httpd.server_address[1]}/dxgz/dxgzdt.htm", name=None, column=None,
                       out=io.StringIO())
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert sources.read_bytes() == before
