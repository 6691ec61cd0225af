"""Several sources in one crawl: a source's failure stays its own, and a kill -9 loses nothing in any source."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import feedparser
import pytest

from crawler.shards import host_of, split_by_host
from crawler.sources import Source
from tests.fixtures.faulty import integrity_check, run_cli
from tests.fixtures.project import ROOT, articles, project_env, runs, write_sources
from tests.fixtures.service import wait_for
from tests.fixtures.site import build_site, serve

pytestmark = pytest.mark.slow


def _src(name: str, host: str, path: str = "/a.htm") -> Source:
    return Source(name=name, title=name, list_url=f"http://{host}{path}")


def test_split_by_host_keeps_a_host_in_one_shard_and_balances() -> None:
    sources = [_src(f"a{i}", "a.example") for i in range(4)] + [_src("b0", "B.example:8080")] + \
        [_src(f"c{i}", "c.example") for i in range(3)]
    shards = split_by_host(sources, 2)
    assert len(shards) == 2
    hosts = [{host_of(s) for s in shard} for shard in shards]
    assert not hosts[0] & hosts[1]
    assert sorted(len(shard) for shard in shards) == [4, 4]
    assert split_by_host(sources, 10) and len(split_by_host(sources, 10)) == 3  # never more shards than hosts
    assert [s.name for s in split_by_host(sources, 1)[0]] == [s.name for s in sources]
    assert host_of(_src("x", "B.example:8080")) == "b.example"
    assert split_by_host([], 4) == []


def _two_columns(tmp_path: Path) -> tuple[Path, Path]:
    first = tmp_path / "site1"
    build_site(first)
    second = tmp_path / "site2"
    build_site(second, COLUMN="党建工作", TREE_ID=1016)
    return first, second


def test_a_drifted_column_fails_alone_and_the_others_are_stored_and_published(db_url: str, tmp_path: Path) -> None:
    good_root, drift_root = _two_columns(tmp_path)
    list_page = drift_root / "dxgz" / "dxgzdt.htm"
    list_page.write_text("<html><body><div class='main'>栏目改版中</div></body></html>", "utf-8")
    with serve(good_root) as good, serve(drift_root) as drifted:
        sources = write_sources(tmp_path / "sources.toml",
                                {"name": "good", "title": "好", "list_url": f"{good.base}/dxgz/dxgzdt.htm"},
                                {"name": "drifted", "title": "坏", "list_url": f"{drifted.base}/dxgz/dxgzdt.htm"})
        env = project_env(db_url, sources, tmp_path / "feeds")
        result = run_cli(env, "--once")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "drifted: crawl failed: template changed?" in result.stderr
    assert "good: crawl failed" not in result.stderr
    by_source = {r.source_id: r for r in runs(db_url)}
    assert sorted(r.status for r in by_source.values()) == ["failed", "ok"]
    assert [a.status for a in articles(db_url, "good")] == ["ok"] * 46  # 45 article pages, 1 off-site item
    assert articles(db_url, "drifted") == []
    feed = feedparser.parse((tmp_path / "feeds" / "good.xml").read_bytes())
    assert not feed.bozo and len(feed.entries) == 46
    assert "Traceback" not in result.stderr


def test_kill_9_mid_crawl_of_several_sources_loses_and_duplicates_nothing(db_url: str, tmp_path: Path) -> None:
    first, second = _two_columns(tmp_path)
    with serve(first, delay=0.05) as one, serve(second, delay=0.05) as two:
        sources = write_sources(tmp_path / "sources.toml",
                                {"name": "one", "title": "一", "list_url": f"{one.base}/dxgz/dxgzdt.htm"},
                                {"name": "two", "title": "二", "list_url": f"{two.base}/dxgz/dxgzdt.htm"})
        # one host (127.0.0.1) for both: ~94 requests at >= 0.1 s apart, so there is time to kill mid-crawl
        env = project_env(db_url, sources, tmp_path / "feeds", CRAWL_DELAY="0.1")
        proc = subprocess.Popen([sys.executable, "scheduler.py", "--once"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            def both_storing() -> bool:
                stored = Counter(a.source_id for a in articles(db_url) if a.status == "ok")
                return len(stored) == 2 and min(stored.values()) >= 3

            wait_for(both_storing, 120, "articles of both sources being stored")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        before = {(a.source_id, a.url, a.content_hash) for a in articles(db_url) if a.status == "ok"}
        assert integrity_check(db_url) == "ok"
        assert [r.status for r in runs(db_url)] == ["running", "running"]  # killed before recording anything

        result = run_cli(env, "--once")
    assert result.returncode == 0, result.stderr[-3000:]
    final = runs(db_url)
    assert [r.status for r in final[:2]] == ["failed", "failed"]
    assert all("ended before finishing" in (r.error or "") for r in final[:2])
    assert [r.status for r in final[2:]] == ["ok", "ok"]
    after = [a for a in articles(db_url) if a.status == "ok"]
    assert before <= {(a.source_id, a.url, a.content_hash) for a in after}  # nothing stored before is lost
    for name in ("one", "two"):
        urls = [a.url for a in articles(db_url, name)]
        assert len(urls) == len(set(urls)) == 46, name  # complete, no duplicates
    assert integrity_check(db_url) == "ok"


def test_an_unreachable_source_is_one_logged_reason_not_a_traceback(tmp_path: Path) -> None:
    from tests.fixtures.service import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    sources = write_sources(tmp_path / "sources.toml",
                            {"name": "dead", "title": "无法访问", "list_url": f"{dead}/dxgz/dxgzdt.htm"})
    env = project_env(f"sqlite:///{tmp_path / 'ghu.db'}", sources, tmp_path / "feeds")
    result = run_cli(env, "--once")
    assert result.returncode == 1
    assert "dead: crawl failed: list page" in result.stderr and "unreachable" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
