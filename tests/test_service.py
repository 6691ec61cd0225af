"""The service as operators run it: `python scheduler.py` in a subprocess, real crawls, real HTTP."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from tests.fixtures.project import ROOT, project_env, runs, write_sources
from tests.fixtures.service import Service, free_port, wait_for
from tests.fixtures.site import BASE_ARTICLES, SilentServer, build_site, serve

pytestmark = pytest.mark.slow


def _source(base: str, name: str = "dxgzdt", **extra: object) -> dict[str, object]:
    return {"name": name, "title": "党校工作动态", "list_url": f"{base}/dxgz/dxgzdt.htm",
            "seed_url": f"{base}/info/1015/2556.htm", "column": "党校工作动态", **extra}


def _env(tmp_path: Path, sources: Path, **extra: object) -> dict[str, str]:
    return project_env(f"sqlite:///{tmp_path / 'ghu.db'}", sources, tmp_path / "feeds",
                       HTTP_PORT=free_port(), **extra)


def _feed_titles(service: Service) -> list[str]:
    code, _, body = service.get("/dxgzdt.xml")
    if code != 200:
        return []
    return [e.title for e in feedparser.parse(body).entries]


def test_service_publishes_follows_the_source_and_stops_on_sigterm(replica_copy, tmp_path: Path) -> None:
    root, _ = replica_copy
    with serve(root) as site:
        sources = write_sources(tmp_path / "sources.toml", _source(site.base, schedule="3s"))
        service = Service(_env(tmp_path, sources), tmp_path / "service.log")
        try:
            titles = wait_for(lambda: _feed_titles(service), 60, "the first feed")
            assert len(titles) == 46
            for path in ("/dxgzdt.atom", "/dxgzdt.json", "/index.html", "/opml.xml"):
                assert service.get(path)[0] == 200, path
            added = dict(id=2700, date="2025-07-10", author="党校办公室", source="组织部",
                         title="服务测试新增文章", body=["新增文章正文。"])
            build_site(root, articles=[added, *copy.deepcopy(BASE_ARTICLES)])
            wait_for(lambda: "服务测试新增文章" in _feed_titles(service), 60, "the new article in the feed")
            assert any("crawl dxgzdt: ok" in line for line in service.log().splitlines())
        finally:
            code, seconds = service.stop()
    assert code == 0, service.log()[-3000:]
    assert seconds < 10


def test_outage_keeps_last_good_feeds_and_recovers(replica_build, tmp_path: Path) -> None:
    root, _ = replica_build
    port = free_port()
    sources = write_sources(tmp_path / "sources.toml", _source(f"http://127.0.0.1:{port}", schedule="2s"))
    env = _env(tmp_path, sources, HEALTH_MAX_AGE=1)
    db_url = env["DATABASE_URL"]
    with serve(root, port=port):
        service = Service(env, tmp_path / "service.log")
        wait_for(lambda: len(_feed_titles(service)) == 46, 60, "the first feed")
    try:
        failed_before = len([r for r in runs(db_url) if r.status == "failed"])
        wait_for(lambda: len([r for r in runs(db_url) if r.status == "failed"]) >= failed_before + 2, 60,
                 "failed crawls during the outage")
        assert len(_feed_titles(service)) == 46  # the last good feed is still served
        code, health = service.health()
        assert health["sources"]["dxgzdt"]["last_result"] == "failed"
        status = subprocess.run([sys.executable, "scheduler.py", "status"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and "failed" in status.stdout, status.stdout + status.stderr
        assert service.proc.poll() is None
        with serve(root, port=port):
            wait_for(lambda: service.health()[1]["sources"]["dxgzdt"]["last_result"] == "ok", 60, "recovery")
            assert service.health()[0] == 200
    finally:
        code, _ = service.stop()
    assert code == 0


def test_hanging_crawl_is_killed_at_timeout_and_the_next_run_happens(tmp_path: Path) -> None:
    silent = SilentServer()
    try:
        sources = write_sources(tmp_path / "sources.toml", _source(silent.base, schedule="2s"))
        env = _env(tmp_path, sources, CRAWL_TIMEOUT=3)
        service = Service(env, tmp_path / "service.log")
        try:
            wait_for(lambda: len([r for r in runs(env["DATABASE_URL"]) if r.status == "failed"]) >= 2, 60,
                     "two timed-out crawls")
            timed_out = [r for r in runs(env["DATABASE_URL"]) if r.status == "failed"]
            assert all("timed out" in (r.error or "") for r in timed_out[:2]), [r.error for r in timed_out]
            assert service.proc.poll() is None
        finally:
            code, _ = service.stop()
        assert code == 0
    finally:
        silent.stop()


def test_restart_within_the_interval_does_not_crawl_again(replica_build, tmp_path: Path) -> None:
    root, _ = replica_build
    with serve(root) as site:
        sources = write_sources(tmp_path / "sources.toml", _source(site.base))  # CRAWL_INTERVAL: 60 min
        env = _env(tmp_path, sources)
        service = Service(env, tmp_path / "service.log")
        try:
            wait_for(lambda: [r for r in runs(env["DATABASE_URL"]) if r.status == "ok"], 60, "the first crawl")
        finally:
            assert service.stop()[0] == 0
        first = runs(env["DATABASE_URL"])
        site.reset()
        env["HTTP_PORT"] = str(free_port())
        again = Service(env, tmp_path / "service2.log")
        try:
            wait_for(lambda: again.get("/healthz")[0] == 200, 30, "the restarted service")
            line = wait_for(lambda: re.search(r"dxgzdt: every 60 min; next crawl at (\S+)", again.log()), 30,
                            "the restarted service's schedule")
            # the job is planned where the first crawl's interval ends, so nothing runs now
            assert datetime.fromisoformat(line.group(1)) > datetime.now(UTC) + timedelta(minutes=55)
            assert _values(runs(env["DATABASE_URL"])) == _values(first)
            assert site.hits == []
            status = subprocess.run([sys.executable, "scheduler.py", "status"], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=60)
            assert "due now" not in status.stdout, status.stdout
        finally:
            assert again.stop()[0] == 0


def _values(rows: list) -> list[tuple]:
    return [(r.id, r.status, r.started_at, r.finished_at, r.new, r.error) for r in rows]
