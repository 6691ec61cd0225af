"""Outage: the source down for many consecutive scheduled runs, then back.

The service must keep serving the last good feeds, lose nothing, keep its schedule (no growing backoff
between runs), turn /healthz to 503 once the last success is older than the limit, and recover by itself.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from pathlib import Path
from typing import Any

import feedparser
import pytest
from scrapy import Request, Spider
from scrapy.http import HtmlResponse
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from crawler import middlewares
from crawler.middlewares import MAX_BACKOFF, BackoffRetryMiddleware
from tests.fixtures.faulty import FaultyServer, all_urls, assert_feeds_valid
from tests.fixtures.project import project_env, runs, write_sources
from tests.fixtures.service import Service, free_port, wait_for

SCHEDULE_SECONDS = 2
HEALTH_MAX_AGE_SECONDS = 5
OUTAGE_RUNS = 5


def _titles(service: Service) -> int:
    code, _, body = service.get("/dxgzdt.xml")
    return len(feedparser.parse(body).entries) if code == 200 else 0


@pytest.mark.slow
def test_source_down_for_many_runs_then_back(replica_build: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = replica_build
    port = free_port()
    sources = write_sources(tmp_path / "sources.toml", {
        "name": "dxgzdt", "title": "党校工作动态", "list_url": f"http://127.0.0.1:{port}/dxgz/dxgzdt.htm",
        "schedule": f"{SCHEDULE_SECONDS}s"})
    env = project_env(f"sqlite:///{tmp_path / 'ghu.db'}", sources, tmp_path / "feeds", HTTP_PORT=free_port(),
                      HEALTH_MAX_AGE_SECONDS=HEALTH_MAX_AGE_SECONDS, DOWNLOAD_TIMEOUT=2)
    db = env["DATABASE_URL"]
    site = FaultyServer(root, port=port).start()
    service = Service(env, tmp_path / "service.log")
    try:
        wait_for(lambda: _titles(service) == 46, 90, "the first feed")
        assert service.health()[0] == 200
        site.stop()  # connection refused from now on
        last_ok = max(r.id for r in runs(db) if r.status == "ok")
        failed = wait_for(lambda: len([r for r in runs(db) if r.id > last_ok and r.status == "failed"])
                          >= OUTAGE_RUNS and [r for r in runs(db) if r.id > last_ok and r.status == "failed"],
                          90, f"{OUTAGE_RUNS} failed runs")
        code, body = wait_for(lambda: service.health()[0] == 503 and service.health(), 30, "/healthz 503")
        assert body["status"] == "stale" and body["sources"]["dxgzdt"]["last_result"] == "failed"
        assert body["sources"]["dxgzdt"]["articles"] == 46
        # nothing lost, last good feeds still served
        assert _titles(service) == 46
        assert len(all_urls(db)) == 46
        assert_feeds_valid(tmp_path / "feeds")
        # the schedule holds: failed runs are short and keep coming every interval, no growing backoff
        starts = [r.started_at for r in failed]
        gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
        assert max(gaps) <= 3 * SCHEDULE_SECONDS + 1, gaps
        assert all((r.finished_at - r.started_at).total_seconds() <= 10 for r in failed)
        assert all("unreachable" in (r.error or "") for r in failed), [r.error for r in failed]
        assert service.proc.poll() is None

        site = FaultyServer(root, port=port).start()  # the source is back
        wait_for(lambda: runs(db)[-1].status == "ok" and service.health()[0] == 200, 60, "recovery")
        code, body = service.health()
        assert body["status"] == "ok" and body["sources"]["dxgzdt"]["last_result"] == "ok"
        urls = all_urls(db)
        assert len(urls) == len(set(urls)) == 46
        assert _titles(service) == 46
    finally:
        code, _seconds = service.stop()
        site.stop()
    assert code == 0, service.log()[-3000:]


# ---------------------------------------------------------------- retry backoff is capped
def _middleware(base: float) -> BackoffRetryMiddleware:
    return BackoffRetryMiddleware(Settings({"RETRY_ENABLED": True, "RETRY_TIMES": 2, "RETRY_BACKOFF_BASE": base,
                                            "RETRY_HTTP_CODES": [503]}))


def _slept(monkeypatch: pytest.MonkeyPatch, mw: BackoffRetryMiddleware, request: Request) -> list[float]:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(middlewares.asyncio, "sleep", fake_sleep)
    asyncio.run(mw.process_request(request))
    return slept


@pytest.mark.parametrize(("retries", "retry_after", "expected"), [
    (1, None, 1.0), (2, None, 2.0), (3, None, 4.0), (12, None, MAX_BACKOFF),  # doubling, then the cap
    (1, 30.0, 30.0),  # Retry-After honoured
    (1, 86400.0, MAX_BACKOFF),  # ... but never a day
])
def test_retry_backoff_doubles_and_is_capped(monkeypatch: pytest.MonkeyPatch, retries: int,
                                             retry_after: float | None, expected: float) -> None:
    meta: dict[str, Any] = {"retry_times": retries}
    if retry_after is not None:
        meta["retry_after"] = retry_after
    assert _slept(monkeypatch, _middleware(1.0), Request("http://127.0.0.1/x", meta=meta)) == [expected]


def test_retry_after_from_a_503_is_carried_to_the_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    crawler = get_crawler(Spider, {"RETRY_BACKOFF_BASE": 1.0, "RETRY_HTTP_CODES": [503]})
    crawler.spider = crawler._create_spider("faults")
    mw = BackoffRetryMiddleware.from_crawler(crawler)
    request = Request("http://127.0.0.1/x")
    far = email.utils.formatdate(time.time() + 7 * 86400, usegmt=True)
    response = HtmlResponse("http://127.0.0.1/x", status=503, headers={"Retry-After": far}, request=request)
    retry = mw.process_response(request, response)
    assert isinstance(retry, Request) and retry is not request
    assert retry.meta["retry_after"] > 86400
    assert _slept(monkeypatch, mw, retry) == [MAX_BACKOFF]


def test_no_backoff_when_crawl_delay_is_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    request = Request("http://127.0.0.1/x", meta={"retry_times": 2, "retry_after": 3600.0})
    assert _slept(monkeypatch, _middleware(0.0), request) == []
