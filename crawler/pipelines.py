"""The storage pipeline: each item is stored in its own transaction, so a crash loses at most one item."""

from __future__ import annotations

import logging
from typing import Any

from crawler.context import CrawlContext
from crawler.items import ArticleItem, CheckItem, ListEntryItem
from db import store
from db.engine import transaction
from db.models import utcnow

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 50


class StorePipeline:
    def __init__(self, crawler: Any = None) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(crawler)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        ctx: CrawlContext = (spider or self.crawler.spider).ctx
        now = utcnow()
        with transaction(ctx.factory) as s:
            if isinstance(item, ListEntryItem):
                outcome = store.record_list_entry(s, ctx.source_id, item.entry, now)
                if outcome in ("new", "updated"):
                    ctx.counts[outcome] += 1
            elif isinstance(item, ArticleItem):
                outcome = store.store_article(s, ctx.source_id, item.record, now)
                ctx.counts[outcome] += 1
                if outcome == "new" and ctx.counts["new"] % PROGRESS_EVERY == 0:
                    logger.info("%s: %d new articles stored so far", ctx.source.name, ctx.counts["new"])
                elif outcome == "updated":
                    logger.info("%s: edited: %s", ctx.source.name, item.record.url)
            elif isinstance(item, CheckItem):
                self._check(s, ctx, item, now)
        return item

    def _check(self, s: Any, ctx: CrawlContext, item: CheckItem, now: Any) -> None:
        if item.outcome == "unchanged":
            store.mark_unchanged(s, ctx.source_id, item.url, now, item.etag, item.last_modified)
            ctx.counts["unchanged"] += 1
        elif item.outcome == "removed":
            if store.mark_removed(s, ctx.source_id, item.url, now):
                ctx.counts["removed"] += 1
                logger.info("%s: removed at the source: %s (%s)", ctx.source.name, item.url, item.reason)
        else:
            store.mark_failed(s, ctx.source_id, item.url, item.reason, now)
            ctx.counts["failed"] += 1
            logger.warning("%s: skipped %s: %s (will retry next run)", ctx.source.name, item.url, item.reason)
