#!/usr/bin/env python3
"""Benchmark feeds.server.FeedServer (uvicorn) against nginx (and stdlib http.server) with wrk.

Why this shape: the server's main job is to hand a ~80 KiB RSS file (or a 304) to
feed readers, so we measure exactly that, against the obvious alternative (nginx
serving the same directory) and the naive one (``http.server``). In the same run it
measures a cached filtered feed (``?filter=…&limit=…``) against our plain feed, and
archive search (``/search.json?q=…``, a rotation of words of every frequency) on a
synthetic 100,000-article SQLite database: requests/s and p99 latency, one
connection at a time (latency) as a reader would see it.  Every server runs
in its own process, pinned to CPU 0 when the machine has two or more CPUs, with wrk
pinned to CPU 1, so client and server never share a GIL or a core.  With ``--rounds N`` the servers are
measured in turn N times and each keeps its best round, which damps noise from other
processes on a shared machine.  nginx runs with
``master_process on; worker_processes 1`` (one worker = one core, like our single
event loop), ``sendfile on``, ``etag on`` and no access log; our server also logs
nothing per request.

Self-contained: writes its own feed file into a temporary directory, needs only the
Debian ``nginx`` and ``wrk`` binaries, listens only on 127.0.0.1 and cleans up
(processes and temp dir) on any exit.

    .venv/bin/python bench/serve.py [--duration 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import sigterm_as_interrupt  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FEED_NAME = "ghu.xml"
TARGET_200 = 0.70
TARGET_304 = 0.50
TARGET_FILTERED = 0.50  # of our plain feed's rate
TARGET_SEARCH_P99_MS = 50.0
FILTER_QUERY = "filter=%E5%9F%B9%E8%AE%AD%7C%E5%AD%A6%E4%B9%A0&limit=10"  # filter=培训|学习&limit=10

_WORDS = str.split(
    "党校 工作 动态 学习 贯彻 习近平 新时代 中国特色社会主义 思想 主题教育 干部 培训 班 开班 仪式 "
    "举行 专题 讲座 理论 研讨 会议 精神 全面 从严 治党 基层 组织 建设 学员 结业 教学 科研 咨政 "
    "高质量 发展 广州 华商 学院 党委 书记 校长 讲话 强调 要求 深入 落实 推动 各项 任务 取得 实效 "
    "党性 教育 现场 教学 红色 资源 传承 革命 传统 坚定 理想 信念 提升 履职 能力 服务 大局 创新 "
    "方式 方法 交流 经验 总结 成果 部署 安排 下一步 重点 工作 积极 参与 认真 听取 报告 座谈"
)


def make_feed(items: int = 50, item_bytes: int = 1400, seed: int = 42) -> bytes:
    """A realistic full-text RSS 2.0 feed: Chinese paragraphs, ~item_bytes of text per item."""
    rng = random.Random(seed)
    now = time.time()
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        "<title>广州华商学院党校 · 党校工作动态</title><link>https://zzb.ghu.edu.cn/</link>"
        "<description>党校工作动态（全文）</description><language>zh-CN</language>"
        f"<lastBuildDate>{email.utils.formatdate(now, usegmt=True)}</lastBuildDate>"
    ]
    for i in range(items):
        paragraphs: list[str] = []
        size = 0
        while size < item_bytes:
            sentence = "".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 20)))
            sentence += rng.choice("，。；！") + "".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 14))) + "。"
            paragraphs.append(f"<p>{sentence}</p>")
            size += len(paragraphs[-1].encode())
        title = "".join(rng.choice(_WORDS) for _ in range(6))
        link = f"https://zzb.ghu.edu.cn/info/1011/{3000 + i}.htm"
        parts.append(
            f"<item><title>{title}</title><link>{link}</link><guid isPermaLink=\"true\">{link}</guid>"
            f"<pubDate>{email.utils.formatdate(now - i * 86400, usegmt=True)}</pubDate>"
            f"<description><![CDATA[{''.join(paragraphs)}]]></description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


# ---------------------------------------------------------------------------
# Server subprocess entry points (``--_serve ours|stdlib``)
# ---------------------------------------------------------------------------
def _serve_until_stdin_closes(kind: str, directory: str, http11: bool, db_url: str | None) -> None:
    """Child process: start a server on an ephemeral loopback port, print it, run until EOF."""
    if kind == "ours":
        sys.path.insert(0, str(REPO))
        from db.engine import open_database
        from feeds.server import FeedServer

        factory = open_database(db_url)[1] if db_url else None
        server = FeedServer(directory, "127.0.0.1", 0, cache_max_age=300, session_factory=factory)
        _, port = server.start_in_thread()
        stop = server.stop
    else:
        import functools
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        class Handler(SimpleHTTPRequestHandler):
            # Out of the box it speaks HTTP/1.0 (one request per connection); --stdlib-http11
            # enables keep-alive, which is slower for big bodies (Nagle/delayed-ACK stalls).
            protocol_version = "HTTP/1.1" if http11 else "HTTP/1.0"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # wrk resets connections when it stops; don't spam tracebacks

        httpd = Server(("127.0.0.1", 0), functools.partial(Handler, directory=directory))
        httpd.daemon_threads = True
        port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        stop = httpd.shutdown
    print(f"PORT {port}", flush=True)
    sys.stdin.read()
    stop()


# ---------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------
@dataclass
class WrkResult:
    rps: float
    avg_ms: float
    p50_ms: float
    p99_ms: float
    errors: str
    server_cpu: float = float("nan")  # fraction of one core the server used during the run


def group_cpu_seconds(pgid: int) -> float:
    """user+system CPU seconds of every live process in a process group (Linux /proc)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "pid (comm)": state ppid pgrp ...
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    avg = re.search(r"^\s+Latency\s+(\S+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    errors = " ".join(
        line.strip() for line in output.splitlines() if "errors" in line or "Non-2xx" in line
    )
    return WrkResult(
        float(rps.group(1)) if rps else 0.0,
        _ms(avg.group(1)) if avg else float("nan"),
        _ms(p50.group(1)) if p50 else float("nan"),
        _ms(p99.group(1)) if p99 else float("nan"),
        errors,
    )


