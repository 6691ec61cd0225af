#!/usr/bin/env python3
"""Benchmark many sources on many hosts: ``python scheduler.py --once`` over H hosts × C columns (issue 10).

Synthetic VSB columns (bench/common.py's generator, ``--articles`` each) are composed into one site
(tests/fixtures/hosts.py) and served by one request-logging server per loopback address 127.0.0.1 …
127.0.0.H, each its own host for Scrapy. ``sources.toml`` lists every column on every host. The project is
driven as operators drive it: ``python scheduler.py --once`` with DATABASE_URL, SOURCES_FILE, FEEDS_DIR,
CRAWL_DELAY (default 0.05 s) and, with ``--processes``, CRAWL_PROCESSES in its environment.

  (a) backfill   ``--once`` on an empty SQLite database: wall time of the process against the politeness
                 bound (the busiest host's request count × CRAWL_DELAY: no polite crawl can be faster);
                 target ratio <= 1.2. Politeness violations seen by the servers (a request sooner than the
                 delay after the previous one to its host, or while another to it is in flight): must be 0.
  (b) idle cycle ``--once`` again at once, nothing changed: CPU (user + sys of the whole process tree,
                 children included) per source, target <= 10 ms at 200 sources; requests per source and
                 robots.txt per host, target <= 1 and <= 1, no 200 body.
  (c) baseline   the same idle ``--once`` for a single source (what one process start costs), and with
                 ``--baseline-processes N`` the backfill again with CRAWL_PROCESSES=N (e.g. 1).
Memory: peak PSS (shared pages counted once) of the whole process tree, sampled from
/proc/PID/smaps_rollup every 0.1 s; target < 400 MB at 200 sources. CPU: this process becomes a child
subreaper, so crawl processes orphaned by an exiting ``--once`` are reaped here and counted too.

``--backend`` selects how crawls are started (``local``: CRAWL_PROCESSES child processes of the service;
``scrapyd``: ``--nodes`` Scrapyd nodes started with ``python scheduler.py node``, on a fresh PostgreSQL
database); a backend also says which processes besides the ``--once`` tree belong to the measurement
(the crawl nodes and their jobs).

    .venv/bin/python bench/scale.py [--hosts 20] [--columns 10] [--articles 50] [--delay 0.05]
                                    [--processes N] [--baseline-processes N] [--backend local|scrapyd]
                                    [--nodes N] [--strict]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    ROOT,
    Procs,
    cmdline,
    human_bytes,
    mib,
    proc_stat,
    pss,
    sigterm_as_interrupt,
    stop_group,
    synthetic_column,
)
from bench.service import TreeCpu, crawl_children, free_port, tree_cpu, wait_until  # noqa: E402
from tests.fixtures.hosts import (  # noqa: E402
    ColumnSpec,
    HostServer,
    TimedHit,
    build_columns,
    by_host,
    min_gap,
    politeness_violations,
    serve_hosts,
    span,
)

TARGET_BOUND_RATIO = 1.2
TARGET_IDLE_CPU_PER_SOURCE = 0.010
TARGET_PEAK_PSS = 400 * 2**20
PR_SET_CHILD_SUBREAPER = 36


# ---------------------------------------------------------------- measuring one --once
@dataclass
class RunMeasure:
    label: str
    wall: float
    cpu: float  # user + system seconds of every process of the tree (and of the backend's processes)
    peak_pss: int  # bytes, the highest sum over the tree at one sample
    peak_procs: int  # processes in the tree at that sample
    returncode: int
    peak_parts: list[tuple[str, int]] = field(default_factory=list)
    hits: list[TimedHit] = field(default_factory=list)
    log: str = ""


class PssSampler(threading.Thread):
    """Sums the PSS of this process's descendants (and of ``extra`` process trees) every ``interval`` s."""

    def __init__(self, extra: list[int], interval: float = 0.1) -> None:
        super().__init__(daemon=True, name="pss-sampler")
        self.extra, self.interval = extra, interval
        self.peak, self.peak_procs = 0, 0
        self.peak_parts: list[tuple[str, int]] = []  # (process, PSS) at the peak sample, largest first
        self.halt = threading.Event()

    def tree(self) -> list[int]:
        pids: set[int] = set()
        roots = [psutil.Process(), *(psutil.Process(p) for p in self.extra if psutil.pid_exists(p))]
        for root in roots:
            with contextlib.suppress(psutil.Error):
                pids.update(child.pid for child in root.children(recursive=True))
        pids.update(p for p in self.extra if psutil.pid_exists(p))
        pids.discard(os.getpid())
        return sorted(pids)

    def sample(self) -> None:
        pids = self.tree()
        parts = [(pid, pss(pid) or 0) for pid in pids]
        total = sum(size for _, size in parts)
        if total > self.peak:
            self.peak, self.peak_procs = total, len(pids)
            self.peak_parts = sorted(((role(pid), size) for pid, size in parts), key=lambda p: -p[1])

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.interval)

    def stop(self) -> None:
        self.halt.set()
        self.join(5)


