"""Downloader middlewares and their helpers: retries with exponential backoff (Scrapy's own RetryMiddleware
retries at once), Scrapy's offsite filter with reasons, per-source request fingerprints."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import time
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.downloadermiddlewares.offsite import OffsiteMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotConfigured,
    ResponseDataLossError,
)
from scrapy.http import Response
from scrapy.utils.request import RequestFingerprinter
from twisted.internet.error import ConnectError, ConnectionLost, DNSLookupError, TCPTimedOutError, TimeoutError
from twisted.web._newclient import ResponseNeverReceived

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


class OffsiteErrbackMiddleware(OffsiteMiddleware):
    """Scrapy's offsite filter, whose refusals reach the request's errback, so the run records why.

    Scrapy drops an off-site request silently when it is scheduled (``request_scheduled``): a page that
    redirects off-site would simply never be answered, and its article stay pending without a reason.
    Checking it only where downloader middlewares run (before robots.txt is fetched for that host) turns the
    refusal into an IgnoreRequest for the errback, with a message naming both ends of a redirect.
    """

    def request_scheduled(self, request: Request, spider: Spider) -> None:
        return None

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        try:
            super().process_request(request)
        except IgnoreRequest:
            origin = (request.meta.get("redirect_urls") or [None])[0]
            if origin:
                raise IgnoreRequest(f"redirect from {origin} to off-site {request.url} not followed") from None
            raise IgnoreRequest(f"off-site request to {request.url} refused") from None


class SourceRequestFingerprinter(RequestFingerprinter):
    """Scrapy's fingerprints, per source, purpose and redirect hop: two columns of one crawl that list the same
    article each get it, a seed article read for discovery is still fetched as an article, and a redirect
    loop ends in RedirectMiddleware's "max redirections" (recorded) rather than silently in the dupefilter."""

    def fingerprint(self, request: Request) -> bytes:
        base = super().fingerprint(request)
        source = request.meta.get("source")
        if source is None:
            return base
        purpose = getattr(request.callback, "__name__", "")
        hops = len(request.meta.get("redirect_urls") or ())
        return hashlib.sha1(base + f"{source}\0{purpose}\0{hops}".encode(), usedforsecurity=False).digest()


# Failures of the network, not of our code: one log line with the reason, no traceback.
NETWORK_ERRORS = (CannotResolveHostError, DownloadConnectionRefusedError, DownloadTimeoutError, DownloadFailedError,
                  ResponseDataLossError, DNSLookupError, ConnectError, TCPTimedOutError, TimeoutError,
                  ResponseNeverReceived, ConnectionLost)


class OneLineNetworkErrors(logging.Filter):
    """Scrapy's robots.txt middleware logs an unreachable host with a traceback; keep its one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], NETWORK_ERRORS):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_network_tracebacks() -> None:
    log = logging.getLogger("scrapy.downloadermiddlewares.robotstxt")
    if not any(isinstance(f, OneLineNetworkErrors) for f in log.filters):
        log.addFilter(OneLineNetworkErrors())


class DelayAfterResponse:
    """Count ``DOWNLOAD_DELAY`` from the end of the previous response of a host, not from its dequeueing.

    Scrapy spaces the moments its downloader takes requests off a host's queue. When the event loop is
    busy (parsing, storing) a request can go out late while the next one leaves on time, and the host then
    sees two requests closer than the delay. With one request in flight per host, restarting the clock
    when a response has arrived makes every gap the host sees at least the delay, whatever the loop does.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> DelayAfterResponse:
        if not crawler.settings.getfloat("DOWNLOAD_DELAY"):
            raise NotConfigured("no download delay")
        ext = cls(crawler)
        crawler.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        return ext

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        downloader = self.crawler.engine.downloader
        slot = downloader.slots.get(downloader.get_slot_key(request))
        if slot is not None:
            slot.lastseen = time.monotonic()
