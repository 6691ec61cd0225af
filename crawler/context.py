"""The state of one crawl run: the source, its database rows, counters and the verdict.

The spider reads from it and the storage writes through it, so that neither needs to know how the
other does its job, and the run's outcome is recorded in one place. A crawl process holds one per source.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from crawler.sources import Source
from db import store
from db.engine import transaction
from db.models import utcnow

logger = logging.getLogger(__name__)


@dataclass
class CrawlContext:
    source: Source
    factory: sessionmaker[Session]
    source_id: int
    run_id: int
    started: datetime = field(default_factory=utcnow)
    counts: Counter[str] = field(default_factory=Counter)
    failure: str | None = None
    # what the database knew when the run started
    known: set[str] = field(default_factory=set)
    backfilled: bool = False
    list_etag: str | None = None
    list_last_modified: str | None = None
    discovered_list_url: str | None = None
    # what this run learnt about the list, saved only if the run succeeds
    new_list_etag: str | None = None
    new_list_last_modified: str | None = None
    reached_last_page: bool = False
    found_list_url: str | None = None
    drifted: int = 0  # article pages that yielded no title or body (template drift)
    # what the spider did for this source
    list_pages: int = 0
    article_pages: int = 0
    discovery_tried: bool = False
    discovery_reason: str | None = None  # why the configured or remembered list page was given up

    @classmethod
    def open(cls, source: Source, factory: sessionmaker[Session], run_id: int | None = None) -> CrawlContext:
        with transaction(factory) as s:
            row = store.sync_source(s, source.name, source.title, source.list_url)
            if run_id is None:
                store.fail_stale_runs(s, row.id, "crawl process ended before finishing (killed or crashed)")
                run_id = store.begin_run(s, row.id).id
            ctx = cls(source=source, factory=factory, source_id=row.id, run_id=run_id,
                      known=store.known_urls(s, row.id), backfilled=row.backfilled_at is not None,
                      list_etag=row.list_etag, list_last_modified=row.list_last_modified,
                      discovered_list_url=row.discovered_list_url)
        return ctx

    def fail(self, reason: str) -> None:
        """Record the first reason the run failed (later ones are usually consequences)."""
        if self.failure is None:
            self.failure = reason
            logger.error("%s: crawl failed: %s", self.source.name, reason)

    def finish(self, requests: int, pages: int, close_reason: str) -> str:
        if close_reason not in ("finished",) and self.failure is None:
            self.fail(f"crawl stopped early ({close_reason})")
        status = "failed" if self.failure else "ok"
        with transaction(self.factory) as s:
            if status == "ok":
                store.set_list_state(
                    s, self.source_id,
                    etag=self.new_list_etag, last_modified=self.new_list_last_modified,
                    backfilled_at=utcnow() if self.reached_last_page else None,
                    discovered_list_url=self.found_list_url,
                )
            store.finish_run(
                s, self.run_id, status, self.failure, requests=requests, pages_fetched=pages,
                new=self.counts["new"], updated=self.counts["updated"], unchanged=self.counts["unchanged"],
                removed=self.counts["removed"], failed=self.counts["failed"],
            )
        return status
