"""The column spider: walks VSB columns' list pages and stores their articles, incrementally.

    scrapy crawl column -a sources=NAME[,NAME...]|all [-a runs=NAME:ID,...]     (or -a source=NAME)

One process crawls several sources side by side; Scrapy's per-host download slots keep the politeness
promise per host, whatever the number of columns on it (one request in flight, DOWNLOAD_DELAY between
two), and robots.txt is fetched once per host. Each source has its own run record and verdict: template
drift or an unreachable list page fails that source only.

First run of a source: every list page (backfill). Later runs: the first list page with a conditional
request, more pages only while they hold unknown entries, the article pages of new entries, and
conditional re-checks of recent articles to notice edits and removals. Parsing is done by pure functions
(``crawler.parsing``, ``crawler.articles``); storing by ``crawler.storage`` through the pipeline.
Duplicate requests are dropped by Scrapy's dupefilter (fingerprints include the source:
``crawler.middlewares.SourceRequestFingerprinter``); off-site requests by Scrapy's offsite filter.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urldefrag

import scrapy
from scrapy import signals
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.articles import FetchedPage, build_article
from crawler.context import CrawlContext
from crawler.items import CheckItem, ListPageItem
from crawler.locks import SourceLock
from crawler.middlewares import quiet_network_tracebacks
from crawler.parsing import (
    canonical_article_url,
    decode_html,
    find_column_list_url,
    header_charset,
    is_on_domains,
    parse_list_page,
)
from crawler.parsing.model import ListPage
from crawler.pipelines import call_later
from crawler.sources import Source, load_sources, source_from_table
from crawler.storage import CrawlStorage
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


def parse_names(sources: str | None, source: str | None, available: list[str]) -> list[str]:
    """``-a sources=a,b`` / ``all``, or ``-a source=a``: the names to crawl, in the given order."""
    raw = sources if sources is not None else source
    if not raw or not raw.strip():
        raise ValueError("give the sources: scrapy crawl column -a sources=NAME[,NAME...] (or all)")
    if raw.strip() == "all":
        return list(available)
    names = list(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"no source named {', '.join(map(repr, unknown))}")
    return names


def parse_runs(raw: str | None) -> dict[str, int]:
    """``a:12,b:13``: crawl_runs rows the caller created for these sources."""
    runs: dict[str, int] = {}
    for part in (raw or "").split(","):
        if part.strip():
            name, _, run_id = part.strip().rpartition(":")
            runs[name] = int(run_id)
    return runs


class ColumnSpider(scrapy.Spider):
    name = "column"
    handle_httpstatus_list = [304, 404, 410]

    def __init__(self, source: str | None = None, sources: str | None = None, runs: str | None = None,
                 source_tables: str | None = None, run_id: str | None = None, lock: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = load_config()
        if source_tables:  # a crawl node without the sources file: the scheduler sends the tables
            configured = {t["name"]: source_from_table(t) for t in json.loads(source_tables)}
        else:
            configured = load_sources(self.config.SOURCES_FILE)
        names = parse_names(sources, source, list(configured))
        self.sources: dict[str, Source] = {n: configured[n] for n in names}
        self.run_ids = parse_runs(runs)
        if run_id and len(names) == 1:
            self.run_ids.setdefault(names[0], int(run_id))
        self.allowed_domains = list(dict.fromkeys(d for s in self.sources.values() for d in s.domains))
        self.locks = {n: SourceLock(self.config.DATABASE_URL, n) for n in sorted(names)}
        self.locks_held_by_parent = lock == "held"  # crawler.runner holds them for its child
        self.storage: CrawlStorage | None = None
        self.requests_sent: Counter[str] = Counter()
        self.started_monotonic = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ColumnSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        quiet_network_tracebacks()
        crawler.signals.connect(spider.on_closed, signal=signals.spider_closed)
        crawler.signals.connect(spider.on_request_sent, signal=signals.request_reached_downloader)
        return spider

    def on_request_sent(self, request: scrapy.Request, spider: scrapy.Spider) -> None:
        """Requests per source (robots.txt, shared by a host's sources, is counted for none)."""
        name = request.meta.get("source")
        if name is not None:
            self.requests_sent[name] += 1

    def ctx(self, request_or_response: Any) -> CrawlContext:
        """The run of the source a request (or its response) belongs to."""
        if self.storage is None:
            raise RuntimeError("the crawl's runs are used before start() opened them")
        return self.storage.runs[request_or_response.meta["source"]]

    # ------------------------------------------------------------------ start
    async def start(self) -> AsyncIterator[Any]:
        await self._acquire_locks()
        _engine, factory = open_database(self.config.DATABASE_URL)
        self.storage = CrawlStorage(factory, call_later)
        now = utcnow()
        openings = []
        for src in self.sources.values():
            ctx = self.storage.open_run(src, self.run_ids.get(src.name))
            logger.info("%s: crawl run %d started (%s, %d articles known)", src.name, ctx.run_id,
                        "incremental" if ctx.backfilled else "backfill", len(ctx.known))
            with transaction(factory) as s:
                pending = store.urls_to_fetch(s, ctx.source_id)
                rechecks = store.due_rechecks(s, ctx.source_id, now, self.config.RECHECK_DAYS,
                                              self.config.RECHECK_INTERVAL)
            openings.append((ctx, pending, rechecks))
        for ctx, _pending, _rechecks in openings:  # every column's first list page before any article
            list_url = ctx.discovered_list_url or ctx.source.list_url
            if list_url:
                yield self._list_request(ctx, list_url, page=1)
            else:
                for request in self._discovery_requests(ctx):
                    yield request
        for ctx, pending, rechecks in openings:
            for url, title, published in pending:
                yield self._article_request(ctx, url, title, published)
            for url, etag, last_modified in rechecks:
                yield self._article_request(ctx, url, None, None, etag=etag, last_modified=last_modified,
                                            recheck=True)

    async def _acquire_locks(self) -> None:
        """One crawl per source at a time; taken in name order, so two crawls never wait for each other."""
        import asyncio

        if self.locks_held_by_parent:
            return
        for name, lock in self.locks.items():
            if lock.try_acquire():
                continue
            logger.warning("%s: another crawl of this source is running; waiting for it", name)
            while not lock.try_acquire():
                await asyncio.sleep(0.5)

    # ------------------------------------------------------------------ requests
    def _list_request(self, ctx: CrawlContext, url: str, page: int, discovered: bool = False,
                      seeds: list[str] | None = None) -> scrapy.Request:
        headers = {}
        if page == 1 and ctx.backfilled and not discovered and url == (ctx.discovered_list_url or ctx.source.list_url):
            if ctx.list_etag:
                headers["If-None-Match"] = ctx.list_etag
            if ctx.list_last_modified:
                headers["If-Modified-Since"] = ctx.list_last_modified
        return scrapy.Request(url, callback=self.parse_list, errback=self.list_failed, headers=headers,
                              meta={"source": ctx.source.name, "page": page, "discovered": discovered,
                                    "seeds": seeds or []}, priority=10)

    def _article_request(self, ctx: CrawlContext, url: str, title: str | None, published: datetime | None, *,
                         etag: str | None = None, last_modified: str | None = None,
                         recheck: bool = False) -> scrapy.Request:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return scrapy.Request(url, callback=self.parse_article, errback=self.article_failed, headers=headers,
                              meta={"source": ctx.source.name, "list_title": title, "list_published": published,
                                    "recheck": recheck})

    def _discovery_request(self, ctx: CrawlContext, seeds: list[str]) -> scrapy.Request:
        return scrapy.Request(seeds[0], callback=self.parse_discovery, errback=self.discovery_failed,
                              meta={"source": ctx.source.name, "seeds": seeds[1:]}, priority=20)

    def _discovery_requests(self, ctx: CrawlContext) -> Iterator[scrapy.Request]:
        """Find the list page from the seed article's breadcrumb, else from the home page's navigation."""
        ctx.discovery_tried = True
        src = ctx.source
        seeds = list(dict.fromkeys(u for u in (src.seed_url, src.home_url) if u))  # seed may be home
        if seeds:
            yield self._discovery_request(ctx, seeds)

    # ------------------------------------------------------------------ list pages
    def parse_list(self, response: Response) -> Iterator[Any]:
        ctx = self.ctx(response)
        name = ctx.source.name
        page = response.meta["page"]
        if response.status == 304:
            logger.info("%s: list page unchanged (304)", name)
            return
        if response.status in GONE:
            yield from self._list_broken(ctx, f"list page {response.url} answered {response.status}", page,
                                         response.meta.get("seeds"))
            return
        ctx.list_pages += 1
        listing = parse_list_page(decode_html(response.body, _header_charset(response)), response.url,
                                  ctx.source.selectors)
        if not listing.entries:
            yield from self._list_broken(ctx, f"template changed? list page {response.url} yielded no entries",
                                         page, response.meta.get("seeds"))
            return
        if page == 1:
            if response.meta.get("discovered"):
                ctx.found_list_url = response.url
                logger.info("%s: using discovered list page %s", name, response.url)
            ctx.new_list_etag = _header(response, b"ETag")
            ctx.new_list_last_modified = _header(response, b"Last-Modified")
        records, requests = [], []
        for entry in listing.entries:
            external = not is_on_domains(entry.url, ctx.source.domains)
            # off-site links are kept exactly as the site lists them (readers follow them as they are)
            url = urldefrag(entry.url)[0] if external else canonical_article_url(entry.url)
            records.append(store.ListEntryRecord(url=url, title=entry.title, published_at=entry.published,
                                                 newsid=entry.newsid, external=external))
            if not external and url not in ctx.known:
                requests.append(self._article_request(ctx, url, None if entry.title_truncated else entry.title,
                                                      entry.published))
        yield ListPageItem(name, records)
        yield from requests
        if ctx.backfilled and all(r.url in ctx.known for r in records):
            logger.info("%s: list page %d holds only known entries; stop paging", name, page)
            return
        yield from self._next_page(ctx, listing, page)

    def _next_page(self, ctx: CrawlContext, listing: ListPage, page: int) -> Iterator[Any]:
        if page == 1 and not ctx.backfilled:
            yield from self._all_list_pages(ctx, listing)
        if listing.next_url and page < MAX_LIST_PAGES:
            yield self._list_request(ctx, listing.next_url, page + 1)
            return
        ctx.reached_last_page = True
        logger.info("%s: reached the last list page (%d)", ctx.source.name, page)

    def _all_list_pages(self, ctx: CrawlContext, listing: ListPage) -> Iterator[Any]:
        """A backfill asks for every list page at once when VSB's reverse numbering gives their URLs.

        Page k of T is ``<slug>/<T-k+1>.htm``: when page 1's 下页 link is ``<slug>/<T-1>.htm`` the others
        are known, so they need not wait for each other (the download delay still spaces the requests; the
        pages reached again through 下页 links are dropped by the dupefilter).
        """
        total, nxt = listing.total_pages, listing.next_url
        match = _NUMBERED_PAGE.match(nxt or "")
        if not total or not match or int(match.group(2)) != total - 1 or total > MAX_LIST_PAGES:
            return
        for k in range(3, total + 1):
            yield self._list_request(ctx, f"{match.group(1)}{total - k + 1}.htm", k)

    def _list_broken(self, ctx: CrawlContext, reason: str, page: int,
                     seeds: list[str] | None = None) -> Iterator[Any]:
        name = ctx.source.name
        if page == 1 and not ctx.discovery_tried and (ctx.source.seed_url or ctx.source.list_url):
            logger.warning("%s: %s; discovering the column's list page", name, reason)
            ctx.discovery_reason = reason
            yield from self._discovery_requests(ctx)
            return
        if page == 1 and seeds:  # the discovered page is dead too (stale breadcrumb link): look at the next seed
            logger.warning("%s: %s; trying discovery from %s", name, reason, seeds[0])
            yield self._discovery_request(ctx, seeds)
            return
        ctx.fail(reason)

    def list_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        ctx = self.ctx(request)
        reason = f"list page {request.url} unreachable: {_describe(failure)}"
        if request.meta.get("page") == 1:
            yield from self._list_broken(ctx, reason, 99)  # unreachable is an outage, not a moved column
        else:
            ctx.fail(reason)

    # ------------------------------------------------------------------ discovery
    def parse_discovery(self, response: Response) -> Iterator[Any]:
        ctx = self.ctx(response)
        html = decode_html(response.body, _header_charset(response))
        found = None
        if response.status == 200:
            found = find_column_list_url(html, response.url, ctx.source.column)
        seeds = response.meta.get("seeds") or []
        if found and is_on_domains(found, ctx.source.domains) and found != self._broken_url(ctx):
            logger.info("%s: discovered list page %s from %s", ctx.source.name, found, response.url)
            yield self._list_request(ctx, found, page=1, discovered=True, seeds=seeds)  # seeds: if it is dead
            return
        if seeds:
            yield self._discovery_request(ctx, seeds)
            return
        ctx.fail(f"{ctx.discovery_reason or 'no list_url'}; discovery found no list page")

    @staticmethod
    def _broken_url(ctx: CrawlContext) -> str | None:
        if ctx.discovery_reason is None:
            return None
        return ctx.discovered_list_url or ctx.source.list_url

    def discovery_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        ctx = self.ctx(request)
        seeds = request.meta.get("seeds") or []
        if seeds:
            yield self._discovery_request(ctx, seeds)
            return
        ctx.fail(f"{ctx.discovery_reason or 'no list_url'}; discovery failed: {_describe(failure)}")

    # ------------------------------------------------------------------ article pages
    def parse_article(self, response: Response) -> Iterator[Any]:
        ctx = self.ctx(response)
        name = ctx.source.name
        url = canonical_article_url(_original_url(response.request) if response.request else response.url)
        meta = response.meta
        if response.status == 304:
            yield CheckItem(name, url, "unchanged", etag=_header(response, b"ETag"),
                            last_modified=_header(response, b"Last-Modified"))
            return
        if response.status in GONE:
            outcome = "removed" if meta.get("recheck") else "failed"
            yield CheckItem(name, url, outcome, f"article page answered {response.status}")
            return
        ctx.article_pages += 1
        page = FetchedPage(url, response.url, response.body, _header_charset(response), _header(response, b"ETag"),
                           _header(response, b"Last-Modified"), meta.get("list_title"), meta.get("list_published"))
        built = build_article(page, ctx.source.selectors, name)
        ctx.drifted += built.drifted
        yield built.item

    def article_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        yield CheckItem(request.meta["source"], canonical_article_url(_original_url(request)), "failed",
                        _describe(failure))

    # ------------------------------------------------------------------ end
    def on_closed(self, spider: scrapy.Spider, reason: str) -> None:
        try:
            if self.storage is None:
                return
            seconds = time.monotonic() - self.started_monotonic
            for name, ctx in self.storage.runs.items():
                if ctx.article_pages and ctx.drifted >= max(1, ctx.article_pages * DRIFT_SHARE):
                    ctx.fail(f"template changed? {ctx.drifted} of {ctx.article_pages} article pages "
                             "yielded no title or body")
                pages = ctx.list_pages + ctx.article_pages
                requests = self.requests_sent[name]
                status = self.storage.finish_run(name, requests=requests, pages=pages, close_reason=reason)
                logger.info(
                    "crawl %s: %s in %.1fs, %d requests, %d pages, new %d, updated %d, unchanged %d, removed %d, "
                    "failed %d%s",
                    name, status, seconds, requests, pages, ctx.counts["new"], ctx.counts["updated"],
                    ctx.counts["unchanged"], ctx.counts["removed"], ctx.counts["failed"],
                    f" ({ctx.failure})" if ctx.failure else "")
            if len(self.storage.runs) > 1:
                total = int(self.crawler.stats.get_value("downloader/request_count", 0) or 0)
                logger.info("crawl of %d sources finished in %.1fs, %d requests", len(self.storage.runs),
                            seconds, total)
        finally:
            for lock in self.locks.values():
                lock.release()


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
