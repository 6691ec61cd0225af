"""Run one crawl in a child process with a hard timeout, so a crash, hang or leak can't take down the service.

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


def crawl_in_this_process(source: str, run_id: int | None = None, lock_held: bool = False) -> None:
    """The child's work: one Scrapy crawl of one source (the same as `scrapy crawl column`).

    ``lock_held``: the parent holds the source lock for this crawl, so the spider must not wait for it.
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
    kwargs: dict[str, Any] = {"source": source}
    if run_id is not None:
        kwargs["run_id"] = str(run_id)
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


def run_crawl(factory: sessionmaker[Session], source_id: int, source: str, timeout: float,
              stop_requested: Any = None, grace: float = 8.0, database_url: str | None = None) -> CrawlOutcome:
    """Crawl ``source`` in a child process; record a timeout or crash as a failed run with its reason.

    With ``database_url`` (as configured, it names the per-source lock) this process holds the source lock
    from before the run row exists until the child has exited. Runs left 'running' can then only be those
    of a dead crawl: a second ``--once`` next to the service no longer reports the live crawl as killed.
    """
    started = time.monotonic()
    deadline = started + timeout
    lock = SourceLock(database_url, source) if database_url else None
    if lock is not None and not _wait_for_lock(lock, source, deadline, stop_requested):
        with transaction(factory) as s:
            run_id = store.begin_run(s, source_id).id
            why = "service stopping" if stop_requested is not None and stop_requested.is_set() else \
                f"another crawl of this source still running after {timeout:g} s (CRAWL_TIMEOUT)"
            store.finish_run(s, run_id, "failed", why)
        logger.error("crawl %s: failed: %s", source, why)
        return CrawlOutcome(source, run_id, "failed", False, why, time.monotonic() - started)
    try:
        return _run_child(factory, source_id, source, timeout, stop_requested, grace, lock is not None, started)
    finally:
        if lock is not None:
            lock.release()


def _wait_for_lock(lock: SourceLock, source: str, deadline: float, stop_requested: Any) -> bool:
    if lock.try_acquire():
        return True
    logger.warning("crawl %s: another crawl of this source is running; waiting for it", source)
    while time.monotonic() < deadline and not (stop_requested is not None and stop_requested.is_set()):
        time.sleep(0.5)
        if lock.try_acquire():
            return True
    return False


def _run_child(factory: sessionmaker[Session], source_id: int, source: str, timeout: float, stop_requested: Any,
               grace: float, lock_held: bool, started: float) -> CrawlOutcome:
    with transaction(factory) as s:
        store.fail_stale_runs(s, source_id, "crawl process ended before finishing (killed or crashed)")
        run_id = store.begin_run(s, source_id).id
    child = _mp_context().Process(target=crawl_in_this_process, args=(source, run_id, lock_held),
                                  name=f"crawl-{source}")
    child.start()
    reason = None
    deadline = started + timeout
    while child.is_alive():
        child.join(0.2)
        if stop_requested is not None and stop_requested.is_set():
            reason = _stop(child, grace, "service stopping")
            break
        if time.monotonic() > deadline:
            reason = _stop(child, 2.0, f"timed out after {timeout:g} s (CRAWL_TIMEOUT)")
            break
    child.join()
    with transaction(factory) as s:
        run = s.get(CrawlRun, run_id)
        if run is None:
            raise LookupError(f"crawl run {run_id} vanished from the database")
        if run.status == "running":
            if reason is None:
                reason = f"crawl process exited with code {child.exitcode} before recording its result"
            store.finish_run(s, run_id, "failed", reason)
        elif reason and run.status == "ok":
            reason = None  # it finished within the grace period
        outcome = CrawlOutcome(source, run_id, run.status, run.changed, run.error, time.monotonic() - started)
    if outcome.status != "ok":
        logger.error("crawl %s: failed: %s", source, outcome.error)
    return outcome


def _stop(child: Any, grace: float, why: str) -> str:
    """SIGTERM lets Scrapy close the spider cleanly; SIGKILL if it doesn't within the grace period."""
    logger.warning("stopping crawl %s: %s", child.name, why)
    if child.pid:
        os.kill(child.pid, signal.SIGTERM)
    child.join(grace)
    if child.is_alive():
        child.kill()
    return why
