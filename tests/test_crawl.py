"""A real `scrapy crawl column` against the replica on 127.0.0.1: full archive, incremental, polite."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.crawl_helpers import assert_matches_manifest
from tests.fixtures.project import articles, project_env, runs, scrapy_crawl, write_sources
from tests.fixtures.site import BASE_ARTICLES, build_site, serve

pytestmark = pytest.mark.slow


def _sources(tmp_path: Path, base: str, **extra: str) -> Path:
    return write_sources(tmp_path / "sources.toml", {
        "name": "dxgzdt", "title": "党校工作动态", "list_url": f"{base}/dxgz/dxgzdt.htm",
        "seed_url": f"{base}/info/1015/2556.htm", "column": "党校工作动态", **extra})


def _crawl(env: dict[str, str]) -> None:
    result = scrapy_crawl("dxgzdt", env)
    assert result.returncode == 0, result.stderr[-3000:]


def test_backfill_matches_expected_and_idle_poll_is_cheap(db_url: str, replica_build, tmp_path: Path) -> None:
    root, manifest = replica_build
    with serve(root) as site:
        env = project_env(db_url, _sources(tmp_path, site.base))
        _crawl(env)
        assert_matches_manifest(articles(db_url), manifest, site.base)
        first = runs(db_url)[-1]
        assert first.status == "ok", first.error
        assert first.new == 46

        site.reset()
        _crawl(env)
        hits = site.hits
        second = runs(db_url)[-1]
        assert second.status == "ok", second.error
        assert (second.new, second.updated, second.removed) == (0, 0, 0)
        assert len(hits) <= 2, [(h.path, h.status) for h in hits]
        assert [h.status for h in hits if h.path.endswith("dxgzdt.htm")] == [304]
        assert not [h for h in hits if h.status == 200]
    assert len(articles(db_url)) == 46


def test_incremental_run_stores_new_notices_edits_and_removals(sqlite_url: str, replica_copy,
                                                               tmp_path: Path) -> None:
    root, _manifest = replica_copy
    with serve(root) as site:
        env = project_env(sqlite_url, _sources(tmp_path, site.base), RECHECK_INTERVAL=0)
        _crawl(env)
        assert len(articles(sqlite_url)) == 46

        edited = copy.deepcopy(BASE_ARTICLES)
        new = [dict(id=2690 + i, date=f"2025-07-0{3 - i}", author="党校办公室", source="组织部",
                    title=f"新增测试文章第{i + 1}篇：党校工作动态", body=[f"第{i + 1}篇新文章的正文。", "第二段。"])
               for i in range(3)]
        edited[1]["body"] = [*edited[1]["body"], "（本文已更新：补充了活动照片说明。）"]  # 2676, recent
        deleted = edited.pop(8)  # 2621
        assert deleted["id"] == 2621
        manifest = build_site(root, articles=new + edited)

        site.reset()
        _crawl(env)
        hits = site.hits
        run = runs(sqlite_url)[-1]
        assert run.status == "ok", run.error
        assert (run.new, run.updated, run.removed) == (3, 1, 1)

        article_gets = [h for h in hits if h.path.startswith("/info/")]
        unconditional = sorted(h.path for h in article_gets if "If-None-Match" not in h.headers
                               and "If-Modified-Since" not in h.headers)
        assert unconditional == sorted(f"/info/1015/{a['id']}.htm" for a in new)
        list_pages = [h.path for h in hits if h.path.startswith("/dxgz/")]
        assert list_pages == ["/dxgz/dxgzdt.htm", "/dxgz/dxgzdt/3.htm"], list_pages

    stored = articles(sqlite_url)
    urls = [a.url for a in stored]
    assert len(urls) == len(set(urls)) == 49
    removed = [a for a in stored if a.removed_at is not None]
    assert [a.url for a in removed] == [f"{site.base}/info/1015/2621.htm"]
    updated = next(a for a in stored if a.url.endswith("/2676.htm"))
    assert "本文已更新" in updated.body_text
    assert updated.updated_at >= run.started_at
    visible = [a for a in stored if a.removed_at is None]
    assert_matches_manifest(visible, manifest, site.base)
