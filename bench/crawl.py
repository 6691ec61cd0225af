#!/usr/bin/env python3
"""Benchmark the crawler: backfill speed and idle-poll cost against a 1,000-article VSB column on 127.0.0.1.

Measured in one run, against one server for all: the tests' replica server (tests/fixtures/site.py, a
ThreadingHTTPServer in this process) counting bytes per response, with TCP_NODELAY and a listen backlog of
128 -- as shipped it stalls ~40 ms per keep-alive response (Nagle + delayed ACK) and drops SYNs of 16
simultaneous connections (backlog 5, retried after 1 s), which made it, not the client, the limit:

  (a) backfill   a real ``scrapy crawl column -a source=bench`` subprocess, CRAWL_DELAY=0, fresh SQLite DB
  (b) idle poll  the same command again at once: requests and bytes on the server's log; also the
                 project crawl's start-up cost (imports, settings, database, one 304)
  (c) naive      what a crawler without conditional requests pays per poll: every list page and every
                 article page fetched again (a Scrapy spider with a no-op callback)
  (d) bare fetch the limit: the same 1,000 article URLs fetched by Scrapy with the project's settings
                 (same downloader, concurrency and middlewares), a no-op callback, no parsing, no storage
  (e) bare start the same no-op fetcher with no URL: its start-up cost

CPU is user + system time of the subprocess and its children (resource usage of reaped children). The
target compares **CPU per stored article** with start-up excluded: (backfill − idle poll) / articles
against (bare fetch − bare start) / articles, medians over ``--repeat`` runs; target ≤ 2×. Wall-clock
rates (Scrapy's ``elapsed_time_seconds``) are printed for information only.
Targets: CPU per article ≤ 2× the bare fetch's; idle poll ≤ 2 requests and no 200 body.
``-s NAME=VALUE`` passes Scrapy settings to the two project crawls (to compare); ``--profile FILE`` runs the
extra backfill under cProfile and prints where its time went in the project's own code.

    .venv/bin/python bench/crawl.py [--articles 1000] [--repeat 3] [-s NAME=VALUE] [--profile FILE] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    ROOT,
    BenchSite,
    Traffic,
    human_bytes,
    served_synthetic_column,
)

TARGET_CPU_RATIO = 2.0
TARGET_IDLE_REQUESTS = 2
SOURCE = "bench"
ELAPSED_RE = re.compile(r"'elapsed_time_seconds':\s*([\d.]+)")


@dataclass
class Measure:
    """One subprocess run: wall clock, Scrapy's elapsed time, the traffic the server saw."""

    label: str
    wall: float
    elapsed: float
    cpu: float  # user + system seconds of the subprocess
    server_cpu: float  # user + system seconds of this process (the replica server's threads) meanwhile
    traffic: Traffic
    items: int

    @property
    def rate(self) -> float:
        return self.items / self.elapsed if self.elapsed else 0.0