class Bench:
    """Owns every process and temp path it creates and removes them in :meth:`close`."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="ghu-feeds-bench-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.words: list[str] = []
        self.pin = args.pin and len(os.sched_getaffinity(0)) >= 2
        cpus = sorted(os.sched_getaffinity(0))
        self.server_cpu, self.client_cpu = (cpus[0], cpus[1]) if self.pin else (None, None)

    def _taskset(self, cpu: int | None) -> list[str]:
        return ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []

    def close(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)
        self.procs.clear()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def make_feeds(self) -> Path:
        feeds = self.tmp / "feeds"
        feeds.mkdir()
        (feeds / FEED_NAME).write_bytes(make_feed(self.args.items))
        (feeds / "index.html").write_text("<!doctype html><title>feeds</title>", encoding="utf-8")
        feeds.chmod(0o755)
        return feeds

    def make_search_db(self) -> str:
        """A 100,000-article SQLite database (schema by our migrations, indexed by their triggers)."""
        if self.args.search_db:  # reuse one built before (it takes minutes): --search-db PATH
            path = Path(self.args.search_db)
            if path.exists():
                self.words = query_words()
                print(f"search database: {path} reused, {path.stat().st_size / 2**20:.0f} MiB")
                return f"sqlite:///{path}"
        else:
            path = self.tmp / "search.db"
        url = f"sqlite:///{path}"
        t0 = time.monotonic()
        self.words = build_search_db(url, self.args.articles)
        print(f"search database: {self.args.articles:,} articles, {path.stat().st_size / 2**20:.0f} MiB, "
              f"built in {time.monotonic() - t0:.0f} s")
        return url

    def start_python(self, kind: str, feeds: Path, db_url: str | None = None) -> int:
        cmd = [*self._taskset(self.server_cpu), sys.executable, str(Path(__file__).resolve()),
               "--_serve", kind, "--_dir", str(feeds)]
        if db_url:
            cmd += ["--_db", db_url]
        if self.args.stdlib_http11:
            cmd.append("--stdlib-http11")
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        m = re.match(r"PORT (\d+)", line)
        if not m:
            raise RuntimeError(f"{kind} server failed to start: {line!r}")
        return int(m.group(1))

    def start_nginx(self, feeds: Path) -> int:
        nginx = shutil.which(self.args.nginx) or self.args.nginx
        prefix = self.tmp / "nginx"
        (prefix / "logs").mkdir(parents=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = f"""{user}daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{
        application/rss+xml xml;
        application/atom+xml atom;
        application/feed+json json;
        text/html html;
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types application/rss+xml application/atom+xml application/feed+json text/html;
    etag on;
    gzip on;
    gzip_comp_level 6;
    gzip_types application/rss+xml application/atom+xml application/feed+json;
    gzip_vary on;
    server {{
        listen 127.0.0.1:{port};
        root {feeds};
        autoindex off;
        add_header Cache-Control "public, max-age=300";
    }}
}}
"""
        conf_path = prefix / "nginx.conf"
        conf_path.write_text(conf)
        proc = subprocess.Popen(
            [*self._taskset(self.server_cpu), nginx, "-p", str(prefix), "-c", str(conf_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"nginx exited: {err}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return port
            time.sleep(0.05)
        raise RuntimeError("nginx did not start listening")

    def wrk(self, url: str, headers: dict[str, str], pgid: int, connections: int | None = None,
            script: Path | None = None) -> WrkResult:
        """Run wrk against url; also record how busy the server's process group was."""
        a = self.args
        cmd = [*self._taskset(self.client_cpu), shutil.which(a.wrk) or a.wrk,
               f"-t{a.threads}", f"-c{connections or a.connections}", f"-d{a.duration}s", "--latency"]
        if script is not None:
            cmd += ["-s", str(script)]
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        cpu0, t0 = group_cpu_seconds(pgid), time.monotonic()
        out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=a.duration + 60, check=True)
        result = parse_wrk(out.stdout)
        result.server_cpu = (group_cpu_seconds(pgid) - cpu0) / (time.monotonic() - t0)
        return result


