"""Downloader middlewares: retries with exponential backoff (Scrapy's own RetryMiddleware retries at once),
and a host check that keeps every request, redirects included, on the source's domains."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawler.parsing import is_on_domains

MAX_BACKOFF = 60.0


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry policy, but each retry waits ``RETRY_BACKOFF_BASE * 2**(n-1)`` seconds first.

    A ``Retry-After`` header on the failed response is honoured (capped), so a 503 from an overloaded
    source is not hammered.
    """

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Any:
        result = super().process_response(request, response)
        if isinstance(result, Request) and result is not request:
            result.meta["retry_after"] = _retry_after(response)
        return result

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        retries = request.meta.get("retry_times", 0)
        if retries and self.backoff_base > 0:
            delay = self.backoff_base * 2 ** (retries - 1)
            after = request.meta.pop("retry_after", None)
            if after is not None:
                delay = max(delay, after)
            await asyncio.sleep(min(delay, MAX_BACKOFF))
        return None


def _retry_after(response: Response) -> float | None:
    raw = response.headers.get(b"Retry-After")
    if not raw:
        return None
    text = raw.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - time.time())


class OnSiteOnlyMiddleware:
    """Refuse any request to a host outside ``spider.allowed_domains``, whatever its flags.

    Scrapy's OffsiteMiddleware waves through requests with ``dont_filter=True``; the spider sets it on
    every request (it deduplicates by itself) and redirects inherit it, so a page answering
    ``302 Location: http://elsewhere/`` was followed off-site. Raising IgnoreRequest here (before
    robots.txt is fetched for that host) sends the request to its errback, which records the reason.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> OnSiteOnlyMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        domains = list(getattr(spider or self.crawler.spider, "allowed_domains", None) or [])
        if not domains or is_on_domains(request.url, domains):
            return None
        origin = (request.meta.get("redirect_urls") or [None])[0]
        if origin:
            raise IgnoreRequest(f"redirect from {origin} to off-site {request.url} not followed")
        raise IgnoreRequest(f"off-site request to {request.url} refused")