def role(pid: int) -> str:
    """A short name for a process of the tree: scheduler.py, forkserver, crawl (a forkserver's child) …"""
    line = cmdline(pid)
    if "forkserver" in line:
        parent = proc_stat(pid)
        return "crawl" if parent is not None and "forkserver" in cmdline(parent.ppid) else "forkserver"
    if "resource_tracker" in line:
        return "resource tracker"
    return "scheduler.py" + (" --once" if "--once" in line else "") if "scheduler.py" in line else line[:40]


def children_cpu() -> float:
    """user + system seconds of the children (and their descendants) this process has reaped."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def reap_orphans(grace: float = 15.0, keep: list[int] | None = None) -> None:
    """Wait for the processes re-parented to this subreaper (e.g. a crawl process or forkserver the
    ``--once`` process left behind), so their CPU lands in RUSAGE_CHILDREN; kill them after ``grace`` s.
    ``keep``: the backend's own long-running processes (crawl nodes)."""
    kids = [p for p in psutil.Process().children() if p.pid not in (keep or [])]
    _gone, alive = psutil.wait_procs(kids, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


# ---------------------------------------------------------------- backends: how crawls are started
class Backend(Protocol):
    """How the project's crawls are started for the bench; ``local`` is the project's default."""

    name: str

    def env(self) -> dict[str, str]:
        """Extra environment for ``scheduler.py`` (e.g. CRAWL_BACKEND and the nodes' addresses)."""
        ...

    def processes(self) -> list[int]:
        """Processes outside the ``--once`` tree that do crawl work (their trees are measured too)."""
        ...

    def cpu(self) -> float:
        """Cumulative CPU seconds of those processes (0 for the local backend: all in the tree)."""
        ...

    def close(self) -> None: ...


class LocalBackend:
    """Crawls run as child processes of ``scheduler.py`` (CRAWL_PROCESSES of them at most)."""

    name = "local"

    def __init__(self, args: argparse.Namespace, procs: Procs, tmp: Path) -> None:
        self.processes_ = args.processes

    def env(self) -> dict[str, str]:
        return {"CRAWL_PROCESSES": str(self.processes_)} if self.processes_ else {}

    def processes(self) -> list[int]:
        return []

    def cpu(self) -> float:
        return 0.0

    def close(self) -> None:
        pass


class PgDatabase:
    """A throw-away PostgreSQL database on the test server (TEST_POSTGRES_URL, else 127.0.0.1:54329)."""

    def __init__(self) -> None:
        from sqlalchemy import create_engine, text

        admin_url = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:54329/postgres")
        self.name = f"ghu_bench_{os.getpid()}_{int(time.time())}"
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name

    def drop(self) -> None:
        from sqlalchemy import text

        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


class ScrapydBackend:
    """CRAWL_BACKEND=scrapyd: ``--nodes`` Scrapyd nodes started with ``python scheduler.py node`` on
    127.0.0.1, sharing a fresh PostgreSQL database with the scheduler (nodes can't share SQLite). The
    nodes and their crawl jobs are outside the ``--once`` tree: their CPU (the nodes' own and that of the
    jobs they reaped) and PSS are added."""

    name = "scrapyd"

    def __init__(self, args: argparse.Namespace, procs: Procs, tmp: Path) -> None:
        import json
        import socket
        import urllib.request

        if args.baseline_processes:
            raise SystemExit("--baseline-processes compares CRAWL_PROCESSES of the local backend only")
        self.processes_ = args.processes
        self.db = PgDatabase()
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SCRAPY_", "PUBLIC_URL", "CRAWL_"))}
        env.update({"DATABASE_URL": self.db.url, "CRAWL_DELAY": str(args.delay), "LOG_LEVEL": "INFO",
                    "PYTHONPATH": str(ROOT)})
        for i in range(args.nodes):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            with open(tmp / f"node{i}.log", "wb") as log:
                self.nodes.append(procs.popen([sys.executable, "scheduler.py", "node", "--port", str(port),
                                               "--dir", str(tmp / f"node{i}")], cwd=ROOT, env=env, stdout=log,
                                              stderr=subprocess.STDOUT))
            self.urls.append(f"http://127.0.0.1:{port}/")
        def up(url: str) -> bool:
            try:
                with urllib.request.urlopen(url + "daemonstatus.json", timeout=2) as resp:  # noqa: S310
                    return json.load(resp).get("status") == "ok"
            except (OSError, ValueError):
                return False

        deadline = time.monotonic() + 60
        for url, node in zip(self.urls, self.nodes, strict=True):
            while not up(url):
                if node.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"Scrapyd node {url} did not start (see {tmp}/node*.log, --keep)")
                time.sleep(0.2)

    def database_url(self) -> str:
        return self.db.url

    def env(self) -> dict[str, str]:
        env = {"CRAWL_BACKEND": "scrapyd", "SCRAPYD_URLS": ",".join(self.urls), "DATABASE_URL": self.db.url}
        if self.processes_:
            env["CRAWL_PROCESSES"] = str(self.processes_)
        return env

    def processes(self) -> list[int]:
        return [node.pid for node in self.nodes if node.poll() is None]

    def cpu(self) -> float:
        total = 0.0
        for pid in self.processes():
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def close(self) -> None:
        for node in self.nodes:
            stop_group(node)
        self.db.drop()