def probe(url: str, size: int) -> tuple[str, str]:
    """Check the server answers the full file; return (ETag, Last-Modified) for conditionals."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = resp.read()
        if resp.status != 200 or len(body) != size:
            raise RuntimeError(f"{url}: status {resp.status}, {len(body)} bytes (want {size})")
        return resp.headers.get("ETag", ""), resp.headers.get("Last-Modified", "")


def conditional_headers(url: str, etag: str, last_modified: str) -> dict[str, str]:
    """The validator each server honours (stdlib has no ETag), checked to yield a 304."""
    headers = {"If-None-Match": etag} if etag else {"If-Modified-Since": last_modified}
    req = urllib.request.Request(url, headers=headers)
    try:
        urllib.request.urlopen(req, timeout=5).close()
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return headers
        raise
    raise RuntimeError(f"{url}: conditional request did not give 304")


def _vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    """Pseudo-words of 2-4 common characters; drawn with Zipf-like weights, like real text."""
    chars = "".join(dict.fromkeys("".join(_WORDS)))
    return ["".join(rng.choice(chars) for _ in range(rng.choice((2, 3, 3, 4)))) for _ in range(size)]


def build_search_db(url: str, count: int, seed: int = 7) -> list[str]:
    """Fill a new database with ``count`` articles (1 % removed); returns query words of every frequency."""
    import sqlite3

    from db.engine import open_database

    engine, _ = open_database(url)  # schema and search triggers by our migrations
    engine.dispose()
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    conn.execute("INSERT INTO sources (name, title, list_url, created_at) "
                 "VALUES ('bench', 'bench', 'https://zzb.ghu.edu.cn/bench.htm', '2015-01-01 00:00:00.000000')")
    start = time.mktime((2015, 1, 1, 0, 0, 0, 0, 0, 0))
    rows = []
    for i in range(count):
        title = "".join(rng.choices(vocab, weights, k=rng.randint(5, 9)))
        body = "。".join("".join(rng.choices(vocab, weights, k=12)) for _ in range(12))
        when = time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime(start + i * 3000))
        rows.append((1, f"https://zzb.ghu.edu.cn/info/1015/{i}.htm", i, 0, "ok", title, title, when, f"<p>{body}</p>",
                     body, 0, when, when if rng.random() < 0.01 else None))
    conn.executemany(
        "INSERT INTO articles (source_id, url, newsid, external, status, title, list_title, published_at, "
        "body_html, body_text, fetch_attempts, first_seen_at, removed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()
    return query_words(seed)


def query_words(seed: int = 7) -> list[str]:
    """Frequent, middling and rare words (ranks 0-5000), plus 2-character (title-only) ones."""
    vocab = _vocabulary(random.Random(seed))
    words = [w for w in (vocab[r] for r in (0, 3, 10, 30, 100, 300, 1000, 3000, 5000)) if len(w) >= 3]
    return words + [vocab[r][:2] for r in (1, 50)]


def search_script(path: Path, words: list[str]) -> Path:
    """A wrk Lua script rotating /search.json?q=WORD over ``words``."""
    from urllib.parse import quote

    paths = ", ".join(f'"/search.json?q={quote(w)}"' for w in words)
    path.write_text(f"local paths = {{{paths}}}\nlocal i = 0\n"
                    "request = function()\n  i = i % #paths + 1\n  return wrk.format('GET', paths[i])\nend\n")
    return path


def run(args: argparse.Namespace) -> int:
    for tool in (args.nginx, args.wrk):
        if not shutil.which(tool):
            print(f"missing {tool}: apt-get install -y nginx wrk", file=sys.stderr)
            return 2
    bench = Bench(args)
    results: dict[str, dict[str, WrkResult]] = {}
    try:
        with sigterm_as_interrupt():
            feeds = bench.make_feeds()
            size = (feeds / FEED_NAME).stat().st_size
            db_url = None
            script = None
            if args.articles:
                db_url = bench.make_search_db()
                script = search_script(bench.tmp / "search.lua", bench.words)
            pinning = f"server CPU {bench.server_cpu}, wrk CPU {bench.client_cpu}" if bench.pin else "off"
            print(f"feed: {FEED_NAME} {size / 1024:.0f} KiB, {args.items} items; "
                  f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s x {args.rounds} round(s); "
                  f"pinning: {pinning}")
            servers = [("nginx", bench.start_nginx), ("ours", lambda f: bench.start_python("ours", f, db_url))]
            if args.stdlib:
                servers.append(("stdlib", lambda f: bench.start_python("stdlib", f)))
            targets: list[tuple[str, str, dict[str, str], int]] = []
            for name, start in servers:  # all started up front; an idle server costs no CPU
                port = start(feeds)
                url = f"http://127.0.0.1:{port}/{FEED_NAME}"
                etag, last_modified = probe(url, size)
                cond = conditional_headers(url, etag if name != "stdlib" else "", last_modified)
                targets.append((name, url, cond, bench.procs[-1].pid))
            ours = next(t for t in targets if t[0] == "ours")
            # Rounds interleave the servers so that load from other tenants hits all of them
            # alike; each figure is the best round (least disturbed).
            for _ in range(args.rounds):
                for case in ("200", "304"):
                    for name, url, cond, pgid in targets:
                        keep_best(results, name, case, bench.wrk(url, cond if case == "304" else {}, pgid))
                keep_best(results, "ours", "filtered", bench.wrk(f"{ours[1]}?{FILTER_QUERY}", {}, ours[3]))
                if script is not None:
                    base = ours[1].rsplit("/", 1)[0]
                    keep_best(results, "ours", "search c1", bench.wrk(base + "/search.json", {}, ours[3], 1, script))
                    keep_best(results, "ours", "search", bench.wrk(base + "/search.json", {}, ours[3], None, script))
    finally:
        bench.close()
    return report(results, args)


def keep_best(results: dict[str, dict[str, WrkResult]], name: str, case: str, r: WrkResult) -> None:
    best = results.setdefault(name, {}).get(case)
    if best is None or r.rps > best.rps:
        results[name][case] = r


def report(results: dict[str, dict[str, WrkResult]], args: argparse.Namespace) -> int:
    print()
    print(f"{'server':<8} {'case':<10} {'req/s':>10} {'avg ms':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'srv CPU':>8}  ratio")
    failed = False
    for name, cases in results.items():
        for case, r in cases.items():
            note = ""
            if case in ("200", "304"):
                base = results["nginx"][case].rps
                ratio = f"{r.rps / base if base else 0.0:6.1%} of nginx"
                if name == "ours":
                    target = TARGET_200 if case == "200" else TARGET_304
                    ok = r.rps >= target * base
                    failed |= not ok
                    note = f"  (target {target:.0%}: {'PASS' if ok else 'FAIL'})"
            elif case == "filtered":
                base = results["ours"]["200"].rps
                ratio = f"{r.rps / base if base else 0.0:6.1%} of our plain 200"
                ok = r.rps >= TARGET_FILTERED * base
                failed |= not ok
                note = f"  (target {TARGET_FILTERED:.0%}: {'PASS' if ok else 'FAIL'})"
            else:
                ratio = f"{args.articles:,} articles"
                if case == "search c1":
                    ok = r.p99_ms < TARGET_SEARCH_P99_MS
                    failed |= not ok
                    note = f"  (p99 target < {TARGET_SEARCH_P99_MS:.0f} ms: {'PASS' if ok else 'FAIL'})"
            extra = f"  [{r.errors}]" if r.errors else ""
            print(f"{name:<8} {case:<10} {r.rps:>10.0f} {r.avg_ms:>8.2f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}"
                  f" {r.server_cpu:>8.0%}  {ratio}{note}{extra}")
    return 1 if failed and args.strict else 0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a process group we started (by its own id) and reap it."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(OSError):
        if proc.stdin:
            proc.stdin.close()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--rounds", type=int, default=1, help="repeat and keep each server's best (default 1)")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--items", type=int, default=50)
    p.add_argument("--nginx", default="nginx")
    p.add_argument("--wrk", default="wrk")
    p.add_argument("--stdlib", action="store_true", help="also measure Python's http.server")
    p.add_argument("--articles", type=int, default=100_000, help="search database size (0: no search)")
    p.add_argument("--search-db", help="build the search database here and keep it; reuse it if it exists")
    p.add_argument("--no-pin", dest="pin", action="store_false", help="don't pin server/wrk to CPUs")
    p.add_argument("--stdlib-http11", action="store_true", help="stdlib baseline with HTTP/1.1 keep-alive")
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    p.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    p.add_argument("--_serve", choices=("ours", "stdlib"), help=argparse.SUPPRESS)
    p.add_argument("--_dir", help=argparse.SUPPRESS)
    p.add_argument("--_db", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._serve:
        _serve_until_stdin_closes(args._serve, args._dir, args.stdlib_http11, args._db)
        return 0
    try:
        return run(args)
    except KeyboardInterrupt as exc:  # SIGINT/SIGTERM: run()'s finally has cleaned up
        print(f"interrupted ({exc or 'SIGINT'}); servers stopped, temp files removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
