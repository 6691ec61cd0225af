"""CRAWL_BACKEND=scrapyd: crawl each shard of due sources as one job on a Scrapyd node.

Sharding is by host with rendezvous hashing (crawler/hashing.py): every host has a home node, so while the
cluster is unchanged a host is always crawled from the same node, and the dispatcher, which never hands out
a busy host, keeps it to one node at a time; Scrapy's per-host slot inside that job keeps the delay. A node
that is down or refuses the job passes the shard to the next node in the host's hash order (logged).

The scheduler creates the run rows, as the local backend does, and passes their ids (``runs=``) and the
sources themselves (``source_tables=``, JSON of the [[source]] tables) to the spider, so nodes need no copy
of sources.toml. The job is followed with status.json; past CRAWL_TIMEOUT (or when the service stops) it is
cancelled with cancel.json, first INT (Scrapy's clean shutdown), then KILL. A job the node no longer knows
(it restarted) or a node that stays unreachable is a failed run for every source still 'running'.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from crawler.hashing import rank
from crawler.runner import CrawlOutcome, begin_runs, settle_runs
from crawler.scrapyd_client import ScrapydClient, ScrapydError
from crawler.shards import by_host, host_of, split_by_host
from crawler.sources import Source
from settings import AppConfig

logger = logging.getLogger(__name__)

SPIDER = "column"
MAX_TABLES_BYTES = 96 * 1024  # Scrapyd passes spider arguments on the crawl's command line (MAX_ARG_STRLEN 128 KiB)


class JobCounter:
    """Crawl jobs by node and result since this process started, for /metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, node: str, result: str) -> None:
        with self._lock:
            self._counts[(node, result)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def prometheus(self) -> str:
        lines = ["# HELP ghu_crawl_jobs_total Crawl jobs by node and result (since the service started).",
                 "# TYPE ghu_crawl_jobs_total counter"]
        for (node, result), n in sorted(self.snapshot().items()):
            lines.append(f'ghu_crawl_jobs_total{{node="{_label(node)}",result="{_label(result)}"}} {n}')
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def source_table(src: Source) -> dict[str, Any]:
    """A [[source]] table as in sources.toml (crawler.sources.source_from_table reads it back)."""
    table: dict[str, Any] = {"name": src.name, "title": src.title}
    for key in ("list_url", "seed_url", "column"):
        if getattr(src, key):
            table[key] = getattr(src, key)
    selectors = {k: v for k, v in vars(src.selectors).items() if v is not None}
    if selectors:
        table["selectors"] = selectors
    if src.extra_domains:
        table["domains"] = list(src.extra_domains)
    return table


def _parts_for_args(sources: list[Source]) -> int:
    """Shards needed so each job's ``-a source_tables=…`` stays under Linux's 128 KiB per argument."""
    size = sum(len(json.dumps(source_table(s), ensure_ascii=False).encode()) + 2 for s in sources)
    return -(-size // MAX_TABLES_BYTES)


class ScrapydBackend:
    name = "scrapyd"

    def __init__(self, cfg: AppConfig, factory: sessionmaker[Session], *, poll: float = 1.0,
                 grace: float = 10.0, unreachable_grace: float = 15.0, jobs: JobCounter | None = None) -> None:
        self.cfg = cfg
        self.factory = factory
        self.poll = poll
        self.grace = grace  # after a cancel: how long until KILL, then until we stop waiting
        self.unreachable_grace = unreachable_grace  # a node silent this long while it runs our job: failed
        self.clients = {url: ScrapydClient(url, cfg.SCRAPYD_PROJECT, cfg.SCRAPYD_USERNAME, cfg.SCRAPYD_PASSWORD)
                        for url in cfg.SCRAPYD_URLS}
        self.jobs = jobs or JobCounter()

    # -- sharding

    def metrics(self) -> str:
        return self.jobs.prometheus()

    def node_order(self, shard: list[Source]) -> list[str]:
        """The shard's nodes in hash order of its first host (all its hosts share the home node)."""
        return rank(list(self.clients), host_of(shard[0]))

    def shards(self, sources: list[Source], slots: int) -> list[list[Source]]:
        """Every source, grouped by its host's home node; a node's group split by host into its share of
        ``slots`` jobs (at least one), so each shard has one home node and a host is in one shard."""
        by_node: dict[str, list[Source]] = {}
        for host, group in by_host(sources).items():
            by_node.setdefault(rank(list(self.clients), host)[0], []).extend(group)
        if not by_node:
            return []
        per_node = max(1, slots // len(by_node))
        order = {src.name: i for i, src in enumerate(sources)}
        return [sorted(shard, key=lambda s: order[s.name])
                for url in self.clients if url in by_node
                for shard in split_by_host(by_node[url], max(per_node, _parts_for_args(by_node[url])))]

    # -- one job
    def run(self, shard: list[Source], stop: threading.Event) -> list[CrawlOutcome]:
        started = time.monotonic()
        if not shard:
            return []
        runs = begin_runs(self.factory, shard)
        names = ",".join(s.name for s in shard)
        args = {
            "sources": names,
            "runs": ",".join(f"{s.name}:{runs[s.name]}" for s in shard),
            "source_tables": json.dumps([source_table(s) for s in shard], ensure_ascii=False),
        }
        jobid = uuid.uuid4().hex
        node, reasons = None, []
        for url in self.node_order(shard):
            try:
                self.clients[url].schedule(SPIDER, jobid, args)
            except ScrapydError as exc:
                if exc.maybe_done:  # the node may have taken the job and answered too late
                    if self._knows(url, jobid):
                        node = url
                        break
                    self._cancel(self.clients[url], jobid, "KILL")  # best effort: never two nodes on one host
                reasons.append(str(exc))
                self.jobs.add(url, "refused")
                logger.warning("crawl %s: node %s did not take the job (%s); next node in hash order", names, url, exc)
                continue
            node = url
            break
        if node is None:
            reason = "no Scrapyd node took the job: " + "; ".join(reasons)
            logger.error("crawl %s: %s", names, reason)
            return settle_runs(self.factory, runs, reason, started)
        logger.info("crawl %s: job %s on %s", names, jobid, node)
        result, reason = self._follow(node, jobid, names, stop, started)
        outcomes = settle_runs(self.factory, runs, reason or f"crawl job {jobid} on {node} ended before recording "
                               "its result", started)
        if result == "finished":
            result = "ok" if all(o.status == "ok" for o in outcomes) else "failed"
        self.jobs.add(node, result)
        return outcomes

    def _follow(self, node: str, jobid: str, names: str, stop: threading.Event,
                started: float) -> tuple[str, str | None]:
        """Wait for the job to finish; return (result, failure reason for rows still running)."""
        client = self.clients[node]
        deadline = started + self.cfg.CRAWL_TIMEOUT
        cancelled_at: float | None = None
        killed = False
        why: str | None = None
        result = "finished"
        silent_since: float | None = None
        while True:
            try:
                state = client.status(jobid)
                silent_since = None
            except ScrapydError as exc:
                now = time.monotonic()
                silent_since = silent_since or now
                if now - silent_since > self.unreachable_grace:
                    logger.error("crawl %s: job %s: %s for %.0f s", names, jobid, exc, now - silent_since)
                    return "unreachable", f"node {node} unreachable while running crawl job {jobid}: {exc}"
                state = "unknown"
            if state == "finished":
                return result, why
            if state is None and cancelled_at is not None:
                return result, why  # cancelled while still pending: Scrapyd dropped it from its queue
            if state is None:
                logger.error("crawl %s: job %s vanished from node %s (node restarted?)", names, jobid, node)
                return "vanished", f"crawl job {jobid} vanished from node {node} (node restarted?)"
            now = time.monotonic()
            if cancelled_at is None and (stop.is_set() or now > deadline):
                if stop.is_set():
                    why, result = "service stopping", "cancelled"
                else:
                    why, result = f"timed out after {self.cfg.CRAWL_TIMEOUT:g} s (CRAWL_TIMEOUT)", "timeout"
                logger.warning("crawl %s: cancelling job %s on %s: %s", names, jobid, node, why)
                self._cancel(client, jobid, "INT")
                cancelled_at = now
            elif cancelled_at is not None and not killed and now > cancelled_at + self.grace:
                self._cancel(client, jobid, "KILL")
                killed = True
            elif killed and now > cancelled_at + 3 * self.grace:
                return result, why  # the node ignores us: stop waiting, the rows are failed below
            if stop.is_set():
                time.sleep(self.poll)
            else:
                stop.wait(self.poll)

    def _knows(self, url: str, jobid: str) -> bool:
        try:
            return self.clients[url].status(jobid) is not None
        except ScrapydError:
            return False

    @staticmethod
    def _cancel(client: ScrapydClient, jobid: str, signal: str) -> None:
        try:
            client.cancel(jobid, signal)
        except ScrapydError as exc:
            logger.warning("cancel of job %s failed: %s", jobid, exc)
