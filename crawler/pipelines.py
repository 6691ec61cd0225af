"""The storage pipeline: a thin adapter from Scrapy to :class:`crawler.storage.CrawlStorage`."""

from __future__ import annotations

from typing import Any

from crawler.storage import Timer


class StorePipeline:
    """Hands each item to the spider's storage (which the spider opened in ``start()``)."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(crawler)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        (spider or self.crawler.spider).storage.store(item)
        return item

    def close_spider(self, spider: Any = None) -> None:
        storage = getattr(spider or self.crawler.spider, "storage", None)
        if storage is not None:
            storage.commit()


def call_later(delay: float, func: Any) -> Timer | None:
    """A cancellable timer on the crawl's event loop, or None outside a running crawl."""
    from scrapy.utils.asyncio import call_later as scrapy_call_later

    try:
        return scrapy_call_later(delay, func)
    except RuntimeError:  # no event loop nor reactor: commits happen at COMMIT_EVERY and at the end
        return None
