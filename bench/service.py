#!/usr/bin/env python3
"""Benchmark the service: resident memory and CPU per idle run of ``python scheduler.py``.

The service runs against a synthetic 1,000-article VSB column on 127.0.0.1 (the replica server, in this
process, counting requests) with ``schedule = "2s"`` and CRAWL_DELAY=0: first the backfill (and its
publish), then 20 quick scheduled runs that find nothing new.

Process tree (crawler/runner.py): the service forks nothing itself; multiprocessing starts a *forkserver*
(with Scrapy preloaded) and a *resource tracker* as its children, and each crawl is a child of the
forkserver, which reaps it. So CPU is read from /proc as ``utime + stime`` of every live process of the
tree plus ``cutime + cstime`` (children waited for) of each: the crawls' CPU lands in the forkserver's
``cutime + cstime`` when they exit. Readings are taken when no crawl is running. Memory: RSS of the
service process and of the forkserver, and the peak RSS (VmHWM, sampled every 20 ms) of each crawl child.

Baselines, measured in the same run after the service stopped, against the same database and server:
``python -c "import scrapy"`` and a plain ``scrapy crawl column`` subprocess doing the same idle poll.
Targets: service under 150 MB resident (crawl children too); an idle run costs under 0.5 s of CPU.

    .venv/bin/python bench/service.py [--articles 1000] [--runs 20] [--keep] [--strict]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    ROOT,
    BenchSite,
    Traffic,
    TreeSampler,
    cmdline,
    descendants,
    mib,
    proc_stat,
    pss,
    served_synthetic_column,
    stop_group,
)

TARGET_RSS = 150 * 2**20
TARGET_CPU = 0.5
SOURCE = "bench"


@dataclass
class TreeCpu:
    """CPU seconds of a process tree at one instant, split by role."""

    service: float
    forkserver: float  # the forkserver process itself
    crawls: float  # crawl children: reaped ones (forkserver's cutime+cstime) + live ones
    other: float  # resource tracker and anything else
    at: float

    @property
    def total(self) -> float:
        return self.service + self.forkserver + self.crawls + self.other


def tree_cpu(root: int) -> TreeCpu:
    service = proc_stat(root)
    if service is None:
        raise RuntimeError("the service process is gone")
    forkserver = crawls = other = 0.0
    for pid in descendants(root):
        st = proc_stat(pid)
        if st is None:
            continue
        if st.ppid == root and "forkserver" in cmdline(pid):
            forkserver += st.cpu
            crawls += st.children_cpu
        elif st.ppid != root:  # a crawl child still running (children of the forkserver)
            crawls += st.cpu + st.children_cpu
        else:
            other += st.cpu + st.children_cpu
    return TreeCpu(service.cpu + service.children_cpu, forkserver, crawls, other, time.monotonic())


def crawl_children(root: int) -> list[int]:
    return [pid for pid in descendants(root) if (st := proc_stat(pid)) is not None and st.ppid != root]


class Db:
    """Read-only look at the service's SQLite database (WAL: readers never block the writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def runs(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)) as conn:
                conn.row_factory = sqlite3.Row
                return [dict(r) for r in conn.execute("SELECT * FROM crawl_runs ORDER BY id")]
        except sqlite3.OperationalError:  # schema not created yet
            return []


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# ---------------------------------------------------------------- the bench
class ServiceBench:
    def __init__(self, args: argparse.Namespace, site: BenchSite) -> None:
        self.args = args
        self.tmp = site.tmp
        self.procs = site.procs
        self.server = site.server
        self.db = Db(site.tmp / "ghu.db")
        self.sources = site.write_sources(SOURCE, schedule="2s")
        self.env = site.env(self.db.path, self.sources, HTTP_HOST="127.0.0.1", HTTP_PORT=str(free_port()),
                            CRAWL_TIMEOUT="240")

    def finished(self) -> list[dict[str, Any]]:
        return [r for r in self.db.runs() if r["status"] != "running"]

    def quiescent(self, pid: int) -> bool:
        """No crawl child alive and no run recorded as running."""
        return not crawl_children(pid) and all(r["status"] != "running" for r in self.db.runs())

    def run_service(self) -> dict[str, Any]:
        a = self.args
        log = open(self.tmp / "service.log", "wb")  # noqa: SIM115 - closed below
        proc = self.procs.popen([sys.executable, "scheduler.py"], cwd=ROOT, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        out: dict[str, Any] = {"pid": proc.pid}
        try:
            self.server.take()
            t0 = time.monotonic()
            backfill = wait_until(lambda: self.finished(), a.timeout, "the backfill run")[0]
            if backfill["status"] != "ok" or backfill["new"] < a.articles:
                raise RuntimeError(f"backfill run: {backfill}")
            feed = self.tmp / "feeds" / f"{SOURCE}.xml"
            wait_until(lambda: feed.exists() and self.quiescent(proc.pid), a.timeout, "the first publish")
            out["backfill_s"] = time.monotonic() - t0
            out["backfill_traffic"] = Traffic.of(self.server.take())
            out["rss_after_backfill"] = proc_stat(proc.pid).rss  # type: ignore[union-attr]
            first_idle = backfill["id"]

            def idle_runs() -> list[dict[str, Any]]:
                return [r for r in self.finished() if r["id"] > first_idle]

            def between_runs(wanted: int) -> tuple[list[dict[str, Any]], TreeCpu] | None:
                """The idle runs so far and the tree's CPU, read while no crawl runs (checked after too)."""
                if proc.poll() is not None:
                    raise RuntimeError(f"the service exited with {proc.returncode}")
                runs = idle_runs()
                if len(runs) < wanted or not self.quiescent(proc.pid):
                    return None
                cpu = tree_cpu(proc.pid)
                if not self.quiescent(proc.pid) or len(idle_runs()) != len(runs):
                    return None
                return runs, cpu

            skipped, start_cpu = wait_until(lambda: between_runs(0), a.timeout, "a pause between runs", 0.01)
            runs, end_cpu = wait_until(lambda: between_runs(len(skipped) + a.runs), a.timeout + 10 * a.runs,
                                       f"{a.runs} idle runs", interval=0.01)
            idle = runs[len(skipped):]
            out["idle_traffic"] = Traffic.of(self.server.take())
            out["idle_runs"] = idle
            out["cpu"] = (start_cpu, end_cpu)
            out["rss_end"] = proc_stat(proc.pid).rss  # type: ignore[union-attr]
            tree = [proc.pid, *descendants(proc.pid)]
            out["tree_rss"] = sum(st.rss for pid in tree if (st := proc_stat(pid)))
            out["tree_pss"] = sum(pss(pid) or 0 for pid in tree)
            out["forkserver_rss"] = max((st.rss for pid in descendants(proc.pid)
                                         if (st := proc_stat(pid)) and "forkserver" in cmdline(pid)), default=0)
        finally:
            sampler.stop()
            code = stop_group(proc, grace=15)
            self.procs.procs.remove(proc)
            log.close()
            out["exit"] = code
        out["peaks"] = sampler
        return out

    def baseline(self, cmd: list[str], repeat: int) -> tuple[float, float, int, Traffic]:
        """Median wall and CPU seconds, max peak RSS and the traffic of ``cmd`` run ``repeat`` times."""
        walls, cpus, peak = [], [], 0
        self.server.take()
        for _ in range(repeat):
            cpu0, t0 = child_cpu(), time.monotonic()
            proc = self.procs.popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            sampler = TreeSampler(proc.pid, interval=0.01)
            sampler.start()
            try:
                _, err = proc.communicate(timeout=self.args.timeout)
            finally:
                sampler.stop()
                self.procs.procs.remove(proc)
            walls.append(time.monotonic() - t0)
            cpus.append(child_cpu() - cpu0)
            peak = max(peak, *sampler.peaks.values(), 0)
            if proc.returncode != 0:
                raise RuntimeError(f"{cmd}: exit {proc.returncode}\n{err[-2000:]}")
        return statistics.median(walls), statistics.median(cpus), peak, Traffic.of(self.server.take())


def run(args: argparse.Namespace) -> int:
    with served_synthetic_column(args.articles, "service", args.keep) as site:
        bench = ServiceBench(args, site)
        print(f"column: {args.articles} articles at {site.server.base}; service: python scheduler.py, "
              f"schedule 2s, CRAWL_DELAY=0, SQLite WAL; {os.cpu_count()} CPUs")
        result = bench.run_service()
        crawl = [sys.executable, "-m", "scrapy", "crawl", "column", "-a", f"source={SOURCE}"]
        base_import = bench.baseline([sys.executable, "-c", "import scrapy"], 3)
        base_crawl = bench.baseline(crawl, 3)
        ok = report(result, base_import, base_crawl, site.tmp)
        return 0 if ok or not args.strict else 1


Baseline = tuple[float, float, int, Traffic]


def report(r: dict[str, Any], base_import: Baseline, base_crawl: Baseline, tmp: Path) -> bool:
    """Print the figures; True when every target is met."""
    pid: int = r["pid"]
    sampler: TreeSampler = r["peaks"]
    start, end = r["cpu"]
    runs: list[dict[str, Any]] = r["idle_runs"]
    n = len(runs)
    # classify the sampled processes: the service, its direct children, the crawl children
    service_peak = sampler.peaks.get(pid, 0)
    direct = {p for p, pp in sampler.parents.items() if pp == pid}
    crawl_pids = sorted((p for p, pp in sampler.parents.items() if pp in direct), key=sampler.first_seen.get)
    crawl_peaks = [sampler.peaks[p] for p in crawl_pids]
    backfill_peak = crawl_peaks[0] if crawl_peaks else 0
    idle_peak = max(crawl_peaks[1:], default=0)
    per_run = (end.total - start.total) / n
    lifetimes = [sampler.last_seen[p] - sampler.first_seen[p] for p in crawl_pids[1:]]
    ok = [x for x in runs if x["status"] == "ok"]
    changed = [x for x in runs if x["new"] or x["updated"] or x["removed"]]
    print()
    print(f"backfill: {r['backfill_traffic'].describe()}; run + publish done {r['backfill_s']:.1f} s after start, "
          f"{start.total:.2f} s of CPU for the tree so far (service start, backfill crawl, publish)")
    print(f"idle runs: {n} ({len(ok)} ok, {len(changed)} with changes), {r['idle_traffic'].requests / n:.1f} "
          f"requests and {r['idle_traffic'].ok_responses / n:.1f} × 200 per run; crawl child lifetime median "
          f"{statistics.median(lifetimes) if lifetimes else 0:.2f} s (sampled every 20 ms)")
    print()
    print("memory (RSS)")
    print(f"  service process:        {mib(r['rss_after_backfill'])} after backfill + publish, {mib(r['rss_end'])} "
          f"after the idle runs, peak {mib(service_peak)}")
    print(f"  forkserver:             {mib(r['forkserver_rss'])} (Scrapy preloaded; crawls are forked from it "
          "and share its pages copy-on-write)")
    print(f"  crawl child, backfill:  peak {mib(backfill_peak)}")
    print(f"  crawl child, idle runs: peak {mib(idle_peak)} (max over {len(crawl_pids) - 1} children)")
    print(f"  whole tree after the idle runs: {mib(r['tree_rss'])} RSS summed, {mib(r['tree_pss'])} PSS "
          "(shared pages counted once)")
    print(f"  baseline `scrapy crawl column` idle poll, plain subprocess: peak {mib(base_crawl[2])}; "
          f"`python -c 'import scrapy'`: peak {mib(base_import[2])}")
    print()
    print(f"CPU per idle run (over {n} runs, {end.at - start.at:.1f} s)")
    print(f"  service process:  {(end.service - start.service) / n * 1000:7.1f} ms")
    print(f"  forkserver:       {(end.forkserver - start.forkserver) / n * 1000:7.1f} ms")
    print(f"  crawl children:   {(end.crawls - start.crawls) / n * 1000:7.1f} ms")
    print(f"  other:            {(end.other - start.other) / n * 1000:7.1f} ms (resource tracker)")
    print(f"  total:            {per_run * 1000:7.1f} ms")
    print(f"  baseline plain `scrapy crawl column` subprocess, same idle poll: {base_crawl[1] * 1000:7.1f} ms CPU, "
          f"{base_crawl[0]:.2f} s wall (median of 3; {base_crawl[3].requests / 3:.1f} requests, "
          f"{base_crawl[3].ok_responses} × 200 per run)")
    print(f"  baseline `python -c 'import scrapy'`:                           {base_import[1] * 1000:7.1f} ms CPU, "
          f"{base_import[0]:.2f} s wall (median of 3)")
    print(f"  idle run / plain subprocess = {per_run / base_crawl[1]:.0%}")
    print()
    rss_ok = max(r["rss_after_backfill"], r["rss_end"], service_peak) < TARGET_RSS
    child_ok = max(backfill_peak, idle_peak) < TARGET_RSS
    cpu_ok = per_run < TARGET_CPU
    print(f"service RSS peak {mib(service_peak)} < 150 MB: {'PASS' if rss_ok else 'FAIL'}; crawl child peak "
          f"{mib(max(backfill_peak, idle_peak))} < 150 MB: {'PASS' if child_ok else 'FAIL'}")
    print(f"CPU per idle run {per_run:.3f} s < {TARGET_CPU} s: {'PASS' if cpu_ok else 'FAIL'}")
    if r["exit"] not in (0, None):
        print(f"note: the service exited with {r['exit']} on SIGTERM (log: {tmp / 'service.log'})")
    return rss_ok and child_ok and cpu_ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--articles", type=int, default=1000, help="articles in the synthetic column (default 1000)")
    p.add_argument("--runs", type=int, default=20, help="idle runs to measure after the backfill (default 20)")
    p.add_argument("--timeout", type=float, default=240, help="seconds the backfill (or a baseline) may take")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: subprocesses and servers are already stopped
        print(f"interrupted ({exc or 'Ctrl-C'})", file=sys.stderr)
        sys.exit(130)
