"""The column's list page is found on the site, not guessed: from the seed article's breadcrumb, from the
home page's navigation, and again when a remembered list page moves. Template variants (no article meta
line, GBK pages) crawl to the same fields as their manifests.

Every test runs a real `scrapy crawl column` subprocess against a replica variant on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import Source
from tests.crawl_helpers import assert_matches_manifest
from tests.fixtures.project import articles, factory, project_env, runs, scrapy_crawl, write_sources
from tests.fixtures.site import Hit, build_site, serve

pytestmark = pytest.mark.slow

COLUMN = "党校工作动态"
OLD_GUESS = "/dxgz/dxgzdt.htm"


def _sources(tmp_path: Path, **fields: str) -> Path:
    return write_sources(tmp_path / "sources.toml", {"name": "dxgzdt", "title": COLUMN, **fields})


def _crawl(env: dict[str, str]) -> None:
    result = scrapy_crawl("dxgzdt", env)
    assert result.returncode == 0, result.stderr[-3000:]


def _last_run_ok(db_url: str) -> Any:
    run = runs(db_url)[-1]
    assert run.status == "ok", run.error
    return run


def _discovered(db_url: str) -> str | None:
    with factory(db_url)() as s:
        return s.scalar(select(Source.discovered_list_url).where(Source.name == "dxgzdt"))


def _statuses(hits: list[Hit], path: str) -> list[int]:
    return [h.status for h in hits if h.path == path]


def test_moved_list_is_found_from_the_seed_breadcrumb_and_remembered(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "site"
    manifest = build_site(root, LIST_DIR="news", LIST_SLUG="dtxx")
    with serve(root) as site:
        env = project_env(db_url, _sources(tmp_path, list_url=site.base + OLD_GUESS,
                                           seed_url=f"{site.base}/info/1015/2556.htm", column=COLUMN))
        _crawl(env)
        first = _last_run_ok(db_url)
        assert first.new == 46
        assert_matches_manifest(articles(db_url), manifest, site.base)
        assert _discovered(db_url) == f"{site.base}/news/dtxx.htm"
        hits = site.hits
        assert _statuses(hits, OLD_GUESS) == [404]
        paths = [h.path for h in hits]
        assert paths.index(OLD_GUESS) < paths.index("/info/1015/2556.htm") < paths.index("/news/dtxx.htm")

        site.reset()
        _crawl(env)
        second = _last_run_ok(db_url)
        hits = site.hits
        assert (second.new, second.updated, second.removed) == (0, 0, 0)
        assert not [h for h in hits if h.path.startswith("/dxgz/")], [(h.path, h.status) for h in hits]
        assert _statuses(hits, "/news/dtxx.htm") == [304]
        assert not [h for h in hits if h.path == "/info/1015/2556.htm"]
    assert len(articles(db_url)) == 46


@pytest.mark.parametrize("layout", ["seed-is-home", "dead-list-no-seed"])
def test_list_is_found_from_the_home_page_alone(layout: str, sqlite_url: str, tmp_path: Path) -> None:
    root = tmp_path / "site"
    manifest = build_site(root, LIST_DIR="news", LIST_SLUG="dtxx")
    with serve(root) as site:
        fields = ({"seed_url": site.base + "/"} if layout == "seed-is-home"
                  else {"list_url": site.base + "/gone/list.htm"})
        env = project_env(sqlite_url, _sources(tmp_path, column=COLUMN, **fields))
        _crawl(env)
        _last_run_ok(sqlite_url)
        assert_matches_manifest(articles(sqlite_url), manifest, site.base)
        assert _discovered(sqlite_url) == f"{site.base}/news/dtxx.htm"
        hits = site.hits
        assert _statuses(hits, "/") == [200]
        if layout == "dead-list-no-seed":
            assert _statuses(hits, "/gone/list.htm") == [404]

        site.reset()
        _crawl(env)
        _last_run_ok(sqlite_url)
        assert [(h.path, h.status) for h in site.hits if h.path in ("/", "/news/dtxx.htm", "/gone/list.htm")] == [
            ("/news/dtxx.htm", 304)]


def test_rediscovers_when_the_remembered_list_page_moves(sqlite_url: str, tmp_path: Path) -> None:
    root = tmp_path / "site"
    build_site(root, LIST_DIR="news", LIST_SLUG="dtxx")
    with serve(root) as site:
        env = project_env(sqlite_url, _sources(tmp_path, list_url=site.base + OLD_GUESS,
                                               seed_url=f"{site.base}/info/1015/2556.htm", column=COLUMN))
        _crawl(env)
        _last_run_ok(sqlite_url)
        assert _discovered(sqlite_url) == f"{site.base}/news/dtxx.htm"

        manifest = build_site(root, LIST_DIR="xwzx", LIST_SLUG="gzdt")  # the site is reorganised again
        site.reset()
        _crawl(env)
        run = _last_run_ok(sqlite_url)
        assert (run.new, run.removed) == (0, 0)
        hits = site.hits
        assert _statuses(hits, "/news/dtxx.htm") == [404]
        assert _statuses(hits, "/xwzx/gzdt.htm") == [200]
        assert _discovered(sqlite_url) == f"{site.base}/xwzx/gzdt.htm"
        assert_matches_manifest(articles(sqlite_url), manifest, site.base)

        site.reset()
        _crawl(env)
        _last_run_ok(sqlite_url)
        assert _statuses(site.hits, "/xwzx/gzdt.htm") == [304]
        assert not _statuses(site.hits, "/news/dtxx.htm")


@pytest.mark.parametrize("variant", [{"article_meta": False}, {"encoding": "gbk"}], ids=["no-article-meta", "gbk"])
def test_template_variants_crawl_to_their_manifest(variant: dict[str, Any], sqlite_url: str, tmp_path: Path) -> None:
    root = tmp_path / "site"
    manifest = build_site(root, **variant)
    with serve(root) as site:
        env = project_env(sqlite_url, _sources(tmp_path, list_url=site.base + OLD_GUESS,
                                               seed_url=f"{site.base}/info/1015/2556.htm", column=COLUMN))
        _crawl(env)
        assert _last_run_ok(sqlite_url).new == 46
        stored = articles(sqlite_url)
        assert_matches_manifest(stored, manifest, site.base)
    if not variant.get("article_meta", True):
        assert all(a.author is None and a.origin is None for a in stored)
    else:
        assert any(a.author == "党校办公室" for a in stored)


def test_a_broken_breadcrumb_link_falls_back_to_the_home_page(sqlite_url: str, tmp_path: Path) -> None:
    """The seed's breadcrumb names the column but links a dead page: the home page's menu still finds it."""
    root = tmp_path / "site"
    manifest = build_site(root, LIST_DIR="news", LIST_SLUG="dtxx")
    seed = root / "info" / "1015" / "2556.htm"
    html = seed.read_bytes()
    crumb = html.index(b'<div class="dqwz">')
    end = html.index(b"</div>", crumb)
    assert html.count(b"../../news/dtxx.htm", crumb, end) == 1
    seed.write_bytes(html[:crumb] + html[crumb:end].replace(b"../../news/dtxx.htm", b"../../dxgz/gone.htm")
                     + html[end:])
    with serve(root) as site:
        env = project_env(sqlite_url, _sources(tmp_path, list_url=site.base + OLD_GUESS,
                                               seed_url=f"{site.base}/info/1015/2556.htm", column=COLUMN))
        _crawl(env)
        _last_run_ok(sqlite_url)
        hits = site.hits
        assert _statuses(hits, "/dxgz/gone.htm") == [404]
        assert _statuses(hits, "/") == [200]
        assert _discovered(sqlite_url) == f"{site.base}/news/dtxx.htm"
        stored = articles(sqlite_url)
    assert_matches_manifest(stored, manifest, site.base)
