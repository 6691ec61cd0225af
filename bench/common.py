"""Shared pieces of the crawl and service benches: a synthetic column, a byte-counting replica server,
subprocesses that are always cleaned up, and /proc-based CPU and memory readings.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fixtures.site import LoggingHandler, SiteServer  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# ---------------------------------------------------------------- a synthetic VSB column
OFFICE, ORG = "党校办公室", "组织部"
COLLEGES = ["经济管理学院", "会计学院", "外国语学院", "文学与新闻传播学院", "设计艺术学院", "电气信息学院",
            "机械工程学院", "健康学院", "马克思主义学院", "音乐学院", "国际教育学院", "通识教育学院"]
TOPICS = ["学习贯彻党的二十届三中全会精神", "深入贯彻中央八项规定精神", "铸牢中华民族共同体意识", "学党史、悟思想",
          "强党性、践初心", "学条例、守党纪", "坚定理想信念、端正入党动机", "传承红色基因", "弘扬伟大建党精神",
          "以高质量党建引领高质量发展", "牢记初心使命、争做合格党员", "青春心向党、建功新时代"]
PLACES = ["长春市红色教育基地", "伪满皇宫博物院", "东北抗联纪念馆", "杨靖宇烈士陵园", "长春市规划展览馆",
          "吉林省博物院", "四平战役纪念馆", "中国一汽红旗文化展馆"]
CLASSES = ["入党积极分子培训班", "发展对象培训班", "党务干部培训班", "入党积极分子、发展对象培训班"]
IMAGES = ["dxjx-1.jpg", "dxjx-2.jpg", "dxjx-3.jpg", "wmhg-1.png"]
OPENERS = [
    "{md}，学校党校{sem}{cls}{act}在{hall}举行，学校党委副书记、党校常务副校长出席并讲话。",
    "{md}下午，学校党校围绕“{topic}”主题，组织{sem}{cls}全体学员开展专题学习。",
    "为深入推进党员教育培训工作，{md}，{college}党总支联合学校党校开展“{topic}”主题活动。",
    "{md}，学校党校组织{sem}{cls}学员赴{place}开展现场教学，{n}名学员参加。",
]
MIDDLES = [
    "本期培训共安排专题讲座{k}讲，采取集中授课、专题研讨、网络学习和实践教学相结合的方式进行，"
    "内容涵盖党的基本理论、党章党规、党的光辉历程以及习近平新时代中国特色社会主义思想等。",
    "主讲教师从“{topic}”的时代背景、丰富内涵和实践要求等方面进行了系统阐释，结合典型案例深入浅出地"
    "讲解了新时代青年学生的使命担当，引导学员把思想和行动统一到党的决策部署上来。",
    "研讨中，学员们围绕“我为什么要入党”“入党后怎样发挥作用”等问题，结合专题学习和自身实际畅谈体会，"
    "各组指导教师对学员发言逐一点评，并就如何端正入党动机、提高思想认识进行了指导。",
    "在讲解员的带领下，学员们依次参观了各展厅，通过一张张珍贵的历史照片、一件件革命文物，深入了解了"
    "东北抗日联军艰苦卓绝的斗争历程和可歌可泣的英雄事迹。",
    "{college}党总支书记在总结讲话中指出，要以此次活动为契机，持续加强理论武装，把学习成果转化为推动"
    "学院各项事业高质量发展的实际行动，切实发挥基层党组织的战斗堡垒作用。",
    "截至{md}，全校共有{n}名学员完成全部课程学习，参学率达到{pct}%，学习成效明显。",
]
CLOSERS = [
    "学员们纷纷表示，此次学习内容丰富、针对性强，将以此为新起点，持续加强理论学习，自觉接受党组织的"
    "教育和考察，争取早日成为一名合格的共产党员。",
    "党校将结合学员平时出勤、学习心得和考试成绩进行综合评定，成绩合格者颁发结业证书。",
    "大家一致认为，此次培训为今后做好基层党建工作提供了有力指导。",
]


@dataclass
class Column:
    """The generated articles (build_site's dict format) and what a bench needs to know about them."""

    articles: list[dict[str, Any]]
    images: int = 0
    attachments: int = 0


def synthetic_column(n: int = 1000, seed: int = 20250620) -> Column:
    """``n`` on-site articles, newest first: Chinese titles and 3-6 paragraph bodies, some with images
    (replica assets), attachments (附件 list) or a body file link. Deterministic for a given seed."""
    rng = random.Random(seed)
    day = date(2025, 6, 20)
    news_id = 2000 + 5 * n
    col = Column([])
    for i in range(n):
        if i:
            day -= timedelta(days=rng.choice([0, 1, 1, 2, 3]))
            news_id -= rng.randint(1, 9)
        term = f"{day.year}年{'春季' if day.month < 8 else '秋季'}学期"
        ctx = {"md": f"{day.month}月{day.day}日", "sem": term, "cls": rng.choice(CLASSES),
               "act": rng.choice(["开班仪式", "结业式", "结业考试", "集中研讨"]), "hall": "学术报告厅",
               "topic": rng.choice(TOPICS), "college": rng.choice(COLLEGES), "place": rng.choice(PLACES),
               "n": rng.randint(80, 600), "k": rng.randint(4, 8), "pct": rng.randint(92, 99)}
        kind = rng.random()
        body: list[Any] = [rng.choice(OPENERS).format(**ctx)]
        body += [rng.choice(MIDDLES).format(**ctx) for _ in range(rng.randint(1, 4))]
        attachments: list[tuple[str, str]] = []
        if kind < 0.10:  # a notice with attachments
            title = f"关于举办{term}党校{ctx['cls']}的通知"
            body = ["各二级学院党总支：", f"经研究，学校党校定于近期举办{term}{ctx['cls']}。现将有关事项通知如下：",
                    *body[1:], ("right", ORG), ("right", f"{day.year}年{ctx['md']}")]
            names = [f"{term}{ctx['cls']}学员名单.xlsx", f"{term}{ctx['cls']}日程安排.docx",
                     f"{term}党校优秀学员名单.pdf", "党校培训班学员报名表.doc"]
            attachments = [(name, rng.choice(["hex", "num"])) for name in rng.sample(names, rng.randint(1, 2))]
        elif kind < 0.25:  # a field trip with photos
            title = f"党校组织{ctx['cls']}学员赴{ctx['place']}开展现场教学"
            for img in rng.sample(IMAGES, rng.randint(1, 3)):
                body.insert(rng.randint(1, len(body)), ("caption", f"学员在{ctx['place']}参观学习"))
                body.insert(rng.randint(1, len(body) - 1), ("img", img, {}))
                col.images += 1
        elif kind < 0.27:  # a body link to a file
            title = f"关于做好{term}党校培训学员推荐工作的通知"
            body.append(("filelink", "推荐汇总表详见附件：", f"{term}党校培训学员推荐汇总表{i}.docx"))
            col.attachments += 1
        elif kind < 0.55:
            title = f"{ctx['college']}党总支开展“{ctx['topic']}”主题党日活动"
        else:
            title = f"{term}{ctx['cls']}{ctx['act']}顺利举行"
        body.append(rng.choice(CLOSERS))
        col.attachments += len(attachments)
        art: dict[str, Any] = dict(id=news_id, date=day.isoformat(), author=rng.choice([OFFICE, ORG, ""]),
                                   source=rng.choice([ORG, ORG, ""]), title=title, body=body)
        if attachments:
            art["attachments"] = attachments
        col.articles.append(art)
    return col


# ---------------------------------------------------------------- the replica server, counting bytes
@dataclass
class BenchHit:
    method: str
    path: str
    status: int
    wire_bytes: int  # status line + headers + body, as written to the socket
    body_bytes: int  # Content-Length of the response (0 for 304)
    conditional: bool
    at: float  # time.monotonic() when the response was written


class _CountingWriter:
    """Wraps the handler's socket writer; counts every byte written."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.count = 0

    def write(self, data: bytes) -> int:
        n = self.raw.write(data)
        self.count += len(data)
        return n

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)


class CountingHandler(LoggingHandler):
    """The replica handler, recording method, path, status, bytes on the wire and time per response."""

    def setup(self) -> None:
        super().setup()
        # headers and body are two writes: without this, Nagle + delayed ACK stall keep-alive responses ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wfile = _CountingWriter(self.wfile)  # type: ignore[assignment]

    def handle_one_request(self) -> None:
        self._status: int | None = None
        self._length = 0
        start = self.wfile.count  # type: ignore[attr-defined]
        super().handle_one_request()
        if self._status is not None:
            hit = BenchHit(self.command, self.path, self._status, self.wfile.count - start,  # type: ignore[attr-defined]
                           self._length, "If-None-Match" in self.headers or "If-Modified-Since" in self.headers,
                           time.monotonic())
            with self.server.lock:  # type: ignore[attr-defined]
                self.server.bench_hits.append(hit)  # type: ignore[attr-defined]

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "content-length":
            self._length = int(value)
        super().send_header(keyword, value)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        self._status = int(code) if str(code).isdigit() else 0


class CountingServer(SiteServer):
    """tests.fixtures.site.SiteServer (the replica: ThreadingHTTPServer, HTTP/1.1 keep-alive) with a byte count
    per response, TCP_NODELAY and a listen backlog of 128, so that the server is not what limits a client."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.httpd.RequestHandlerClass = CountingHandler
        # socketserver listens with a backlog of 5: 16 connections opened at once lose SYNs, retried after 1 s
        self.httpd.socket.listen(128)
        self.httpd.bench_hits = []  # type: ignore[attr-defined]

    def take(self) -> list[BenchHit]:
        """The responses since the last call (and forget them)."""
        with self.httpd.lock:  # type: ignore[attr-defined]
            hits, self.httpd.bench_hits = self.httpd.bench_hits, []  # type: ignore[attr-defined]
        return hits


@dataclass
class Traffic:
    requests: int
    wire_bytes: int
    ok_responses: int
    ok_body_bytes: int
    by_status: dict[int, int] = field(default_factory=dict)
    window: float = 0.0  # seconds from the first to the last response

    @classmethod
    def of(cls, hits: list[BenchHit]) -> Traffic:
        by_status: dict[int, int] = {}
        for h in hits:
            by_status[h.status] = by_status.get(h.status, 0) + 1
        ok = [h for h in hits if h.status == 200]
        window = hits[-1].at - hits[0].at if len(hits) > 1 else 0.0
        return cls(len(hits), sum(h.wire_bytes for h in hits), len(ok), sum(h.body_bytes for h in ok),
                   dict(sorted(by_status.items())), window)

    def describe(self) -> str:
        statuses = ", ".join(f"{k}×{v}" for k, v in self.by_status.items())
        return (f"{self.requests} requests ({statuses}), {human_bytes(self.wire_bytes)} on the wire, "
                f"{self.ok_responses} × 200 with {human_bytes(self.ok_body_bytes)} of body")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# ---------------------------------------------------------------- subprocesses that never outlive the bench
class Procs:
    """Starts subprocesses in their own session and kills each one's process group on close()."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []

    def popen(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def run(self, cmd: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Like subprocess.run(capture_output=True, text=True), killing the whole group on timeout."""
        proc = self.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            raise
        self.procs.remove(proc)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop_group(proc)
        self.procs.clear()


def stop_group(proc: subprocess.Popen[Any], grace: float = 10.0) -> int | None:
    """SIGTERM the process group led by ``proc`` (which we started), SIGKILL it after ``grace`` s."""
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    # whatever is left in the group (e.g. a crawl child of a service that just exited) goes too
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    return proc.returncode


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so ``finally`` blocks stop servers and subprocesses."""
    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@dataclass
class BenchSite:
    """A synthetic column built into a temporary directory and served on 127.0.0.1."""

    tmp: Path
    column: Column
    manifest: dict[str, Any]
    server: CountingServer
    procs: Procs

    def write_sources(self, source: str, **extra: str) -> Path:
        """A sources.toml with the one source ``source`` for this column (``extra``: e.g. schedule="2s")."""
        path = self.tmp / "sources.toml"
        lines = [f'name = "{source}"', 'title = "党校工作动态 (bench)"',
                 f'list_url = "{self.server.base}/dxgz/dxgzdt.htm"', 'column = "党校工作动态"',
                 *(f'{key} = "{value}"' for key, value in extra.items())]
        path.write_text("[[source]]\n" + "\n".join(lines) + "\n", encoding="utf-8")
        return path

    def env(self, db: Path, sources: Path, **extra: str) -> dict[str, str]:
        """The project's environment for a crawl or the service on this column: no delay, SQLite ``db``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SCRAPY_", "PUBLIC_URL"))}
        env.update({"DATABASE_URL": f"sqlite:///{db}", "SOURCES_FILE": str(sources), "CRAWL_DELAY": "0",
                    "LOG_LEVEL": "INFO", "FEEDS_DIR": str(self.tmp / "feeds"),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
        env.update(extra)
        return env


@contextlib.contextmanager
def served_synthetic_column(articles: int, name: str, keep: bool = False) -> Iterator[BenchSite]:
    """Build and serve a synthetic column; afterwards stop the server and every subprocess (also on Ctrl-C or
    SIGTERM) and remove the directory unless ``keep``."""
    import shutil
    import tempfile

    from tests.fixtures.site import build_site

    tmp = Path(tempfile.mkdtemp(prefix=f"ghu-feeds-bench-{name}-"))
    procs = Procs()
    server: CountingServer | None = None
    try:
        with sigterm_as_interrupt():
            column = synthetic_column(articles)
            manifest = build_site(tmp / "site", articles=column.articles)
            server = CountingServer(tmp / "site").start()
            yield BenchSite(tmp, column, manifest, server, procs)
    finally:
        if server is not None:
            server.stop()
        procs.close()
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- /proc readings (Linux)
@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    cpu: float  # user + system seconds of the process itself (all its threads)
    children_cpu: float  # user + system seconds of its children it has waited for (reaped)
    rss: int  # bytes


def proc_stat(pid: int) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields after "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime ... rss at index 21
    ticks = [int(x) for x in fields[11:15]]
    return ProcStat(pid, int(fields[1]), (ticks[0] + ticks[1]) / CLK_TCK, (ticks[2] + ticks[3]) / CLK_TCK,
                    int(fields[21]) * PAGE_SIZE)


def peak_rss(pid: int) -> int | None:
    """VmHWM: the highest resident set size the process has had, in bytes."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def pss(pid: int) -> int | None:
    """Proportional set size in bytes (shared pages divided among the processes sharing them)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def children_of(pid: int) -> list[int]:
    """Direct children, from /proc/PID/task/*/children."""
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as fh:
                kids.extend(int(x) for x in fh.read().split())
    return kids


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = children_of(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(children_of(child))
    return out


class TreeSampler(threading.Thread):
    """Samples a process tree every ``interval`` s: peak RSS (VmHWM), parent and first sighting of each process."""

    def __init__(self, root: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True, name="tree-sampler")
        self.root = root
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self.parents: dict[int, int] = {}
        self.first_seen: dict[int, float] = {}
        self.last_seen: dict[int, float] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        while True:
            for pid in [self.root, *descendants(self.root)]:
                hwm = peak_rss(pid)
                st = proc_stat(pid)
                if hwm is None or st is None:
                    continue
                now = time.monotonic()
                if pid not in self.first_seen:
                    self.first_seen[pid] = now
                    self.parents[pid] = st.ppid
                self.last_seen[pid] = now
                self.peaks[pid] = max(hwm, self.peaks.get(pid, 0))
            if self.halt.wait(self.interval):
                return

    def stop(self) -> None:
        self.halt.set()
        self.join(5)


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"
