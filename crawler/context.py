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
        return cls.open_many([source], factory, {} if run_id is None else {source.name: run_id})[source.name]

    @classmethod
    def open_many(cls, sources: list[Source], factory: sessionmaker[Session],
                  run_ids: dict[str, int] | None = None) -> dict[str, CrawlContext]:
        """The runs of ``sources`` (those without an id in ``run_ids`` are begun here, after failing runs a
        dead crawl left 'running') and what the crawl needs to know of each: one transaction, a few queries."""
        run_ids = run_ids or {}
        with transaction(factory) as s:
            rows = store.sync_sources(s, [(src.name, src.title, src.list_url) for src in sources])
            new = [rows[src.name].id for src in sources if src.name not in run_ids]
            if new:
                store.fail_stale_runs(s, new, "crawl process ended before finishing (killed or crashed)")
            begun = dict(zip(new, store.begin_runs(s, new), strict=True))
            known = store.known_urls_by_source(s, [row.id for row in rows.values()])
            return {src.name: cls(source=src, factory=factory, source_id=(row := rows[src.name]).id,
                                  run_id=run_ids.get(src.name) or begun[row.id], known=known[row.id],
                                  backfilled=row.backfilled_at is not None, list_etag=row.list_etag,
                                  list_last_modified=row.list_last_modified,
                                  discovered_list_url=row.discovered_list_url)
                    for src in sources}

    def fail(self, reason: str) -> None:
        """Record the first reason the run failed (later ones are usually consequences)."""
        if self.failure is None:
            self.failure = reason
            logger.error("%s: crawl failed: %s", self.source.name, reason)

    def verdict(self, close_reason: str) -> str:
        if close_reason not in ("finished",) and self.failure is None:
            self.fail(f"crawl stopped early ({close_reason})")
        return "failed" if self.failure else "ok"

    def finish(self, requests: int, pages: int, close_reason: str) -> str:
        return finish_runs(self.factory, [(self, requests, pages, close_reason)])[0]


def finish_runs(factory: sessionmaker[Session], runs: list[tuple[CrawlContext, int, int, str]]) -> list[str]:
    """Record the verdict of each (run, requests, pages, close reason) in one transaction; a run that
    succeeded saves what it learnt about its list. Returns each run's status, "ok" or "failed"."""
    statuses, rows = [], []
    with transaction(factory) as s:
        for ctx, requests, pages, close_reason in runs:
            status = ctx.verdict(close_reason)
            statuses.append(status)
            backfilled_at = utcnow() if ctx.reached_last_page else None
            learnt = (ctx.new_list_etag, ctx.new_list_last_modified, backfilled_at, ctx.found_list_url)
            if status == "ok" and any(v is not None for v in learnt):  # an unchanged list (304) taught nothing
                store.set_list_state(
                    s, ctx.source_id,
                    etag=ctx.new_list_etag, last_modified=ctx.new_list_last_modified,
                    backfilled_at=backfilled_at, discovered_list_url=ctx.found_list_url,
                )
            rows.append({"run_id": ctx.run_id, "status": status, "error": ctx.failure, "requests": requests,
                         "pages_fetched": pages, "new": ctx.counts["new"], "updated": ctx.counts["updated"],
                         "unchanged": ctx.counts["unchanged"], "removed": ctx.counts["removed"],
                         "failed": ctx.counts["failed"]})
        store.finish_runs(s, rows)
    return statuses