# ---------------------------------------------------------------- the no-op fetcher (a child process)
def fetch_child(url_file: str) -> int:
    """Fetch every URL in ``url_file`` with Scrapy and the project's settings; no parsing, no storage."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "settings")
    import scrapy
    from scrapy.crawler import CrawlerProcess
    from scrapy.utils.project import get_project_settings

    urls = Path(url_file).read_text(encoding="utf-8").split()

    class NoopSpider(scrapy.Spider):
        name = "bench-noop"

        async def start(self) -> Any:
            for url in urls:
                yield scrapy.Request(url, callback=self.noop, dont_filter=True)

        def noop(self, response: Any) -> None:
            return None

    settings = get_project_settings()
    settings.set("ITEM_PIPELINES", {}, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(NoopSpider)
    process.crawl(crawler)
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    print(json.dumps({"elapsed": stats.get("elapsed_time_seconds", 0.0),
                      "responses": stats.get("response_received_count", 0)}), flush=True)
    return 0


# ---------------------------------------------------------------- the bench
class CrawlBench:
    def __init__(self, args: argparse.Namespace, site: BenchSite) -> None:
        self.args = args
        self.tmp = site.tmp
        self.procs = site.procs
        self.server = site.server
        self.site = site
        self.sources = site.write_sources(SOURCE)

    def env(self, db: Path) -> dict[str, str]:
        return self.site.env(db, self.sources)

    def crawl(self, label: str, db: Path, items: int, profile: str | None = None) -> Measure:
        """One ``scrapy crawl column`` subprocess, as the README runs it."""
        profiler = ["-m", "cProfile", "-o", profile] if profile else []
        cmd = [sys.executable, *profiler, "-m", "scrapy", "crawl", "column", "-a", f"source={SOURCE}"]
        for setting in self.args.set:
            cmd += ["-s", setting]
        self.server.take()
        cpu0, server0, started = child_cpu(), self_cpu(), time.monotonic()
        result = self.procs.run(cmd, timeout=self.args.timeout, cwd=ROOT, env=self.env(db))
        wall, cpu, server = time.monotonic() - started, child_cpu() - cpu0, self_cpu() - server0
        traffic = Traffic.of(self.server.take())
        if result.returncode != 0:
            raise RuntimeError(f"{label}: scrapy crawl exited {result.returncode}:\n{result.stderr[-3000:]}")
        run = last_run(db)
        if run["status"] != "ok":
            raise RuntimeError(f"{label}: crawl run {run}")
        match = ELAPSED_RE.search(result.stderr)
        return Measure(label, wall, float(match.group(1)) if match else wall, cpu, server, traffic, items)

    def fetch(self, label: str, urls: list[str]) -> Measure:
        """The no-op Scrapy spider over ``urls`` (a child process with the same settings)."""
        url_file = self.tmp / f"{label}.urls"
        url_file.write_text("\n".join(urls), encoding="utf-8")
        self.server.take()
        cpu0, server0, started = child_cpu(), self_cpu(), time.monotonic()
        result = self.procs.run([sys.executable, str(Path(__file__).resolve()), "--_fetch", str(url_file)],
                                timeout=self.args.timeout, cwd=ROOT, env=self.env(self.tmp / "unused.db"))
        wall, cpu, server = time.monotonic() - started, child_cpu() - cpu0, self_cpu() - server0
        traffic = Traffic.of(self.server.take())
        if result.returncode != 0:
            raise RuntimeError(f"{label}: fetcher exited {result.returncode}:\n{result.stderr[-3000:]}")
        out = json.loads(result.stdout.strip().splitlines()[-1])
        if out["responses"] < len(urls) or (not urls and out["responses"]):
            raise RuntimeError(f"{label}: {out['responses']} responses for {len(urls)} URLs")
        return Measure(label, wall, float(out["elapsed"]), cpu, server, traffic, len(urls))


def child_cpu() -> float:
    """user + system seconds of this process's finished children (and theirs)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def last_run(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM crawl_runs ORDER BY id DESC LIMIT 1").fetchone()
        return dict(row) if row else {}


