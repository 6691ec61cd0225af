"""The column spider: walks a VSB column's list pages and stores its articles, incrementally.

    scrapy crawl column -a source=NAME [-a run_id=N]

First run: every list page (backfill). Later runs: the first list page with a conditional request,
more pages only while they hold unknown entries, the article pages of new entries, and conditional
re-checks of recent articles to notice edits and removals. Parsing is done by pure functions in
``crawler.parsing``; storing by the pipeline; the run's verdict by ``CrawlContext``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urldefrag

import scrapy
from scrapy import signals
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.article_worker import ArticleWorker
from crawler.context import CrawlContext
from crawler.items import ArticlePageItem, CheckItem, ListPageItem
from crawler.locks import SourceLock
from crawler.parsing import (
    canonical_article_url,
    decode_html,
    find_column_list_url,
    header_charset,
    is_on_domains,
    parse_list_page,
)
from crawler.parsing.model import ListPage
from crawler.sources import Source, load_sources
from crawler.vsb import NUMBERED_LIST_PAGE as _NUMBERED_PAGE
from db import store
from db.engine import open_database, transaction
from db.models import utcnow
from settings import load_config

logger = logging.getLogger(__name__)

GONE = (404, 410)
# A run fails for template drift when at least this share of fetched article pages had no title or body.
DRIFT_SHARE = 0.5
MAX_LIST_PAGES = 2000
# A run with more article pages to fetch than this (and every backfill) parses and stores them in a second
# process (crawler.article_worker) when pages come fast; Scrapy setting ARTICLE_WORKER = auto|always|never.
WORKER_THRESHOLD = 50
FAST_DELAY = 0.1  # "auto" forks the worker only below this DOWNLOAD_DELAY: at CRAWL_DELAY=1 parsing keeps up


class ColumnSpider(scrapy.Spider):
    name = "column"
    handle_httpstatus_list = [304, 404, 410]

    def __init__(self, source: str | None = None, run_id: str | None = None, lock: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not source:
            raise ValueError("give the source: scrapy crawl column -a source=NAME")
        self.config = load_config()
        sources = load_sources(self.config.SOURCES_FILE)
        if source not in sources:
            raise ValueError(f"no source named {source!r} in {self.config.SOURCES_FILE}")
        self.source: Source = sources[source]
        self.allowed_domains = list(self.source.domains)
        self.run_id = int(run_id) if run_id else None
        self.ctx: CrawlContext | None = None
        self.lock = SourceLock(self.config.DATABASE_URL, source)
        self.lock_held_by_parent = lock == "held"  # crawler.runner holds it for its child
        self.scheduled: set[str] = set()
        self.list_pages = 0
        self.article_pages = 0
        self.discovery_tried = False
        self.discovery_reason: str | None = None  # why the configured or remembered list page was given up
        self.started_monotonic = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ColumnSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.on_closed, signal=signals.spider_closed)
        return spider

    @property
    def context(self) -> CrawlContext:
        """The run's context, opened by start() before any callback can run."""
        if self.ctx is None:
            raise RuntimeError("the crawl context is used before start() opened it")
        return self.ctx

    # ------------------------------------------------------------------ start
    async def start(self) -> AsyncIterator[Any]:
        await self._acquire_lock()
        engine, factory = open_database(self.config.DATABASE_URL)
        self.ctx = ctx = CrawlContext.open(self.source, factory, self.run_id)
        logger.info("%s: crawl run %d started (%s, %d articles known)", self.source.name, ctx.run_id,
                    "incremental" if ctx.backfilled else "backfill", len(ctx.known))
        now = utcnow()
        with transaction(factory) as s:
            pending = store.urls_to_fetch(s, ctx.source_id)
            rechecks = store.due_rechecks(s, ctx.source_id, now, self.config.RECHECK_DAYS,
                                          self.config.RECHECK_INTERVAL)
        if self._wants_worker(ctx, len(pending)):
            engine.dispose()  # the worker must inherit no database connection of this process
            ctx.worker = ArticleWorker.fork(ctx, self.config.DATABASE_URL)
        list_url = ctx.discovered_list_url or self.source.list_url
        if list_url:
            yield self._list_request(list_url, page=1)
        else:
            for request in self._discovery_requests():
                yield request
        for url, title, published in pending:
            yield self._article_request(url, title, published)
        for url, etag, last_modified in rechecks:
            if url not in self.scheduled:
                yield self._article_request(url, None, None, etag=etag, last_modified=last_modified, recheck=True)

    def _wants_worker(self, ctx: CrawlContext, pending: int) -> bool:
        """A backfill, or a run with many pages to fetch, parses and stores in a second process."""
        settings = getattr(getattr(self, "crawler", None), "settings", None)
        mode = str(settings.get("ARTICLE_WORKER", "auto") if settings else "auto").lower()
        if mode in ("never", "off", "0", "false"):
            return False
        if mode in ("always", "on", "1", "true"):
            return True
        if mode != "auto":
            logger.warning("ARTICLE_WORKER=%r is not auto, always or never; using auto", mode)
        # only where downloads can outrun parsing: no politeness delay between requests, a second core
        fast = (settings.getfloat("DOWNLOAD_DELAY", 0.0) if settings else 0.0) < FAST_DELAY
        return fast and (os.cpu_count() or 1) >= 2 and (not ctx.backfilled or pending > WORKER_THRESHOLD)

    async def _acquire_lock(self) -> None:
        import asyncio

        if self.lock_held_by_parent or self.lock.try_acquire():
            return
        logger.warning("%s: another crawl of this source is running; waiting for it", self.source.name)
        while not self.lock.try_acquire():
            await asyncio.sleep(0.5)

    # ------------------------------------------------------------------ requests
    def _list_request(self, url: str, page: int, discovered: bool = False) -> scrapy.Request:
        headers = {}
        ctx = self.context
        if page == 1 and ctx.backfilled and not discovered and url == (ctx.discovered_list_url or self.source.list_url):
            if ctx.list_etag:
                headers["If-None-Match"] = ctx.list_etag
            if ctx.list_last_modified:
                headers["If-Modified-Since"] = ctx.list_last_modified
        return scrapy.Request(url, callback=self.parse_list, errback=self.list_failed, headers=headers,
                              meta={"page": page, "discovered": discovered}, dont_filter=True, priority=10)

    def _article_request(self, url: str, title: str | None, published: datetime | None, *,
                         etag: str | None = None, last_modified: str | None = None,
                         recheck: bool = False) -> scrapy.Request:
        self.scheduled.add(url)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return scrapy.Request(url, callback=self.parse_article, errback=self.article_failed, headers=headers,
                              meta={"list_title": title, "list_published": published, "recheck": recheck},
                              dont_filter=True)

    def _discovery_requests(self) -> Iterator[scrapy.Request]:
        """Find the list page from the seed article's breadcrumb, else from the home page's navigation."""
        self.discovery_tried = True
        seeds = list(dict.fromkeys(u for u in (self.source.seed_url, self.source.home_url) if u))  # seed may be home
        if seeds:
            yield scrapy.Request(seeds[0], callback=self.parse_discovery, errback=self.discovery_failed,
                                 meta={"seeds": seeds[1:]}, dont_filter=True, priority=20)

    # ------------------------------------------------------------------ list pages
    def parse_list(self, response: Response) -> Iterator[Any]:
        ctx = self.context
        page = response.meta["page"]
        if response.status == 304:
            logger.info("%s: list page unchanged (304)", self.source.name)
            return
        if response.status in GONE:
            yield from self._list_broken(f"list page {response.url} answered {response.status}", page,
                                         response.meta.get("seeds"))
            return
        self.list_pages += 1
        listing = parse_list_page(decode_html(response.body, _header_charset(response)), response.url,
                                  self.source.selectors)
        if not listing.entries:
            yield from self._list_broken(f"template changed? list page {response.url} yielded no entries", page,
                                         response.meta.get("seeds"))
            return
        if page == 1:
            if response.meta.get("discovered"):
                ctx.found_list_url = response.url
                logger.info("%s: using discovered list page %s", self.source.name, response.url)
            ctx.new_list_etag = _header(response, b"ETag")
            ctx.new_list_last_modified = _header(response, b"Last-Modified")
        records, requests = [], []
        for entry in listing.entries:
            external = not is_on_domains(entry.url, self.source.domains)
            # off-site links are kept exactly as the site lists them (readers follow them as they are)
            url = urldefrag(entry.url)[0] if external else canonical_article_url(entry.url)
            records.append(store.ListEntryRecord(url=url, title=entry.title, published_at=entry.published,
                                                 newsid=entry.newsid, external=external))
            if not external and url not in ctx.known and url not in self.scheduled:
                requests.append(self._article_request(url, None if entry.title_truncated else entry.title,
                                                      entry.published))
        yield ListPageItem(records)
        yield from requests
        all_known = all(r.url in ctx.known for r in records)
        if ctx.backfilled and all_known:
            logger.info("%s: list page %d holds only known entries; stop paging", self.source.name, page)
            return
        yield from self._next_page(listing, page)

    def _next_page(self, listing: ListPage, page: int) -> Iterator[Any]:
        if page == 1 and not self.context.backfilled:
            yield from self._all_list_pages(listing)
        if listing.next_url and page < MAX_LIST_PAGES:
            if listing.next_url not in self.scheduled:
                self.scheduled.add(listing.next_url)
                yield self._list_request(listing.next_url, page + 1)
            return
        self.context.reached_last_page = True
        logger.info("%s: reached the last list page (%d)", self.source.name, page)

    def _all_list_pages(self, listing: ListPage) -> Iterator[Any]:
        """A backfill asks for every list page at once when VSB's reverse numbering gives their URLs.

        Page k of T is ``<slug>/<T-k+1>.htm``: when page 1's 下页 link is ``<slug>/<T-1>.htm`` the others
        are known, so they need not wait for each other (the download delay still spaces the requests).
        """
        total, nxt = listing.total_pages, listing.next_url
        match = _NUMBERED_PAGE.match(nxt or "")
        if not total or not match or int(match.group(2)) != total - 1 or total > MAX_LIST_PAGES:
            return
        for k in range(3, total + 1):
            url = f"{match.group(1)}{total - k + 1}.htm"
            if url not in self.scheduled:
                self.scheduled.add(url)
                yield self._list_request(url, k)

    def _list_broken(self, reason: str, page: int, seeds: list[str] | None = None) -> Iterator[Any]:
        if page == 1 and not self.discovery_tried and (self.source.seed_url or self.source.list_url):
            logger.warning("%s: %s; discovering the column's list page", self.source.name, reason)
            self.discovery_reason = reason
            yield from self._discovery_requests()
            return
        if page == 1 and seeds:  # the discovered page is dead too (stale breadcrumb link): look at the next seed
            logger.warning("%s: %s; trying discovery from %s", self.source.name, reason, seeds[0])
            yield scrapy.Request(seeds[0], callback=self.parse_discovery, errback=self.discovery_failed,
                                 meta={"seeds": seeds[1:]}, dont_filter=True, priority=20)
            return
        self.context.fail(reason)

    def list_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        reason = f"list page {request.url} unreachable: {_describe(failure)}"
        if request.meta.get("page") == 1:
            yield from self._list_broken(reason, 99)  # unreachable is an outage, not a moved column
        else:
            self.context.fail(reason)

    # ------------------------------------------------------------------ discovery
    def parse_discovery(self, response: Response) -> Iterator[Any]:
        html = decode_html(response.body, _header_charset(response))
        found = None
        if response.status == 200:
            found = find_column_list_url(html, response.url, self.source.column)
        if found and is_on_domains(found, self.source.domains) and found != self._broken_url():
            logger.info("%s: discovered list page %s from %s", self.source.name, found, response.url)
            request = self._list_request(found, page=1, discovered=True)
            request.meta["seeds"] = response.meta.get("seeds") or []  # where to look if this page is dead
            yield request
            return
        seeds = response.meta.get("seeds") or []
        if seeds:
            yield scrapy.Request(seeds[0], callback=self.parse_discovery, errback=self.discovery_failed,
                                 meta={"seeds": seeds[1:]}, dont_filter=True, priority=20)
            return
        self.context.fail(f"{self.discovery_reason or 'no list_url'}; discovery found no list page")

    def _broken_url(self) -> str | None:
        if self.discovery_reason is None:
            return None
        return self.context.discovered_list_url or self.source.list_url

    def discovery_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        seeds = request.meta.get("seeds") or []
        if seeds:
            yield scrapy.Request(seeds[0], callback=self.parse_discovery, errback=self.discovery_failed,
                                 meta={"seeds": seeds[1:]}, dont_filter=True, priority=20)
            return
        self.context.fail(f"{self.discovery_reason or 'no list_url'}; discovery failed: {_describe(failure)}")

    # ------------------------------------------------------------------ article pages
    def parse_article(self, response: Response) -> Iterator[Any]:
        url = canonical_article_url(_original_url(response.request) if response.request else response.url)
        meta = response.meta
        if response.status == 304:
            yield CheckItem(url, "unchanged", etag=_header(response, b"ETag"),
                            last_modified=_header(response, b"Last-Modified"))
            return
        if response.status in GONE:
            if meta.get("recheck"):
                yield CheckItem(url, "removed", f"article page answered {response.status}")
            else:
                yield CheckItem(url, "failed", f"article page answered {response.status}")
            return
        self.article_pages += 1
        yield ArticlePageItem(url, response.url, response.body, _header_charset(response), _header(response, b"ETag"),
                              _header(response, b"Last-Modified"), meta.get("list_title"), meta.get("list_published"))

    def article_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        yield CheckItem(canonical_article_url(_original_url(request)), "failed", _describe(failure))

    # ------------------------------------------------------------------ end
    def on_closed(self, spider: scrapy.Spider, reason: str) -> None:
        ctx = self.ctx
        try:
            if ctx is None:
                return
            if ctx.worker is not None:  # close_spider of the pipeline did not run (the crawl broke down)
                ctx.worker.kill()
                ctx.worker = None
                ctx.fail("article worker: the crawl ended before it could store its items")
            if self.article_pages and ctx.drifted >= max(1, self.article_pages * DRIFT_SHARE):
                ctx.fail(f"template changed? {ctx.drifted} of {self.article_pages} article pages "
                         "yielded no title or body")
            stats = self.crawler.stats
            requests = int(stats.get_value("downloader/request_count", 0) or 0)
            status = ctx.finish(requests=requests, pages=self.list_pages + self.article_pages, close_reason=reason)
            seconds = time.monotonic() - self.started_monotonic
            logger.info(
                "crawl %s: %s in %.1fs, %d requests, %d pages, new %d, updated %d, unchanged %d, removed %d, "
                "failed %d%s", self.source.name, status, seconds, requests, self.list_pages + self.article_pages,
                ctx.counts["new"], ctx.counts["updated"], ctx.counts["unchanged"], ctx.counts["removed"],
                ctx.counts["failed"], f" ({ctx.failure})" if ctx.failure else "")
        finally:
            if ctx is not None and ctx.worker is not None:  # finishing the run raised
                ctx.worker.kill()
            self.lock.release()


def _original_url(request: scrapy.Request) -> str:
    """The URL the spider asked for: after a redirect Scrapy hands back the last hop, but the article
    is known (and must be stored or marked failed) under the URL its list entry gave."""
    return (request.meta.get("redirect_urls") or [request.url])[0]


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _header_charset(response: Response) -> str | None:
    return header_charset(response.headers.get(b"Content-Type"))


def _describe(failure: Failure) -> str:
    exc = failure.value
    response = getattr(exc, "response", None)  # HttpError: its text never says which status it was
    if isinstance(response, Response):
        return f"{type(exc).__name__}: answered {response.status}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
