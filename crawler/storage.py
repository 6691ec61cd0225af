"""Storing a crawl's items: batched transactions and each source's run record (no Scrapy here).

Items are kept in memory and written in one short transaction after ``COMMIT_EVERY`` items,
``COMMIT_SECONDS`` after a batch's first item (when the caller gives a timer) and when a run finishes, so a
crash or kill loses at most the last half second of items; the next run fetches them again (a run saves its
list-page validators and backfill mark only when it succeeds, and a batch that cannot be committed fails the
runs it held items of). An item that raises is the only one lost. (A commit per item cost ~10 % of a
backfill's CPU; a transaction held open while items arrived made parallel crawl processes wait for SQLite's
write lock: bench/crawl.py, bench/scale.py.)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from crawler.context import CrawlContext
from crawler.items import ArticleItem, CheckItem, ListPageItem
from crawler.sources import Source
from db import store
from db.models import utcnow

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 50
COMMIT_EVERY = 100
COMMIT_SECONDS = 0.5

Item = ListPageItem | ArticleItem | CheckItem


class Timer(Protocol):
    def cancel(self) -> None: ...


# call_later(seconds, function) -> a cancellable timer, or None when timers are unavailable
CallLater = Callable[[float, Callable[[], None]], Timer | None]


class CrawlStorage:
    """The runs of one crawl process, one per source, and the batch of their items not yet written."""

    def __init__(self, factory: sessionmaker[Session], call_later: CallLater | None = None) -> None:
        self.factory = factory
        self.call_later = call_later
        self.runs: dict[str, CrawlContext] = {}
        self.batch: list[tuple[Item, datetime]] = []  # items waiting to be written, with their arrival times
        self.timer: Timer | None = None

    # ------------------------------------------------------------------ runs
    def open_run(self, source: Source, run_id: int | None = None) -> CrawlContext:
        """Start (or take over, with ``run_id``) the run of one source and load what the crawl needs to know."""
        ctx = CrawlContext.open(source, self.factory, run_id)
        self.runs[source.name] = ctx
        return ctx

    def finish_run(self, name: str, requests: int, pages: int, close_reason: str) -> str:
        """Write what is pending, then record the run's verdict; returns "ok" or "failed"."""
        try:
            self.commit()
        except Exception:
            logger.exception("%s: storing the last items failed", name)
        return self.runs[name].finish(requests=requests, pages=pages, close_reason=close_reason)

    # ------------------------------------------------------------------ items
    def store(self, item: Item) -> None:
        if not self.batch and self.call_later is not None:
            self.timer = self.call_later(COMMIT_SECONDS, self._commit_on_timer)
        self.batch.append((item, utcnow()))
        if len(self.batch) >= COMMIT_EVERY:
            self.commit()

    def commit(self) -> None:
        """Write the batch in one short transaction (other crawl processes wait for SQLite's write lock only
        that long). An item that raises is logged and left out, the others are written again without it; if
        the commit itself fails, the runs of the batch's sources fail, so the next run fetches it again."""
        self._cancel_timer()
        batch, self.batch = self.batch, []
        replay = False
        while batch:
            failed_at = self._write(batch, quiet=replay)
            if failed_at is None:
                return
            batch.pop(failed_at)
            replay = True

    # ------------------------------------------------------------------ transactions
    def _write(self, batch: list[tuple[Item, datetime]], quiet: bool) -> int | None:
        """Store and commit ``batch``; the index of the item that raised (nothing committed), or None."""
        counts: dict[str, Counter[str]] = {}
        with self.factory() as session:
            session.begin()
            for i, (item, now) in enumerate(batch):
                try:
                    self._store(session, self.runs[item.source], item, now,
                                counts.setdefault(item.source, Counter()), quiet)
                except Exception:
                    session.rollback()
                    logger.exception("%s: could not store %s; left out (the next run fetches it again)",
                                     item.source, _describe(item))
                    return i
            try:
                session.commit()
            except Exception as exc:
                for name in {item.source for item, _ in batch}:
                    self.runs[name].fail(f"database: could not store {len(batch)} items: {type(exc).__name__}: "
                                         f"{exc}")
                raise
        for name, counter in counts.items():
            self.runs[name].counts.update(counter)
        return None

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _commit_on_timer(self) -> None:
        self.timer = None
        try:
            self.commit()
        except Exception:
            logger.exception("storing a batch of items failed")

    # ------------------------------------------------------------------ one item
    def _store(self, s: Session, ctx: CrawlContext, item: Item, now: datetime, counts: Counter[str],
               quiet: bool = False) -> None:
        if isinstance(item, ListPageItem):
            for outcome in store.record_list_entries(s, ctx.source_id, item.entries, now):
                if outcome in ("new", "updated"):
                    counts[outcome] += 1
        elif isinstance(item, ArticleItem):
            outcome = store.store_article(s, ctx.source_id, item.record, now)
            counts[outcome] += 1
            if quiet:
                return
            new = ctx.counts["new"] + counts["new"]
            if outcome == "new" and new % PROGRESS_EVERY == 0:
                logger.info("%s: %d new articles stored so far", ctx.source.name, new)
            elif outcome == "updated":
                logger.info("%s: edited: %s", ctx.source.name, item.record.url)
        else:
            self._check(s, ctx, item, now, counts, quiet)

    @staticmethod
    def _check(s: Session, ctx: CrawlContext, item: CheckItem, now: datetime, counts: Counter[str],
               quiet: bool) -> None:
        if item.outcome == "unchanged":
            store.mark_unchanged(s, ctx.source_id, item.url, now, item.etag, item.last_modified)
            counts["unchanged"] += 1
        elif item.outcome == "removed":
            if store.mark_removed(s, ctx.source_id, item.url, now):
                counts["removed"] += 1
                if not quiet:
                    logger.info("%s: removed at the source: %s (%s)", ctx.source.name, item.url, item.reason)
        else:
            store.mark_failed(s, ctx.source_id, item.url, item.reason, now)
            counts["failed"] += 1
            if not quiet:
                logger.warning("%s: skipped %s: %s (will retry next run)", ctx.source.name, item.url, item.reason)



def _describe(item: Item) -> str:
    if isinstance(item, ArticleItem):
        return item.record.url
    if isinstance(item, CheckItem):
        return item.url
    return f"a list page of {len(item.entries)} entries"