def stored_articles(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM articles WHERE status = 'ok'").fetchone()[0])


def cpu_per_article(runs: list[Measure], startups: list[Measure]) -> float:
    """Median CPU seconds of ``runs`` less the median of their start-up runs, per article."""
    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[(len(ordered) - 1) // 2]

    items = runs[0].items
    return (median([m.cpu for m in runs]) - median([m.cpu for m in startups])) / items if items else 0.0


def median_measure(runs: list[Measure]) -> Measure:
    """The run with the median elapsed time (so its traffic and wall clock belong to it)."""
    ordered = sorted(runs, key=lambda m: m.elapsed)
    return ordered[(len(ordered) - 1) // 2]


def run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    with served_synthetic_column(args.articles, "crawl", args.keep) as site:
        tmp, column, manifest, server = site.tmp, site.column, site.manifest, site.server
        pages = list(manifest["column"]["pages"])
        site_bytes = sum(f.stat().st_size for f in (tmp / "site").rglob("*") if f.is_file())
        base = server.base
        article_urls = [base + a["url"] for a in manifest["articles"] if not a["external"]]
        print(f"column: {len(article_urls)} articles ({column.images} images, {column.attachments} "
              f"attachments), {len(pages)} list pages, {human_bytes(site_bytes)} on disk, built in "
              f"{time.monotonic() - t0:.1f} s; server: the replica's ThreadingHTTPServer (HTTP/1.1 keep-alive, "
              f"TCP_NODELAY, backlog 128) in the bench process at {base}; {os.cpu_count()} CPUs")
        bench = CrawlBench(args, site)

        backfills: list[Measure] = []
        bares: list[Measure] = []
        idles: list[Measure] = []
        starts: list[Measure] = []
        db = tmp / "ghu.db"
        for _ in range(args.repeat):
            # alternate, so neither side always runs on a warmer machine
            bares.append(bench.fetch("bare", article_urls))
            starts.append(bench.fetch("bare start", []))
            for f in tmp.glob("ghu.db*"):
                f.unlink()
            backfills.append(bench.crawl("backfill", db, len(article_urls)))
            stored = stored_articles(db)
            if stored != len(article_urls):
                raise RuntimeError(f"backfill stored {stored} of {len(article_urls)} articles")
            idles.append(bench.crawl("idle poll", db, 0))
        if args.profile:  # one more, not counted: cProfile slows it down
            for f in tmp.glob("ghu.db*"):
                f.unlink()
            bench.crawl("profiled", db, len(article_urls), args.profile)
        naive = bench.fetch("naive", [base + p for p in pages] + article_urls)
    ok = report(median_measure(backfills), median_measure(bares), median_measure(idles), naive, backfills, bares,
                cpu_per_article(backfills, idles), cpu_per_article(bares, starts), median_measure(starts))
    if args.profile:
        print_profile(args.profile)
    return 0 if ok or not args.strict else 1


def print_profile(path: str, top: int = 15) -> None:
    """The project's own functions (and SQLAlchemy's session work) by cumulative time in the profile."""
    import pstats

    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    total = max(v[3] for v in stats.values())
    rows = [(ct, calls, f"{file.replace(str(ROOT) + '/', '')}:{name}")
            for (file, _line, name), (_cc, calls, _tt, ct, _callers) in stats.items()
            if file.startswith(str(ROOT)) and "/.venv/" not in file and "/bench/" not in file]
    print(f"\nprofile of an extra backfill ({path}; cProfile slows it, so compare shares): "
          f"{total:.2f} s in all")
    for ct, calls, where in sorted(rows, reverse=True)[:top]:
        print(f"  {ct:6.2f} s {ct / total:6.1%} {calls:>7} calls  {where}")


def report(backfill: Measure, bare: Measure, idle: Measure, naive: Measure, backfills: list[Measure],
           bares: list[Measure], crawl_cpu: float, bare_cpu: float, start: Measure) -> bool:
    """Print the figures; True when both targets are met. ``crawl_cpu``/``bare_cpu``: CPU seconds per article,
    start-up excluded."""
    print()
    print(f"{'run':<12} {'wall s':>7} {'crawl s':>8} {'art/s':>7} {'CPU s':>6} {'srv CPU':>8} {'requests':>9} "
          f"{'200':>5} {'wire':>10}  notes")
    rows = [(backfill, "scrapy crawl column: parse + store (median of runs)"),
            (bare, "Scrapy, same settings, no-op callback (median of runs)"),
            (idle, "scrapy crawl column again at once (median of runs)"),
            (naive, "every list + article page again, unconditional")]
    for m, note in rows:
        rate = f"{m.rate:7.1f}" if m.items else f"{'-':>7}"
        print(f"{m.label:<12} {m.wall:7.2f} {m.elapsed:8.2f} {rate} {m.cpu:6.2f} {m.server_cpu:8.2f} "
              f"{m.traffic.requests:>9} "
              f"{m.traffic.ok_responses:>5} {human_bytes(m.traffic.wire_bytes):>10}  {note}")
    if len(backfills) > 1:
        print(f"CPU s of the runs: backfill {', '.join(f'{m.cpu:.2f}' for m in backfills)}; bare fetch "
              f"{', '.join(f'{m.cpu:.2f}' for m in bares)}")
    print()
    print(f"(a) backfill:   {backfill.items} articles in {backfill.elapsed:.2f} s of crawl "
          f"({backfill.wall:.2f} s wall) = {backfill.rate:.1f} articles/s; {backfill.traffic.describe()}")
    print(f"(b) idle poll:  {idle.traffic.describe()}; {idle.elapsed:.2f} s of crawl, {idle.wall:.2f} s wall, "
          f"{idle.cpu:.2f} s CPU (the crawl's start-up)")
    print(f"(c) naive poll: {naive.traffic.describe()}; {naive.elapsed:.2f} s")
    print(f"(d) bare fetch: {bare.items} articles in {bare.elapsed:.2f} s ({bare.wall:.2f} s wall) = "
          f"{bare.rate:.1f} articles/s (wall-clock share of the backfill: "
          f"{backfill.rate / bare.rate if bare.rate else 0:.0%}, for information)")
    print(f"(e) bare start: the no-op fetcher without URLs: {start.cpu:.2f} s CPU, {start.wall:.2f} s wall")
    print(f"    CPU per article, start-up excluded: backfill {crawl_cpu * 1000:.2f} ms, bare fetch "
          f"{bare_cpu * 1000:.2f} ms (start-up included: {backfill.cpu / backfill.items * 1000:.2f} and "
          f"{bare.cpu / bare.items * 1000:.2f} ms); server: {backfill.server_cpu / backfill.elapsed:.0%} and "
          f"{bare.server_cpu / bare.elapsed:.0%} of a core")
    if idle.traffic.wire_bytes:
        print(f"    idle poll vs naive poll: {naive.traffic.requests / max(1, idle.traffic.requests):.0f}× fewer "
              f"requests, {naive.traffic.wire_bytes / idle.traffic.wire_bytes:.0f}× fewer bytes")
    ratio = crawl_cpu / bare_cpu if bare_cpu > 0 else float("inf")
    ok_cpu = ratio <= TARGET_CPU_RATIO
    ok_idle = idle.traffic.requests <= TARGET_IDLE_REQUESTS and idle.traffic.ok_responses == 0
    print()
    print(f"CPU per stored article / bare fetch's = {ratio:.2f}× (start-up excluded); target ≤ "
          f"{TARGET_CPU_RATIO:.0f}×: {'PASS' if ok_cpu else 'FAIL'}")
    print(f"idle poll: {idle.traffic.requests} requests, {idle.traffic.ok_responses} × 200; target ≤ "
          f"{TARGET_IDLE_REQUESTS} requests and no 200 body: {'PASS' if ok_idle else 'FAIL'}")
    return ok_cpu and ok_idle


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--articles", type=int, default=1000, help="articles in the synthetic column (default 1000)")
    p.add_argument("--repeat", type=int, default=3, help="backfill/bare-fetch rounds (default 3); medians")
    p.add_argument("--timeout", type=float, default=240, help="seconds any one subprocess may take")
    p.add_argument("--profile", help="run one more backfill under cProfile, write the profile to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    p.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a Scrapy setting for the backfill and idle crawls (scrapy crawl -s), e.g. to compare")
    p.add_argument("--_fetch", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._fetch:
        return fetch_child(args._fetch)
    return run(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: subprocesses and servers are already stopped
        print(f"interrupted ({exc or 'Ctrl-C'})", file=sys.stderr)
        sys.exit(130)
