"""Where crawl processes run: on this machine (``local``), or on Scrapyd nodes (issue: more than one machine).

The scheduler decides what is due; a backend decides how due sources are grouped into crawl processes
(``shards``) and runs one group (``run``), recording a run row per source either way.
"""

from __future__ import annotations

import threading
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from crawler.runner import CrawlOutcome, run_batch
from crawler.shards import split_by_host
from crawler.sources import Source
from settings import AppConfig

STOP_GRACE_SECONDS = 5.0


class CrawlBackend(Protocol):
    name: str

    def shards(self, sources: list[Source], slots: int) -> list[list[Source]]: ...

    def run(self, shard: list[Source], stop: threading.Event) -> list[CrawlOutcome]: ...

    def metrics(self) -> str:
        """Prometheus lines of the backend's own (appended to /metrics)."""
        ...


class LocalBackend:
    """Crawl processes forked on this machine, at most ``CRAWL_PROCESSES`` at once, a host in one of them."""

    name = "local"

    def __init__(self, cfg: AppConfig, factory: sessionmaker[Session]) -> None:
        self.cfg = cfg
        self.factory = factory

    @property
    def slots(self) -> int:
        return self.cfg.CRAWL_PROCESSES

    def shards(self, sources: list[Source], slots: int) -> list[list[Source]]:
        return split_by_host(sources, slots)

    def metrics(self) -> str:
        return ""

    def run(self, shard: list[Source], stop: threading.Event) -> list[CrawlOutcome]:
        return run_batch(self.factory, shard, self.cfg.CRAWL_TIMEOUT, stop, grace=STOP_GRACE_SECONDS,
                         database_url=self.cfg.DATABASE_URL)


def make_backend(cfg: AppConfig, factory: sessionmaker[Session]) -> CrawlBackend:
    if cfg.CRAWL_BACKEND == "scrapyd":
        from crawler.scrapyd_backend import ScrapydBackend

        return ScrapydBackend(cfg, factory, grace=STOP_GRACE_SECONDS)
    return LocalBackend(cfg, factory)
