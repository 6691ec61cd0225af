"""The storage pipeline: items are stored in batched transactions, each item all or nothing.

A batch is committed after ``COMMIT_EVERY`` items, ``COMMIT_SECONDS`` after its first item and when the
spider closes, so a crash or kill loses at most the last half second of items; the next run fetches them
again (a run saves its list-page validators and backfill mark only when it succeeds, and a batch that
cannot be committed fails the run). An item that raises is the only one lost: the batch is rolled back
and the items before it are stored again. (A commit per item cost ~10 % of a backfill's CPU: bench/crawl.py.)
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from crawler.article_worker import FLUSH_SECONDS
from crawler.articles import build_article
from crawler.context import CrawlContext
from crawler.items import ArticleItem, ArticlePageItem, CheckItem, ListPageItem
from db import store
from db.models import utcnow

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 50
COMMIT_EVERY = 100
COMMIT_SECONDS = 0.5


class StorePipeline:
    def __init__(self, crawler: Any = None, timers: bool = True) -> None:
        self.crawler = crawler
        self.ctx: CrawlContext | None = None
        self.session: Session | None = None
        self.batch: list[tuple[Any, datetime]] = []  # the items stored in the open transaction
        self.counts: Counter[str] = Counter()  # their outcomes, added to ctx.counts once committed
        self.timer: Any = None
        self.timers = timers  # commit COMMIT_SECONDS after a batch's first item (the article worker times its own)
        self.flush_timer: Any = None  # hands a part-filled batch to the article worker

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(crawler)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        ctx: CrawlContext = (spider or self.crawler.spider).ctx
        self.ctx = ctx
        if ctx.worker is not None:  # a big run: the article worker stores everything, in order
            for left in ctx.worker.submit(item):
                self._store_here(ctx, left)
            if ctx.worker is not None and ctx.worker.buffer and self.flush_timer is None:
                self.flush_timer = _call_later(FLUSH_SECONDS, self._flush_worker)
            return item
        self._store_here(ctx, item)
        return item

    def _store_here(self, ctx: CrawlContext, item: Any) -> None:
        if isinstance(item, ArticlePageItem):
            outcome = build_article(item, ctx.source.selectors, ctx.source.name)
            ctx.drifted += outcome.drifted
            item = outcome.item
        session = self._open()
        now = utcnow()
        try:
            self._store(session, ctx, item, now, self.counts)
        except Exception:
            self._replay()  # this item is rolled back; the batch's earlier ones are stored again
            raise
        self.batch.append((item, now))
        if len(self.batch) >= COMMIT_EVERY:
            self.commit()

    def close_spider(self, spider: Any = None) -> None:
        spider = spider or (self.crawler.spider if self.crawler is not None else None)
        ctx = getattr(spider, "ctx", None) or self.ctx
        if ctx is not None:
            self.finish_worker(ctx)
        self.commit()

    # ------------------------------------------------------------------ the article worker
    def _flush_worker(self) -> None:
        self.flush_timer = None
        ctx = self._context()
        if ctx.worker is not None:
            for left in ctx.worker.flush():
                self._store_here(ctx, left)

    def finish_worker(self, ctx: CrawlContext) -> None:
        """Wait for the worker to store what it was given; merge its figures; store what it never got."""
        worker, ctx.worker = ctx.worker, None
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        if worker is None:
            return
        self.ctx = ctx
        result, unsent = worker.finish()
        ctx.counts.update(result.counts)
        ctx.drifted += result.drifted
        if result.failure:
            ctx.fail(result.failure)
        for item in unsent:
            self._store_here(ctx, item)

    # ------------------------------------------------------------------ transactions
    def _context(self) -> CrawlContext:
        if self.ctx is None:
            raise RuntimeError("the pipeline stores items only after open_spider")
        return self.ctx

    def _open(self) -> Session:
        if self.session is None:
            self.session = self._context().factory()
            self.session.begin()
            self.timer = _call_later(COMMIT_SECONDS, self._commit_on_timer) if self.timers else None
        return self.session

    def _discard(self) -> list[tuple[Any, datetime]]:
        """Roll back and close the open transaction; return its items."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        session, self.session = self.session, None
        if session is not None:
            session.rollback()
            session.close()
        batch, self.batch, self.counts = self.batch, [], Counter()
        return batch

    def commit(self) -> None:
        """Commit the open batch; if that fails, the run fails, so that the next run fetches it again."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        session, self.session = self.session, None
        if session is None:
            return
        batch, counts = self.batch, self.counts
        self.batch, self.counts = [], Counter()
        ctx = self._context()
        try:
            session.commit()
        except Exception as exc:
            ctx.fail(f"database: could not store {len(batch)} items: {type(exc).__name__}: {exc}")
            raise
        finally:
            session.close()
        ctx.counts.update(counts)

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
        ctx = self._context()
        try:
            session = self._open()
            for item, now in batch:
                self._store(session, ctx, item, now, self.counts, quiet=True)
                self.batch.append((item, now))
        except Exception as exc:
            self._discard()
            ctx.fail(f"database: could not store {len(batch)} items: {type(exc).__name__}: {exc}")
            raise

    # ------------------------------------------------------------------ one item
    def _store(self, s: Session, ctx: CrawlContext, item: Any, now: datetime, counts: Counter[str],
               quiet: bool = False) -> None:
        if isinstance(item, ListPageItem):
            for outcome in store.record_list_entries(s, ctx.source_id, item.entries, now):
                if outcome in ("new", "updated"):
                    counts[outcome] += 1
        elif isinstance(item, ArticleItem):
            outcome = store.store_article(s, ctx.source_id, item.record, now)
            counts[outcome] += 1
            new = ctx.counts["new"] + counts["new"]
            if quiet:
                return
            if outcome == "new" and new % PROGRESS_EVERY == 0:
                logger.info("%s: %d new articles stored so far", ctx.source.name, new)
            elif outcome == "updated":
                logger.info("%s: edited: %s", ctx.source.name, item.record.url)
        elif isinstance(item, CheckItem):
            self._check(s, ctx, item, now, counts, quiet)

    def _check(self, s: Session, ctx: CrawlContext, item: CheckItem, now: datetime, counts: Counter[str],
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


def _call_later(delay: float, func: Any) -> Any:
    """A cancellable timer on the crawl's event loop (``.cancel()`` is safe after it fired)."""
    try:
        from scrapy.utils.asyncio import call_later
    except ImportError:  # Scrapy < 2.14
        from twisted.internet import reactor

        return _TwistedTimer(reactor.callLater(delay, func))  # type: ignore[attr-defined]
    try:
        return call_later(delay, func)
    except RuntimeError:  # no event loop nor reactor: used outside a crawl; commits at COMMIT_EVERY and close
        return None


class _TwistedTimer:
    def __init__(self, call: Any) -> None:
        self.call = call

    def cancel(self) -> None:
        if self.call.active():
            self.call.cancel()