BACKENDS: dict[str, type] = {"local": LocalBackend, "scrapyd": ScrapydBackend}


# ---------------------------------------------------------------- the bench
@dataclass
class Layout:
    hosts: list[str]
    specs: list[ColumnSpec]
    sources: dict[str, tuple[str, ColumnSpec]]  # name -> (host, column)


def layout(n_hosts: int, n_columns: int, n_articles: int) -> Layout:
    if not 1 <= n_hosts <= 250:
        raise SystemExit("--hosts must be 1..250 (addresses 127.0.0.1 … 127.0.0.H)")
    hosts = [f"127.0.0.{i + 1}" for i in range(n_hosts)]
    specs = [ColumnSpec(f"c{j:03d}", f"栏目{j:03d}", 1100 + j, synthetic_column(n_articles, seed=20250620 + j).articles,
                        list_dir=f"lm{j:03d}") for j in range(n_columns)]
    sources = {f"h{i:03d}-{spec.slug}": (host, spec) for i, host in enumerate(hosts) for spec in specs}
    return Layout(hosts, specs, sources)


def write_sources(path: Path, lay: Layout, servers: dict[str, HostServer], names: list[str] | None = None,
                  schedule: str | None = None) -> Path:
    lines: list[str] = []
    for name in names or list(lay.sources):
        host, spec = lay.sources[name]
        lines += ["[[source]]", f'name = "{name}"', f'title = "{spec.column} ({host})"',
                  f'list_url = "{servers[host].base}{spec.list_path}"', f'column = "{spec.column}"',
                  *([f'schedule = "{schedule}"'] if schedule else []), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class ScaleBench:
    def __init__(self, args: argparse.Namespace, tmp: Path, servers: list[HostServer], lay: Layout,
                 procs: Procs, backend: Backend) -> None:
        self.args, self.tmp, self.lay, self.procs, self.backend = args, tmp, lay, procs, backend
        self.servers = {s.host: s for s in servers}
        self.all_sources = write_sources(tmp / "sources.toml", lay, self.servers)

    def env(self, db: Path, sources: Path, **extra: str) -> dict[str, str]:
        """SQLite at ``db``, unless the backend brings its own database (scrapyd: PostgreSQL)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SCRAPY_", "PUBLIC_URL", "CRAWL_"))}
        env.update({"DATABASE_URL": f"sqlite:///{db}", "SOURCES_FILE": str(sources),
                    "FEEDS_DIR": str(db.parent / "feeds"), "CRAWL_DELAY": str(self.args.delay),
                    "CRAWL_TIMEOUT": str(int(self.args.timeout)),
                    "LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT), **self.backend.env()})
        env.update(extra)
        return env

    def take(self) -> list[TimedHit]:
        return sorted((h for s in self.servers.values() for h in s.take()), key=lambda h: h.arrived)

    def once(self, label: str, env: dict[str, str]) -> RunMeasure:
        """``python scheduler.py --once``: wall time, tree CPU, peak tree PSS, the servers' request log."""
        self.take()
        log_path = self.tmp / f"{label.replace(' ', '-')}.log"
        sampler = PssSampler(self.backend.processes())
        cpu0, backend0 = children_cpu(), self.backend.cpu()
        started = time.monotonic()
        with open(log_path, "wb") as log:
            proc = self.procs.popen([sys.executable, "scheduler.py", "--once"], cwd=ROOT, env=env,
                                    stdout=log, stderr=subprocess.STDOUT)
            sampler.start()
            try:
                code = proc.wait(self.args.timeout)
            except subprocess.TimeoutExpired:
                code = stop_group(proc) or -9
            wall = time.monotonic() - started
            self.procs.procs.remove(proc)
        sampler.stop()
        reap_orphans(keep=self.backend.processes())
        cpu = children_cpu() - cpu0 + self.backend.cpu() - backend0
        text = log_path.read_text("utf-8", errors="replace")
        hits = self.take()
        save_hits(log_path.with_suffix(".requests.tsv"), hits)
        return RunMeasure(label, wall, cpu, sampler.peak, sampler.peak_procs, code, sampler.peak_parts, hits, text)


    def service_cycle(self, db: Path, rows_db: Path | str) -> CycleMeasure:
        """``python scheduler.py`` (the running service) on the backfilled database, every source on a
        ``--service-interval`` schedule: the tree's CPU across exactly one scheduled idle cycle.

        The tree's CPU is read at two quiet points (no crawl process alive, no run 'running', and the service
        has logged "crawled N sources" for every run it started): after a first cycle of the service, and
        after the next one, in which every source ran exactly once. So the figure covers one whole cycle as
        the service runs it (due jobs, dispatch, the crawl process forked from the forkserver, settling the
        runs, the publish decision) plus the service's idle housekeeping between two cycles; the
        interpreter start, imports and migrations are paid once at the service's start, outside it.
        """
        a = self.args
        sources = write_sources(self.tmp / "service.toml", self.lay, self.servers, schedule=f"{a.service_interval}s")
        env = self.env(db, sources, HTTP_HOST="127.0.0.1", HTTP_PORT=str(free_port()))
        first = max((r[0] for r in run_ids(rows_db)), default=0)
        log_path = self.tmp / "service.log"
        sampler = PssSampler(self.backend.processes())
        with open(log_path, "wb") as log:
            proc = self.procs.popen([sys.executable, "scheduler.py"], cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        sampler.start()
        n = len(self.lay.sources)

        def quiet(after: int) -> tuple[list[tuple[int, str]], TreeCpu, float] | None:
            """Every source ran since run ``after``, the service logged them all and nothing runs: the runs
            since ``first`` and the tree's CPU (read between two identical looks at the rows)."""
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited with {proc.returncode}:\n{_tail(log_path)}")
            rows = run_ids(rows_db)
            since = [(i, st) for i, st in rows if i > first]
            if (len({i for i, _ in since if i > after}) < n or any(st == "running" for _, st in since)
                    or crawled_sources(log_path) != len(since) or crawl_children(proc.pid)):
                return None
            cpu, backend_cpu = tree_cpu(proc.pid), self.backend.cpu()
            if run_ids(rows_db) != rows or crawl_children(proc.pid):
                return None
            return since, cpu, backend_cpu

        try:
            since0, cpu0, backend0 = wait_until(lambda: quiet(first), a.timeout, "the service's first cycle", 0.02)
            t0 = time.monotonic()
            self.take()
            last = max(i for i, _ in since0)
            # the service between two cycles: from the quiet point to the next cycle's first run row
            wait_until(lambda: any(i > last for i, _ in run_ids(rows_db)), a.timeout, "the next cycle to start", 0.02)
            cpu_mid, t_mid = tree_cpu(proc.pid), time.monotonic()
            since1, cpu1, backend1 = wait_until(lambda: quiet(last), a.timeout, "the next scheduled cycle", 0.02)
            window = time.monotonic() - t0
            hits = self.take()
        finally:
            sampler.stop()
            stop_group(proc)
            self.procs.procs.remove(proc)
            reap_orphans()  # the forkserver and resource tracker, orphaned to this subreaper: not the next run's CPU
        cycle = [(i, st) for i, st in since1 if i > last]
        text = log_path.read_text("utf-8", errors="replace")
        save_hits(log_path.with_suffix(".requests.tsv"), hits)
        return CycleMeasure(
            runs=len(cycle), ok=sum(st == "ok" for _, st in cycle), window=window,
            service=cpu1.service - cpu0.service, forkserver=cpu1.forkserver - cpu0.forkserver,
            crawls=cpu1.crawls - cpu0.crawls + backend1 - backend0, other=cpu1.other - cpu0.other,
            processes=lines_after(crawled_lines(text), len(since0)),
            peak_pss=sampler.peak, peak_parts=sampler.peak_parts, hits=hits,
            between=cpu_mid.total - cpu0.total, between_s=t_mid - t0)


@dataclass
class CycleMeasure:
    """One scheduled idle cycle of the running service (CPU seconds by part of the process tree)."""

    runs: int  # crawl runs in the cycle (one per source when the cycle was whole)
    ok: int
    window: float  # seconds from the quiet point before the cycle to the one after it
    service: float
    forkserver: float
    crawls: float  # crawl processes (and a backend's crawl nodes)
    other: float  # resource tracker
    processes: list[int]  # sources per crawl process of the cycle
    peak_pss: int
    peak_parts: list[tuple[str, int]]
    hits: list[TimedHit]
    between: float  # CPU seconds of the tree from the quiet point to the cycle's first run row (waiting)
    between_s: float  # how long that was

    @property
    def cpu(self) -> float:
        return self.service + self.forkserver + self.crawls + self.other


CRAWLED = re.compile(r"\] INFO: crawled (\d+) sources? in ")


def crawled_lines(text: str) -> list[int]:
    """Sources per "crawled N sources" line of the service log, in order."""
    return [int(m.group(1)) for m in CRAWLED.finditer(text)]


def crawled_sources(log_path: Path) -> int:
    return sum(crawled_lines(log_path.read_text("utf-8", errors="replace")))


def lines_after(counts: list[int], before: int) -> list[int]:
    """The "crawled N sources" counts that follow the first ``before`` sources' worth of them."""
    total = 0
    for i, k in enumerate(counts):
        if total >= before:
            return counts[i:]
        total += k
    return []


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text("utf-8", errors="replace").splitlines()[-lines:])


_engines: dict[str, object] = {}


def run_ids(db: Path | str) -> list[tuple[int, str]]:
    """(id, status) of every crawl run, from the SQLite file ``db`` (read-only) or a database URL."""
    query = "SELECT id, status FROM crawl_runs ORDER BY id"
    if isinstance(db, str):
        from sqlalchemy import create_engine, text

        if db not in _engines:
            _engines[db] = create_engine(db)
        with _engines[db].connect() as conn:  # type: ignore[attr-defined]
            return [(i, st) for i, st in conn.execute(text(query))]
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        return [(i, st) for i, st in conn.execute(query)]


def run_rows(db: Path | str) -> Counter[str]:
    """Crawl runs by status, from the SQLite file ``db`` or a database URL."""
    if isinstance(db, str):
        from sqlalchemy import create_engine, text

        engine = create_engine(db)
        try:
            with engine.connect() as conn:
                return Counter(status for (status,) in conn.execute(text("SELECT status FROM crawl_runs")))
        finally:
            engine.dispose()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return Counter(status for (status,) in conn.execute("SELECT status FROM crawl_runs"))


def backfill_figures(m: RunMeasure, delay: float, slack: float) -> dict[str, float]:
    per_host = Counter(h.host for h in m.hits)
    busiest = max(per_host.values()) if per_host else 0
    bound = busiest * delay
    return {"busiest": busiest, "bound": bound, "ratio": m.wall / bound if bound else float("inf"),
            "span": span(m.hits), "span_ratio": span(m.hits) / bound if bound else float("inf"),
            "violations": len(politeness_violations(m.hits, delay, slack)), "min_gap": min_gap(m.hits)}


def gap_summary(hits: list[TimedHit], delay: float, slack: float) -> str:
    """How the short gaps between two requests to one host are spread, and how many overlapped."""
    overlaps, bins = 0, Counter[str]()
    for seq in by_host(hits).values():
        for prev, cur in zip(seq, seq[1:], strict=False):
            gap = cur.arrived - prev.arrived
            if cur.arrived < prev.done:
                overlaps += 1
            elif gap < 0.5 * delay:
                bins["< 50 %"] += 1
            elif gap < 0.8 * delay:
                bins["50-80 %"] += 1
            elif gap < delay - slack:
                bins[f"80 % - delay-{slack * 1000:.0f} ms"] += 1
    short = ", ".join(f"{k}: {bins[k]}" for k in sorted(bins)) or "none"
    return f"{overlaps} while another was in flight; gaps short of the delay: {short}"


def save_hits(path: Path, hits: list[TimedHit]) -> None:
    """The servers' request log as TSV (host, method, path, status, arrived, done, conditional, body bytes)."""
    t0 = hits[0].arrived if hits else 0.0
    path.write_text("".join(f"{h.host}\t{h.method}\t{h.path}\t{h.status}\t{h.arrived - t0:.6f}\t"
                            f"{h.done - t0:.6f}\t{int(h.conditional)}\t{h.body_bytes}\n" for h in hits), "utf-8")


def check_run(m: RunMeasure, db: Path | str, sources: int) -> None:
    rows = run_rows(db)
    if m.returncode != 0 or rows.get("ok", 0) < sources:
        tail = "\n".join(m.log.splitlines()[-30:])
        raise RuntimeError(f"{m.label}: exit {m.returncode}, runs {dict(rows)}:\n{tail}")


def run(args: argparse.Namespace) -> int:
    # the servers are threads of this process: a short GIL switch interval keeps a request's arrival time
    # from waiting behind other threads (5 ms by default), which would show as jitter in the gaps
    sys.setswitchinterval(args.switch_interval)
    lay = layout(args.hosts, args.columns, args.articles)
    n_sources, delay = len(lay.sources), args.delay
    tmp = Path(tempfile.mkdtemp(prefix="ghu-feeds-bench-scale-"))
    procs = Procs()
    backend: Backend | None = None
    try:
        with sigterm_as_interrupt():
            if args.subreaper:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                    print("warning: prctl(PR_SET_CHILD_SUBREAPER) failed: CPU of orphaned processes is lost")
            t0 = time.monotonic()
            manifests = build_columns(tmp / "site", lay.specs)
            pages = sum(len(m["column"]["pages"]) + m["column"]["local_articles"] for m in manifests.values())
            with serve_hosts((tmp / "site", host) for host in lay.hosts) as servers:
                backend = BACKENDS[args.backend](args, procs, tmp)
                bench = ScaleBench(args, tmp, servers, lay, procs, backend)
                print(f"{args.hosts} hosts × {args.columns} columns × {args.articles} articles = {n_sources} sources, "
                      f"{pages * args.hosts} pages to fetch ({pages} per host + robots.txt), built in "
                      f"{time.monotonic() - t0:.1f} s; CRAWL_DELAY={delay}; backend {backend.name}"
                      f"{f' ({args.nodes} nodes, PostgreSQL)' if backend.name == 'scrapyd' else ''}"
                      f"{f', CRAWL_PROCESSES={args.processes}' if args.processes else ''}; {os.cpu_count()} CPUs; "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)
                db = tmp / "main" / "ghu.db"
                db.parent.mkdir()
                env = bench.env(db, bench.all_sources)
                rows_db = backend.database_url() if hasattr(backend, "database_url") else db
                backfill = bench.once("backfill", env)
                check_run(backfill, rows_db, n_sources)
                print(f"backfill done in {backfill.wall:.1f} s", flush=True)
                idle = bench.once("idle", env)
                check_run(idle, rows_db, 2 * n_sources)
                print("idle --once done; the service's scheduled cycle next", flush=True)
                service = bench.service_cycle(db, rows_db)  # before the 1-source run: all sources fall due together
                one = write_sources(tmp / "one.toml", lay, bench.servers, [next(iter(lay.sources))])
                single = bench.once("idle, 1 source", bench.env(db, one))
                baseline = None
                if args.baseline_processes:
                    db2 = tmp / "baseline" / "ghu.db"
                    db2.parent.mkdir()
                    n = str(args.baseline_processes)
                    baseline = bench.once(f"backfill, CRAWL_PROCESSES={n}",
                                          bench.env(db2, bench.all_sources, CRAWL_PROCESSES=n))
                    check_run(baseline, db2, n_sources)
    finally:
        if backend is not None:
            backend.close()
        procs.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    ok = report(args, lay, backfill, idle, single, service, baseline)
    return 0 if ok or not args.strict else 1


def report(args: argparse.Namespace, lay: Layout, backfill: RunMeasure, idle: RunMeasure, single: RunMeasure,
           service: CycleMeasure, baseline: RunMeasure | None) -> bool:
    n_sources, n_hosts, delay = len(lay.sources), len(lay.hosts), args.delay
    print()
    print(f"{'run':<28} {'wall s':>7} {'CPU s':>7} {'peak PSS':>10} {'procs':>5} {'requests':>8} {'200':>6}")
    for m in [backfill, idle, single, *([baseline] if baseline else [])]:
        print(f"{m.label:<28} {m.wall:7.2f} {m.cpu:7.2f} {mib(m.peak_pss):>10} {m.peak_procs:>5} {len(m.hits):>8} "
              f"{sum(h.status == 200 for h in m.hits):>6}")
    print(f"(backfill) peak PSS {mib(backfill.peak_pss)} = "
          + " + ".join(f"{name} {mib(size)}" for name, size in backfill.peak_parts))
    print()
    for m in [backfill, *([baseline] if baseline else [])]:
        f = backfill_figures(m, delay, args.slack)
        print(f"({m.label}) {len(m.hits)} requests, busiest host {f['busiest']:.0f} → bound {f['bound']:.2f} s; "
              f"wall {m.wall:.2f} s = {f['ratio']:.2f}× the bound (first request to last response: {f['span']:.2f} s "
              f"= {f['span_ratio']:.2f}×); politeness violations: {f['violations']:.0f} (slack "
              f"{args.slack * 1000:.0f} ms; shortest gap between two requests to one host: "
              f"{f['min_gap'] * 1000:.1f} ms)")
        print(f"    {gap_summary(m.hits, delay, args.slack)}")
        for line in politeness_violations(m.hits, delay, args.slack)[:3]:
            print(f"    {line}")
    f = backfill_figures(backfill, delay, args.slack)
    ok_bound, ok_polite = f["ratio"] <= TARGET_BOUND_RATIO, f["violations"] == 0

    robots = Counter(h.host for h in idle.hits if h.path == "/robots.txt")
    polls = [h for h in idle.hits if h.path != "/robots.txt"]
    ok200 = [h for h in idle.hits if h.status == 200]
    statuses = Counter(h.status for h in polls)
    cpu_per = idle.cpu / n_sources
    marginal = (idle.cpu - single.cpu) / (n_sources - 1) if n_sources > 1 else 0.0
    print(f"(idle) {len(polls)} requests for {n_sources} sources = {len(polls) / n_sources:.2f} per source "
          f"({', '.join(f'{k}×{v}' for k, v in sorted(statuses.items()))}; conditional: "
          f"{sum(h.conditional for h in polls)}), robots.txt: {sum(robots.values())} for {n_hosts} hosts "
          f"(max {max(robots.values(), default=0)} per host), {len(ok200)} × 200 "
          f"({human_bytes(sum(h.body_bytes for h in ok200))} of body)")
    print(f"(idle, --once) CPU {idle.cpu:.2f} s = {cpu_per * 1000:.1f} ms per source; one source alone: "
          f"{single.cpu:.2f} s "
          f"(start-up), so {marginal * 1000:.1f} ms per further source; wall {idle.wall:.2f} s")
    sv_per = service.cpu / n_sources
    sv_polls = [h for h in service.hits if h.path != "/robots.txt"]
    sv_robots = Counter(h.host for h in service.hits if h.path == "/robots.txt")
    sv_200 = [h for h in service.hits if h.status == 200]
    print(f"(service) one scheduled idle cycle (schedule every {args.service_interval:g} s): {service.runs} runs "
          f"({service.ok} ok) in {len(service.processes)} crawl process(es) of {service.processes} sources; "
          f"CPU {service.cpu:.2f} s = {sv_per * 1000:.1f} ms per source (service {service.service:.2f} s, "
          f"forkserver {service.forkserver:.2f} s, crawl processes {service.crawls:.2f} s, "
          f"other {service.other:.2f} s) "
          f"over {service.window:.1f} s from quiet point to quiet point; {len(sv_polls)} requests "
          f"({len(sv_polls) / n_sources:.2f} per source), robots.txt {sum(sv_robots.values())} "
          f"(max {max(sv_robots.values(), default=0)} per host), {len(sv_200)} × 200")
    rate = service.between / service.between_s if service.between_s > 0 else 0.0
    print(f"    of which before the cycle's run rows were written (the service's housekeeping while it waits, "
          f"e.g. the feed server's poll of FEEDS_DIR each second; the due jobs, dispatch, locks, run rows): "
          f"{service.between:.2f} s over {service.between_s:.1f} s = {rate * 1000:.1f} ms per second")
    print(f"    peak PSS while the service ran: {mib(service.peak_pss)} = "
          + " + ".join(f"{name} {mib(size)}" for name, size in service.peak_parts))
    ok_cpu = cpu_per <= TARGET_IDLE_CPU_PER_SOURCE
    ok_service = sv_per <= TARGET_IDLE_CPU_PER_SOURCE and service.runs == n_sources
    ok_marginal = marginal <= TARGET_IDLE_CPU_PER_SOURCE
    ok_requests = (len(polls) <= n_sources and max(robots.values(), default=0) <= 1
                   and not ok200)
    peak = max([m.peak_pss for m in [backfill, idle]] + [service.peak_pss])
    ok_mem = peak < TARGET_PEAK_PSS
    print()
    verdict = {True: "PASS", False: "FAIL"}
    print(f"backfill wall / politeness bound = {f['ratio']:.2f}; target ≤ {TARGET_BOUND_RATIO}: {verdict[ok_bound]}")
    print(f"politeness violations = {f['violations']:.0f}; target 0: {verdict[ok_polite]}")
    print(f"idle cycle CPU per source in the running service = {sv_per * 1000:.1f} ms; target ≤ "
          f"{TARGET_IDLE_CPU_PER_SOURCE * 1000:.0f} ms (at 200 sources): {verdict[ok_service]}")
    print(f"idle --once CPU per source = {cpu_per * 1000:.1f} ms (process start included): {verdict[ok_cpu]}; "
          f"start-up excluded {marginal * 1000:.1f} ms: {verdict[ok_marginal]}")
    print(f"idle requests: ≤ 1 per source, ≤ 1 robots.txt per host, no 200: {verdict[ok_requests]}")
    print(f"peak PSS of the process tree = {mib(peak)}; target < {mib(TARGET_PEAK_PSS)} (at 200 sources): "
          f"{verdict[ok_mem]}")
    return ok_bound and ok_polite and ok_service and ok_requests and ok_mem


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, default=20, help="loopback hosts 127.0.0.1 … (default 20)")
    p.add_argument("--columns", type=int, default=10, help="columns per host (default 10)")
    p.add_argument("--articles", type=int, default=50, help="articles per column (default 50)")
    p.add_argument("--delay", type=float, default=0.05, help="CRAWL_DELAY in seconds (default 0.05)")
    p.add_argument("--slack", type=float, default=0.005,
                   help="seconds a gap may fall short of the delay before it counts as a violation (default 0.005: "
                        "jitter in sending, seen at the server)")
    p.add_argument("--switch-interval", type=float, default=0.0005, help=argparse.SUPPRESS)
    p.add_argument("--processes", type=int, help="CRAWL_PROCESSES (default: the project's, the number of CPUs)")
    p.add_argument("--baseline-processes", type=int, metavar="N",
                   help="also run the backfill with CRAWL_PROCESSES=N on a fresh database, to compare")
    p.add_argument("--backend", choices=sorted(BACKENDS), default="local", help="how crawls are started")
    p.add_argument("--nodes", type=int, default=1, help="crawl nodes the backend starts (not used by local)")
    p.add_argument("--service-interval", type=int, default=20,
                   help="schedule (seconds) of every source for the service's idle cycle (default 20: longer than "
                        "an idle cycle takes)")
    p.add_argument("--timeout", type=float, default=900, help="seconds one --once may take (default 900)")
    p.add_argument("--no-subreaper", dest="subreaper", action="store_false", help=argparse.SUPPRESS)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, databases)")
    p.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: subprocesses and servers are already stopped
        print(f"interrupted ({exc or 'Ctrl-C'})", file=sys.stderr)
        sys.exit(130)
