"""Storing a crawl's items: batched transactions and each source's run record (no Scrapy here).

A batch is committed after ``COMMIT_EVERY`` items, ``COMMIT_SECONDS`` after its first item (when the caller
gives a timer) and when a run finishes, so a crash or kill loses at most the last half second of items; the
next run fetches them again (a run saves its list-page validators and backfill mark only when it succeeds,
and a batch that cannot be committed fails the runs it held items of). An item that raises is the only one
lost: the batch is rolled back and the items before it are stored again. (A commit per item cost ~10 % of a
backfill's CPU: bench/crawl.py.)
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
    """The runs of one crawl process, one per source, and the open batch of their items."""

    def __init__(self, factory: sessionmaker[Session], call_later: CallLater | None = None) -> None:
        self.factory = factory
        self.call_later = call_later
        self.runs: dict[str, CrawlContext] = {}
        self.session: Session | None = None
        self.batch: list[tuple[Item, datetime]] = []  # the items stored in the open transaction
        self.counts: dict[str, Counter[str]] = {}  # their outcomes per source, added to the runs once committed
        self.timer: Timer | None = None

    # ------------------------------------------------------------------ runs
    def open_run(self, source: Source, run_id: int | None = None) -> CrawlContext:
        """Start (or take over, with ``run_id``) the run of one source and load what the crawl needs to know."""
        ctx = CrawlContext.open(source, self.factory, run_id)
        self.runs[source.name] = ctx
        return ctx

    def finish_run(self, name: str, requests: int, pages: int, close_reason: str) -> str:
        """Commit what is pending, then record the run's verdict; returns "ok" or "failed"."""
        try:
            self.commit()
        except Exception:
            logger.exception("%s: storing the last items failed", name)
        return self.runs[name].finish(requests=requests, pages=pages, close_reason=close_reason)

    # ------------------------------------------------------------------ items
    def store(self, item: Item) -> None:
        ctx = self.runs[item.source]
        session = self._open()
        now = utcnow()
        try:
            self._store(session, ctx, item, now, self._counts(item.source))
        except Exception:
            self._replay()  # this item is rolled back; the batch's earlier ones are stored again
            raise
        self.batch.append((item, now))
        if len(self.batch) >= COMMIT_EVERY:
            self.commit()

    def commit(self) -> None:
        """Commit the open batch; if that fails, its sources' runs fail, so the next run fetches it again."""
        self._cancel_timer()
        session, self.session = self.session, None
        if session is None:
            return
        batch, counts = self.batch, self.counts
        self.batch, self.counts = [], {}
        try:
            session.commit()
        except Exception as exc:
            for name in {item.source for item, _ in batch}:
                self.runs[name].fail(f"database: could not store {len(batch)} items: {type(exc).__name__}: {exc}")
            raise
        finally:
            session.close()
        for name, counter in counts.items():
            self.runs[name].counts.update(counter)

    # ------------------------------------------------------------------ transactions
    def _counts(self, name: str) -> Counter[str]:
        return self.counts.setdefault(name, Counter())

    def _open(self) -> Session:
        if self.session is None:
            self.session = self.factory()
            self.session.begin()
            self.timer = self.call_later(COMMIT_SECONDS, self._commit_on_timer) if self.call_later else None
        return self.session

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _discard(self) -> list[tuple[Item, datetime]]:
        """Roll back and close the open transaction; return its items."""
        self._cancel_timer()
        session, self.session = self.session, None
        if session is not None:
            session.rollback()
            session.close()
        batch, self.batch, self.counts = self.batch, [], {}
        return batch

    def _commit_on_timer(self) -> None:
        self.timer = None
        try:
            self.commit()
        except Exception:
            logger.exception("storing a batch of items failed")

    def _replay(self) -> None:
        batch = self._discard()
        if not batch:
            return
        try:
            session = self._open()
            for item, now in batch:
                self._store(session, self.runs[item.source], item, now, self._counts(item.source), quiet=True)
                self.batch.append((item, now))
        except Exception as exc:
            self._discard()
            for name in {item.source for item, _ in batch}:
                self.runs[name].fail(f"database: could not store {len(batch)} items: {type(exc).__name__}: {exc}")
            raise

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

