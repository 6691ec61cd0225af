"""Crash safety: ``kill -9`` of a crawl and of publishing at random moments (seeded, so reproducible).

After every kill: the database is sound (SQLite's integrity check; on PostgreSQL, which runs one series
of crawl kills, no orphaned rows), every article stored before is still there exactly
once, and every feed file is either the old or the new complete version (no temporary file visible to the
feed server). After the series, one ordinary run completes the work. The figures (cases, kill points,
articles lost, duplicates) are printed with ``-s`` and written to ``fault-kill-summary.json`` in pytest's
base temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db import store
from db.engine import open_database, transaction
from feeds.filetable import FileTable
from tests.fixtures.faulty import (
    all_urls,
    assert_feeds_valid,
    faulty,
    integrity_check,
    run_cli,
    stored_urls,
)
from tests.fixtures.project import ROOT, project_env, runs, write_sources

pytestmark = pytest.mark.slow

SITE_DELAY = 0.4  # seconds per request: a replica crawl then takes about 4 s, storing for the last 2 of them
CRAWL_SEEDS = [3, 17, 29]  # on SQLite
PG_CRAWL_SEED = 7  # one series on PostgreSQL
CRAWL_KILLS_PER_SEED = 5
PUBLISH_SEEDS = [5, 41]
PUBLISH_KILLS_PER_SEED = 6
BIG_ARTICLES = 1500  # ~25 MB of feed files in ~150 archive pages: the write phase can be hit
ARCHIVE_PAGE_SIZE = 10


@pytest.fixture(scope="module")
def tally(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Counter[str]]:
    totals: Counter[str] = Counter()
    yield totals
    summary = {k: totals[k] for k in ("cases", "kill_points", "survived", "mid_write", "articles_lost",
                                      "duplicates", "finished_before_kill")}
    line = ("fault-kill summary: {cases} cases, {kill_points} kill points, {survived} survived, "
            "{mid_write} of them mid-write (articles being stored, feed files being replaced), "
            "{articles_lost} articles lost, {duplicates} duplicates "
            "({finished_before_kill} runs finished before their kill time)").format(**summary)
    print("\n" + line)
    (tmp_path_factory.getbasetemp() / "fault-kill-summary.json").write_text(json.dumps(summary), "utf-8")


def kill_after(cmd: list[str], env: dict[str, str], seconds: float, log: Path,
               trigger: Path | None = None, after_trigger: float = 0.0) -> bool:
    """Start ``cmd`` in its own process group and SIGKILL the whole group after ``seconds`` (or
    ``after_trigger`` seconds after a new temporary file shows up in ``trigger``). True if it was still
    running then."""
    leftovers = {p.name for p in trigger.glob("*.tmp")} if trigger is not None else set()
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + seconds
    if trigger is not None:
        while proc.poll() is None and time.monotonic() < deadline:
            if {p.name for p in trigger.glob("*.tmp")} - leftovers:  # this publish started writing
                deadline = time.monotonic() + after_trigger
                break
            time.sleep(0.001)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(max(0.0, deadline - time.monotonic()))
    alive = proc.poll() is None
    if alive:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its forkserver children: the group we started
        proc.wait(30)
    return alive


CRAWL_CMDS = {
    "scrapy crawl": [sys.executable, "-m", "scrapy", "crawl", "column", "-a", "source=dxgzdt"],
    "--once": [sys.executable, "scheduler.py", "--once"],  # runner child + publish
}


@pytest.fixture(scope="module")
def crawl_seconds(replica_build: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """How long an uninterrupted backfill takes here, per command: kill times are drawn from its second half
    (where articles are stored), so the series keeps hitting writes however fast the crawler gets."""
    root, _ = replica_build
    seconds = {}
    with faulty(root, delay=SITE_DELAY) as site:
        for name, cmd in CRAWL_CMDS.items():
            tmp = tmp_path_factory.mktemp("calibrate")
            sources = write_sources(tmp / "sources.toml", {
                "name": "dxgzdt", "title": "党校工作动态", "list_url": f"{site.base}/dxgz/dxgzdt.htm"})
            started = time.monotonic()
            result = subprocess.run(cmd, cwd=ROOT, env=project_env(f"sqlite:///{tmp / 'ghu.db'}", sources,
                                                                    tmp / "feeds"),
                                    capture_output=True, text=True, timeout=120, check=False)
            assert result.returncode == 0, result.stderr[-3000:]
            seconds[name] = time.monotonic() - started
    return seconds


def _crawl_cmd(i: int, seconds: dict[str, float]) -> tuple[list[str], float, float]:
    """Every third kill hits `scheduler.py --once` (runner child + publish), the others `scrapy crawl`."""
    name = "--once" if i % 3 == 2 else "scrapy crawl"
    return CRAWL_CMDS[name], 0.5 * seconds[name], seconds[name]


@pytest.mark.parametrize("seed", CRAWL_SEEDS)
def test_kill_9_mid_crawl_loses_nothing_and_the_next_run_completes(
        seed: int, replica_build: tuple[Path, dict], tmp_path: Path, tally: Counter[str],
        crawl_seconds: dict[str, float]) -> None:
    _kill_series(seed, f"sqlite:///{tmp_path / 'ghu.db'}", replica_build, tmp_path, tally, crawl_seconds)


def test_kill_9_mid_crawl_on_postgresql(pg_url: str, replica_build: tuple[Path, dict], tmp_path: Path,
                                        tally: Counter[str], crawl_seconds: dict[str, float]) -> None:
    """The same series on PostgreSQL: the server rolls back what a killed client had not committed."""
    _kill_series(PG_CRAWL_SEED, pg_url, replica_build, tmp_path, tally, crawl_seconds)


def _kill_series(seed: int, db: str, replica_build: tuple[Path, dict], tmp_path: Path,
                 tally: Counter[str], crawl_seconds: dict[str, float]) -> None:
    rng = random.Random(seed)
    root, _ = replica_build
    failures: list[str] = []
    with faulty(root, delay=SITE_DELAY) as site:
        sources = write_sources(tmp_path / "sources.toml", {
            "name": "dxgzdt", "title": "党校工作动态", "list_url": f"{site.base}/dxgz/dxgzdt.htm"})
        env = project_env(db, sources, tmp_path / "feeds")
        tally["cases"] += 1
        for i in range(CRAWL_KILLS_PER_SEED):
            before = set(stored_urls(db))
            cmd, low, high = _crawl_cmd(i, crawl_seconds)
            when = rng.uniform(low, high)
            if not kill_after(cmd, env, when, tmp_path / "kill.log"):
                tally["finished_before_kill"] += 1
                continue
            tally["kill_points"] += 1
            verdict = integrity_check(db)
            urls = all_urls(db)
            duplicates = len(urls) - len(set(urls))
            now_stored = set(stored_urls(db))
            lost = len(before - now_stored)
            if before < now_stored and len(now_stored) < 46:
                tally["mid_write"] += 1  # killed while articles were being stored
            tally["duplicates"] += duplicates
            tally["articles_lost"] += lost
            if verdict == "ok" and not duplicates and not lost:
                tally["survived"] += 1
            else:
                failures.append(f"kill {i} at {when:.2f}s: integrity {verdict}, lost {lost}, duplicates {duplicates}")
            if (tmp_path / "feeds").is_dir() and (tmp_path / "feeds" / "dxgzdt.xml").exists():
                assert_feeds_valid(tmp_path / "feeds")
        final = run_cli(env, "--once")
    assert not failures, failures
    assert final.returncode == 0, final.stderr[-3000:]
    all_runs = runs(db)
    assert all_runs[-1].status == "ok" and not [r for r in all_runs if r.status == "running"]
    urls = all_urls(db)
    assert len(urls) == len(set(urls)) == 46
    assert len(stored_urls(db)) == 46
    assert integrity_check(db) == "ok"
    assert_feeds_valid(tmp_path / "feeds")
    assert not list((tmp_path / "feeds").rglob("*.tmp"))


# ---------------------------------------------------------------- publishing
def _populate(db_url: str, count: int) -> None:
    """A large column written straight through the storage layer (crawling it would take minutes)."""
    _engine, factory = open_database(db_url)
    now = datetime(2025, 7, 1, tzinfo=UTC)
    base = "http://127.0.0.1:9/info/1015/{}.htm"
    with transaction(factory) as s:
        sid = store.sync_source(s, "dxgzdt", "党校工作动态", "http://127.0.0.1:9/dxgz/dxgzdt.htm").id
        for i in range(count):
            body = f"<p>第{i}篇。" + "党校工作动态正文。" * 300 + "</p>"
            store.store_article(s, sid, store.ArticleRecord(
                url=base.format(10000 + i), title=f"文章 {i}", published_at=now - timedelta(hours=i),
                body_html=body, body_text=body[3:-4], newsid=10000 + i), now)
        run = store.begin_run(s, sid)
        store.finish_run(s, run.id, "ok", new=count)
    _engine.dispose()


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def _served(root: Path) -> dict[str, bytes]:
    """What the feed server would serve from ``root`` right now."""
    table = FileTable(root, 60)
    table.reload()
    served = {path[1:]: entry.identity.body for path, entry in table.snapshot.items() if path != "/"}
    for path in table.on_demand:  # article pages, read when asked for
        entry = table.entry_on_demand(path)
        if entry is not None:
            served[path[1:]] = entry.identity.body
    return served


@pytest.mark.parametrize("seed", PUBLISH_SEEDS)
def test_kill_9_mid_publish_leaves_old_or_new_files_only(seed: int, tmp_path: Path, tally: Counter[str]) -> None:
    rng = random.Random(seed)
    db = f"sqlite:///{tmp_path / 'ghu.db'}"
    _populate(db, BIG_ARTICLES)
    sources = write_sources(tmp_path / "sources.toml", {
        "name": "dxgzdt", "title": "党校工作动态", "list_url": "http://127.0.0.1:9/dxgz/dxgzdt.htm"})
    feeds, reference = tmp_path / "feeds", tmp_path / "reference"
    # Two complete versions of every file: every byte differs between them (the self links do).
    pages = {"ARCHIVE_PAGE_SIZE": ARCHIVE_PAGE_SIZE}
    env_old = project_env(db, sources, feeds, PUBLIC_URL="http://old.example/feeds/", **pages)
    env_new = project_env(db, sources, feeds, PUBLIC_URL="http://new.example/feeds/", **pages)
    for env, target in ((env_new, reference), (env_old, feeds)):
        result = run_cli({**env, "FEEDS_DIR": str(target)}, "publish")
        assert result.returncode == 0, result.stderr[-3000:]
        assert_feeds_valid(target)
    versions = (_files(feeds), _files(reference))
    assert set(versions[0]) == set(versions[1]) and len(versions[0]) > BIG_ARTICLES // ARCHIVE_PAGE_SIZE
    tally["cases"] += 1
    failures: list[str] = []
    started = time.monotonic()
    result = run_cli(env_new, "publish")  # calibration: how long one publish takes here
    assert result.returncode == 0
    duration = time.monotonic() - started
    for i in range(PUBLISH_KILLS_PER_SEED):
        env = env_old if i % 2 else env_new  # alternate, so every publish has files to rewrite
        target = versions[0] if i % 2 else versions[1]
        before = _files(feeds)
        temps_before = {p.name for p in feeds.rglob("*.tmp")}
        archive = feeds / "dxgzdt" / "archive"
        if i % 3 == 0:
            alive = kill_after([sys.executable, "scheduler.py", "publish"], env, rng.uniform(0.2, duration),
                               tmp_path / "kill.log")
        else:  # aim inside the write phase: shortly after the first temporary file appears
            alive = kill_after([sys.executable, "scheduler.py", "publish"], env, duration + 5,
                               tmp_path / "kill.log", trigger=archive, after_trigger=rng.uniform(0.0, 0.08))
        if not alive:
            tally["finished_before_kill"] += 1
            continue
        tally["kill_points"] += 1
        on_disk, served = _files(feeds), _served(feeds)
        bad = [rel for rel, data in on_disk.items() if data not in (versions[0].get(rel), versions[1].get(rel))]
        bad += [rel for rel, data in served.items() if data not in (versions[0].get(rel), versions[1].get(rel))]
        missing = set(versions[0]) - set(served)
        started_writing = on_disk != before or bool({p.name for p in feeds.rglob("*.tmp")} - temps_before)
        if started_writing and on_disk != target:  # killed between its first and its last file
            tally["mid_write"] += 1
        if bad or missing or any(".tmp" in rel for rel in served) or integrity_check(db) != "ok":
            failures.append(f"kill {i}: incomplete {bad[:3]}, missing {sorted(missing)[:3]}")
        else:
            tally["survived"] += 1
    result = run_cli(env_new, "publish")
    assert not failures, failures
    assert result.returncode == 0, result.stderr[-3000:]
    assert _files(feeds) == versions[1]
    assert not list(feeds.rglob("*.tmp")), "leftover temporary files were not cleaned up"
    assert_feeds_valid(feeds)
