"""Run a crawl of some sources in a child process with a hard timeout, so a crash, hang or leak can't take down
the service.

Twisted's reactor cannot be restarted inside one process, which is one more reason each crawl gets a fresh
process. Children are forked from a forkserver that has already imported Scrapy and the spider, so an idle
poll does not pay Scrapy's import cost every time.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from crawler.locks import SourceLock
from crawler.sources import Source
from db import store
from db.engine import transaction
from db.models import CrawlRun

logger = logging.getLogger(__name__)

PRELOAD = ["crawler.preload", "crawler.spiders.column", "crawler.pipelines", "crawler.middlewares"]
_context: Any = None


def _mp_context() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def crawl_in_this_process(names: list[str], run_ids: dict[str, int] | None = None, lock_held: bool = False) -> None:
    """The child's work: one Scrapy crawl of these sources (the same as `scrapy crawl column -a sources=...`).

    ``lock_held``: the parent holds the sources' locks for this crawl, so the spider must not wait for them.
    """
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "settings")
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from scrapy.crawler import CrawlerProcess
    from scrapy.utils.project import get_project_settings

    from crawler.spiders.column import ColumnSpider

    settings = get_project_settings()
    quiet = logging.getLevelName(str(settings.get("LOG_LEVEL", "INFO")).upper()) != logging.DEBUG
    if quiet:  # a scheduled crawl logs its own lines, not Scrapy's inventory and stats (~95 lines a run)
        settings.set("LOG_VERSIONS", [], priority="cmdline")
        settings.set("STATS_DUMP", False, priority="cmdline")
    process = CrawlerProcess(settings)
    if quiet:  # after CrawlerProcess(): its logging set-up resets the "scrapy" logger's level
        logging.getLogger("scrapy").setLevel(logging.WARNING)
    kwargs: dict[str, Any] = {"sources": ",".join(names)}
    if run_ids:
        kwargs["runs"] = ",".join(f"{name}:{run_id}" for name, run_id in run_ids.items())
    if lock_held:
        kwargs["lock"] = "held"
    process.crawl(ColumnSpider, **kwargs)
    process.start()


@dataclass
class CrawlOutcome:
    source: str
    run_id: int
    status: str  # ok, failed
    changed: bool
    error: str | None
    seconds: float


def begin_runs(factory: sessionmaker[Session], sources: list[Source]) -> dict[str, int]:
    """A 'running' row per source (runs a dead crawl left 'running' are failed first): name -> run id."""
    with transaction(factory) as s:
        ids = {}
        for src in sources:
            source_id = store.sync_source(s, src.name, src.title, src.list_url).id
            store.fail_stale_runs(s, source_id, "crawl process ended before finishing (killed or crashed)")
            ids[src.name] = store.begin_run(s, source_id).id
    return ids


def settle_runs(factory: sessionmaker[Session], run_ids: dict[str, int], reason: str,
                started: float) -> list[CrawlOutcome]:
    """After the crawl process: rows it left 'running' failed with ``reason``; every run's outcome."""
    outcomes = []
    with transaction(factory) as s:
        for name, run_id in run_ids.items():
            run = s.get(CrawlRun, run_id)
            if run is None:
                raise LookupError(f"crawl run {run_id} vanished from the database")
            if run.status == "running":
                store.finish_run(s, run_id, "failed", reason)
            outcomes.append(CrawlOutcome(name, run_id, run.status, run.changed, run.error,
                                         time.monotonic() - started))
    for outcome in outcomes:
        if outcome.status != "ok":
            logger.error("crawl %s: failed: %s", outcome.source, outcome.error)
    return outcomes


def run_batch(factory: sessionmaker[Session], sources: list[Source], timeout: float,
              stop_requested: Any = None, grace: float = 8.0, database_url: str | None = None) -> list[CrawlOutcome]:
    """Crawl ``sources`` in ONE child process with a hard timeout; record a timeout or crash as failed runs.

    With ``database_url`` (as configured, it names the per-source locks) this process holds the sources'
    locks from before their run rows exist until the child has exited. Runs left 'running' can then only be
    those of a dead crawl: a second ``--once`` next to the service no longer reports the live crawl as killed.
    A source whose lock another crawl holds past the timeout gets a failed run; the others are crawled.
    """
    started = time.monotonic()
    deadline = started + timeout
    locks: dict[str, SourceLock] = {}
    outcomes: list[CrawlOutcome] = []
    try:
        ready = []
        for src in sorted(sources, key=lambda s: s.name):  # name order: two crawls never wait for each other
            lock = SourceLock(database_url, src.name) if database_url else None
            if lock is None or _wait_for_lock(lock, src.name, deadline, stop_requested):
                ready.append(src)
                if lock is not None:
                    locks[src.name] = lock
                continue
            stopping = stop_requested is not None and stop_requested.is_set()
            why = "service stopping" if stopping else \
                f"another crawl of this source still running after {timeout:g} s (CRAWL_TIMEOUT)"
            outcomes += settle_runs(factory, begin_runs(factory, [src]), why, started)
        if ready:
            outcomes += _run_child(factory, ready, deadline, stop_requested, grace, bool(locks), started, timeout)
    finally:
        for lock in locks.values():
            lock.release()
    order = {src.name: i for i, src in enumerate(sources)}
    return sorted(outcomes, key=lambda o: order[o.source])


def _wait_for_lock(lock: SourceLock, source: str, deadline: float, stop_requested: Any) -> bool:
    if lock.try_acquire():
        return True
    logger.warning("crawl %s: another crawl of this source is running; waiting for it", source)
    while time.monotonic() < deadline and not (stop_requested is not None and stop_requested.is_set()):
        time.sleep(0.5)
        if lock.try_acquire():
            return True
    return False


def _run_child(factory: sessionmaker[Session], sources: list[Source], deadline: float, stop_requested: Any,
               grace: float, lock_held: bool, started: float, timeout: float) -> list[CrawlOutcome]:
    run_ids = begin_runs(factory, sources)
    names = [src.name for src in sources]
    label = names[0] if len(names) == 1 else f"{names[0]}+{len(names) - 1}"
    child = _mp_context().Process(target=crawl_in_this_process, args=(names, run_ids, lock_held),
                                  name=f"crawl-{label}")
    child.start()
    reason = None
    while child.is_alive():
        child.join(0.2)
        if stop_requested is not None and stop_requested.is_set():
            reason = _stop(child, grace, "service stopping")
            break
        if time.monotonic() > deadline:
            reason = _stop(child, 2.0, f"timed out after {timeout:g} s (CRAWL_TIMEOUT)")
            break
    child.join()
    if reason is None:
        reason = f"crawl process exited with code {child.exitcode} before recording its result"
    return settle_runs(factory, run_ids, reason, started)


def _stop(child: Any, grace: float, why: str) -> str:
    """SIGTERM lets Scrapy close the spider cleanly; SIGKILL if it doesn't within the grace period."""
    logger.warning("stopping crawl %s: %s", child.name, why)
    if child.pid:
        os.kill(child.pid, signal.SIGTERM)
    child.join(grace)
    if child.is_alive():
        child.kill()
    return why
