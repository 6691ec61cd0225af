"""Concurrency: readers while a crawl writes (SQLite WAL), and two `--once` started at the same moment."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import feedparser
import pytest

from db.engine import open_database
from feeds.server import FeedServer
from feeds.status import health, metrics
from tests.fixtures.faulty import all_urls, assert_feeds_valid, faulty, integrity_check, run_cli, sqlite_path
from tests.fixtures.project import ROOT, project_env, runs, write_sources
from tests.fixtures.service import http_get

pytestmark = pytest.mark.slow

LOCKED = "database is locked"


def _env(tmp_path: Path, base: str) -> dict[str, str]:
    sources = write_sources(tmp_path / "sources.toml", {
        "name": "dxgzdt", "title": "党校工作动态", "list_url": f"{base}/dxgz/dxgzdt.htm"})
    return project_env(f"sqlite:///{tmp_path / 'ghu.db'}", sources, tmp_path / "feeds")


def test_feeds_status_and_publish_are_served_while_a_crawl_writes(replica_build: tuple[Path, dict],
                                                                 tmp_path: Path) -> None:
    root, _ = replica_build
    with faulty(root, delay=0.1) as site:
        env = _env(tmp_path, site.base)
        db = env["DATABASE_URL"]
        assert run_cli(env, "publish").returncode == 0  # an empty column: the files exist from the start
        _engine, factory = open_database(db)
        server = FeedServer(tmp_path / "feeds", "127.0.0.1", 0, cache_max_age=1,
                            health=lambda: health(factory, 60, ["dxgzdt"]), metrics=lambda: metrics(factory))
        host, port = server.start_in_thread()
        base = f"http://{host}:{port}"
        crawl = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "column", "-a", "source=dxgzdt"],
                                 cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        reads: Counter[str] = Counter()
        problems: list[str] = []

        def cli_reader() -> None:
            """`status` and `publish` in a loop: each opens the database, reads, and publish writes files."""
            deadline = time.monotonic() + 60
            while crawl.poll() is None and time.monotonic() < deadline:
                for command in ("status", "publish"):
                    result = run_cli(env, command, timeout=60)
                    reads[command] += 1
                    if result.returncode != 0 or LOCKED in result.stderr:
                        problems.append(f"{command}: {result.returncode} {result.stderr[-500:]}")

        reader = threading.Thread(target=cli_reader)
        reader.start()
        try:
            deadline = time.monotonic() + 60
            while crawl.poll() is None and time.monotonic() < deadline:
                for path in ("/healthz", "/metrics", "/dxgzdt.xml", "/dxgzdt.json", "/"):
                    code, _, body = http_get(base + path)
                    reads["http"] += 1
                    if code != 200:
                        problems.append(f"GET {path}: {code} {body[:200]!r}")
                    elif path == "/dxgzdt.xml" and feedparser.parse(body).bozo:
                        problems.append("GET /dxgzdt.xml: invalid feed")
                    elif path == "/dxgzdt.json":
                        json.loads(body)
                # a raw SQLite reader too, as an operator's sqlite3 shell would be
                con = sqlite3.connect(sqlite_path(db), timeout=5)
                con.execute("SELECT count(*) FROM articles").fetchone()
                con.close()
                reads["sqlite"] += 1
                time.sleep(0.05)
            _, crawl_log = crawl.communicate(timeout=60)
        finally:
            reader.join(90)
            server.stop()
            _engine.dispose()
    assert crawl.returncode == 0, crawl_log[-3000:]
    assert LOCKED not in crawl_log
    assert not problems, problems[:5]
    assert reads["http"] >= 20 and reads["status"] >= 1, reads
    assert runs(db)[-1].status == "ok"
    assert len(all_urls(db)) == 46
    assert run_cli(env, "publish").returncode == 0
    assert_feeds_valid(tmp_path / "feeds")


def test_two_once_at_the_same_time_neither_double_store_nor_corrupt(replica_build: tuple[Path, dict],
                                                                   tmp_path: Path) -> None:
    """Both start on a database that does not exist yet: schema creation and the source lock are raced."""
    root, _ = replica_build
    with faulty(root, delay=0.05) as site:
        env = _env(tmp_path, site.base)
        db = env["DATABASE_URL"]
        procs = [subprocess.Popen([sys.executable, "scheduler.py", "--once"], cwd=ROOT, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        seen: set[tuple[int, str, str | None]] = set()
        deadline = time.monotonic() + 120
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if Path(sqlite_path(db)).exists():
                try:
                    con = sqlite3.connect(sqlite_path(db), timeout=5)
                    seen |= set(con.execute("SELECT id, status, error FROM crawl_runs").fetchall())
                    con.close()
                except sqlite3.OperationalError:
                    pass  # the schema is not there yet
            time.sleep(0.05)
        outputs = [p.communicate(timeout=60) for p in procs]
        article_gets = Counter(h.path for h in site.hits if h.path.startswith("/info/"))
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
        assert LOCKED not in err and "Traceback" not in err, err[-3000:]
    final = runs(db)
    assert [r.status for r in final] == ["ok", "ok"], [(r.status, r.error) for r in final]
    assert not [s for s in seen if s[1] == "failed"], "a running crawl was reported failed meanwhile"
    urls = all_urls(db)
    assert len(urls) == len(set(urls)) == 46
    assert max(article_gets.values()) == 1, "an article page was fetched twice"
    assert integrity_check(db) == "ok"
    assert_feeds_valid(tmp_path / "feeds")
