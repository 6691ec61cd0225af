"""The article worker (crawler.article_worker): a backfill parses and stores in a forked second process.

It must store exactly what in-process parsing stores, bring drift counts and log lines back, never outlive
its crawl, and a worker that dies must fail the run without losing or duplicating anything."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from crawler.article_worker import ArticleWorker
from crawler.articles import build_article
from crawler.items import ArticlePageItem
from tests.crawl_helpers import assert_matches_manifest
from tests.fixtures.project import ROOT, articles, project_env, runs, scrapy_crawl, write_sources
from tests.fixtures.site import serve

WORKER_LINE = re.compile(r"article worker process \(pid (\d+)\)")


def _sources(tmp_path: Path, base: str) -> Path:
    return write_sources(tmp_path / "sources.toml", {
        "name": "dxgzdt", "title": "党校工作动态", "list_url": f"{base}/dxgz/dxgzdt.htm",
        "seed_url": f"{base}/info/1015/2556.htm", "column": "党校工作动态"})


def _rows(db_url: str) -> list[tuple]:
    return [(a.url, a.title, a.published_at, a.body_html, a.body_text, a.author, a.origin, a.editor, a.newsid,
             a.list_title, a.status, a.fetch_error, a.content_hash, a.external, a.etag, a.last_modified,
             tuple((f.name, f.url, f.mime_type, f.in_body) for f in a.attachments))
            for a in sorted(articles(db_url), key=lambda a: a.url)]


def _outcome(db_url: str) -> tuple:
    run = runs(db_url)[-1]
    return run.status, run.error, run.new, run.updated, run.unchanged, run.removed, run.failed, run.pages_fetched


@pytest.mark.slow
def test_worker_stores_what_in_process_parsing_stores(db_url: str, replica_build, tmp_path: Path) -> None:
    root, manifest = replica_build
    inproc = f"sqlite:///{tmp_path / 'inproc.db'}"
    with serve(root) as site:
        sources = _sources(tmp_path, site.base)
        worker = scrapy_crawl("dxgzdt", project_env(db_url, sources), 180, "-s", "ARTICLE_WORKER=always")
        assert worker.returncode == 0, worker.stderr[-3000:]
        found = WORKER_LINE.search(worker.stderr)
        assert found, worker.stderr[-3000:]
        assert "Traceback" not in worker.stderr, worker.stderr[-3000:]
        local = scrapy_crawl("dxgzdt", project_env(inproc, sources), 180, "-s", "ARTICLE_WORKER=never")
        assert local.returncode == 0, local.stderr[-3000:]
        assert not WORKER_LINE.search(local.stderr)
        # an idle poll ("auto": not a backfill, nothing to fetch) forks no worker
        idle = scrapy_crawl("dxgzdt", project_env(db_url, sources))
        assert idle.returncode == 0 and not WORKER_LINE.search(idle.stderr), idle.stderr[-3000:]
    assert_matches_manifest(articles(db_url), manifest, site.base)
    first = runs(db_url)[-2]
    assert (first.status, first.new, first.failed) == ("ok", 46, 0), first.error
    assert (first.status, first.error, first.new, first.updated, first.unchanged, first.removed, first.failed,
            first.pages_fetched) == _outcome(inproc)
    if db_url.startswith("sqlite"):
        assert _rows(db_url) == _rows(inproc)
    else:  # PostgreSQL gives datetimes back in its session zone: compare what the columns mean
        assert [r[:2] + r[3:] for r in _rows(db_url)] == [r[:2] + r[3:] for r in _rows(inproc)]
        assert [r[2] and r[2].timestamp() for r in _rows(db_url)] == [r[2] and r[2].timestamp() for r in _rows(inproc)]


@pytest.mark.slow
def test_drift_counts_and_log_lines_come_back_from_the_worker(sqlite_url: str, tmp_path: Path) -> None:
    """Article pages without a body, parsed by the worker, still fail the run for template drift."""
    from tests.fixtures.site import BASE_ARTICLES, build_site

    root = tmp_path / "site"
    build_site(root, articles=BASE_ARTICLES)
    for page in (root / "info").rglob("*.htm"):
        page.write_text("<html><body><div class='new-template'>改版了</div></body></html>", encoding="utf-8")
    with serve(root) as site:
        result = scrapy_crawl("dxgzdt", project_env(sqlite_url, _sources(tmp_path, site.base)), 180,
                              "-s", "ARTICLE_WORKER=always")
    assert result.returncode == 0, result.stderr[-3000:]
    assert WORKER_LINE.search(result.stderr)
    run = runs(sqlite_url)[-1]
    assert run.status == "failed" and "template changed?" in (run.error or ""), run.error
    assert run.failed > 0
    assert "(will retry next run)" in result.stderr  # the worker logs to the crawl's log


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _start_slow_crawl(sqlite_url: str, tmp_path: Path, base: str) -> tuple[subprocess.Popen[bytes], Path, int]:
    """A backfill with the worker, slow enough to be interrupted; returns the process, its log, the worker pid."""
    log = tmp_path / "crawl.log"
    env = project_env(sqlite_url, _sources(tmp_path, base))
    cmd = [sys.executable, "-m", "scrapy", "crawl", "column", "-a", "source=dxgzdt",
           "-s", "ARTICLE_WORKER=always", "-s", "CONCURRENT_REQUESTS=2"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        found = WORKER_LINE.search(log.read_text("utf-8", "replace"))
        if found:
            return proc, log, int(found.group(1))
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(log.read_text("utf-8", "replace")[-3000:])


def _assert_next_run_completes(sqlite_url: str, tmp_path: Path, root: Path, port: int) -> None:
    with serve(root, port=port) as site:  # same host and port: the same article URLs
        result = scrapy_crawl("dxgzdt", project_env(sqlite_url, _sources(tmp_path, site.base)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert runs(sqlite_url)[-1].status == "ok", runs(sqlite_url)[-1].error
    stored = articles(sqlite_url)
    urls = Counter(a.url for a in stored)
    assert not [u for u, n in urls.items() if n > 1], "duplicates"
    assert len([a for a in stored if a.status == "ok"]) == 46


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_worker_never_outlives_its_crawl(sig: int, sqlite_url: str, replica_build, tmp_path: Path) -> None:
    root, _manifest = replica_build
    with serve(root, delay=0.3) as site:
        port = int(site.base.rsplit(":", 1)[1])
        proc, log, worker_pid = _start_slow_crawl(sqlite_url, tmp_path, site.base)
        try:
            assert worker_pid != proc.pid
            time.sleep(1.0)  # mid-crawl: the worker holds pages
            os.kill(proc.pid, sig)  # the crawl process only, not its group
            proc.wait(60)
            assert _gone(worker_pid, 5.0), "the article worker outlived its crawl"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
    if sig == signal.SIGTERM:  # a graceful stop: the run is recorded, the worker drained
        run = runs(sqlite_url)[-1]
        assert run.status == "failed" and "stopped early" in (run.error or ""), run.error
        assert "Traceback" not in log.read_text("utf-8", "replace")
    _assert_next_run_completes(sqlite_url, tmp_path, root, port)


@pytest.mark.slow
def test_a_dead_worker_fails_the_run_and_the_crawl_goes_on(sqlite_url: str, replica_build, tmp_path: Path) -> None:
    root, _manifest = replica_build
    with serve(root, delay=0.3) as site:
        port = int(site.base.rsplit(":", 1)[1])
        proc, log, worker_pid = _start_slow_crawl(sqlite_url, tmp_path, site.base)
        try:
            time.sleep(1.5)
            os.kill(worker_pid, signal.SIGKILL)
            assert proc.wait(120) == 0, log.read_text("utf-8", "replace")[-3000:]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
    text = log.read_text("utf-8", "replace")
    run = runs(sqlite_url)[-1]
    assert run.status == "failed" and "article worker" in (run.error or ""), run.error
    assert "article worker died" in text, text[-3000:]
    stored_after_death = [a for a in articles(sqlite_url) if a.status == "ok"]
    assert stored_after_death, "the crawl process stored the pages fetched after the worker died"
    _assert_next_run_completes(sqlite_url, tmp_path, root, port)


def test_no_worker_is_forked_while_other_threads_run() -> None:
    """fork() copies only the calling thread: with others running it could copy a held lock."""
    from types import SimpleNamespace

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        ctx = SimpleNamespace(source=SimpleNamespace(name="x"))
        assert ArticleWorker.fork(ctx, "sqlite:///unused.db") is None
    finally:
        stop.set()
        thread.join()


def test_build_article_is_pure_and_picklable() -> None:
    html = ('<html><head><meta charset="utf-8"></head><body><form name="_newscontent_fromname">'
            '<h1>标题</h1><div id="vsb_content"><p>正文 <a href="../../x.pdf">附件.pdf</a></p></div></form>'
            '</body></html>').encode()
    page = ArticlePageItem("http://x.test/info/1/2.htm", "http://x.test/info/1/2.htm", html, None, '"e"', None,
                           "列表标题", None)
    assert pickle.loads(pickle.dumps(page)) == page
    assert "body" not in repr(page)  # DEBUG logs of items do not dump whole pages
    one, two = build_article(page, None, "x"), build_article(page, None, "x")
    assert one == two and not one.drifted
    record = one.item.record  # type: ignore[union-attr]
    assert record.title == "标题" and record.etag == '"e"'
    assert [(a.name, a.url, a.mime_type) for a in record.attachments] == [
        ("附件.pdf", "http://x.test/x.pdf", "application/pdf")]


@pytest.mark.slow
def test_auto_keeps_a_polite_backfill_in_process(sqlite_url: str, tmp_path: Path) -> None:
    """At a politeness delay parsing keeps up with downloading: "auto" forks no worker there."""
    from tests.fixtures.site import BASE_ARTICLES, build_site

    root = tmp_path / "site"
    manifest = build_site(root, articles=BASE_ARTICLES[:2])
    with serve(root) as site:
        env = project_env(sqlite_url, _sources(tmp_path, site.base), CRAWL_DELAY="0.3")
        polite = scrapy_crawl("dxgzdt", env)
        fast = scrapy_crawl("dxgzdt", project_env(f"sqlite:///{tmp_path / 'fast.db'}", _sources(tmp_path, site.base)))
    assert fast.returncode == 0 and WORKER_LINE.search(fast.stderr), fast.stderr[-3000:]  # "auto", no delay
    assert polite.returncode == 0, polite.stderr[-3000:]
    assert not WORKER_LINE.search(polite.stderr), polite.stderr[-3000:]
    run = runs(sqlite_url)[-1]
    assert (run.status, run.new) == ("ok", len(manifest["articles"])), run.error


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
def test_a_failed_fork_leaves_the_work_to_the_crawl_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """fork() can fail (no memory, process limit; root ignores RLIMIT_NPROC, so the failure is injected):
    no worker, no leaked pipe, no exception."""
    from types import SimpleNamespace

    def no_fork(self: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.get_context("fork").Process, "start", no_fork)
    before = len(os.listdir("/proc/self/fd"))
    ctx = SimpleNamespace(source=SimpleNamespace(name="x"))
    assert ArticleWorker.fork(ctx, "sqlite:///unused.db") is None
    assert len(os.listdir("/proc/self/fd")) == before
