"""The media spider: downloads the media of stored articles, without crawling any page.

    scrapy crawl media [-a sources=a,b|all] [-a backfill=1]

``python scheduler.py media --backfill`` runs it for articles stored before MEDIA=keep was turned on
(every image and attachment never tried); without backfill only failed ones are tried again. Requests
go through the same downloader settings as a crawl: robots.txt, per-host delay, retries.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import scrapy

from crawler.media import backlog_items
from crawler.sources import Source, load_sources
from db.engine import open_database
from settings import load_config

logger = logging.getLogger(__name__)


class MediaSpider(scrapy.Spider):
    name = "media"
    custom_settings = {
        "ITEM_PIPELINES": {"crawler.media.MediaFilesPipeline": 200},
        "SPIDER_MIDDLEWARES": {"crawler.media.MediaBacklogMiddleware": None},
    }

    def __init__(self, sources: str = "all", backfill: str = "1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = load_config()
        configured = load_sources(self.config.SOURCES_FILE)
        names = list(configured) if sources in ("", "all") else [n.strip() for n in sources.split(",") if n.strip()]
        unknown = [n for n in names if n not in configured]
        if unknown:
            raise ValueError(f"no source named {', '.join(unknown)} in {self.config.SOURCES_FILE}")
        self.sources: dict[str, Source] = {n: configured[n] for n in names}
        self.allowed_domains = list(dict.fromkeys(d for s in self.sources.values() for d in s.domains))
        self.all_missing = backfill not in ("0", "false", "no", "")

    async def start(self) -> AsyncIterator[Any]:
        engine, factory = open_database(self.config.DATABASE_URL)
        items = backlog_items(factory, list(self.sources), all_missing=self.all_missing)
        engine.dispose()
        logger.info("media: %d articles with media to download", len(items))
        for item in items:
            yield item
