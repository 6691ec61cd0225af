"""The article worker: a forked process that parses and stores a big run's items, so a backfill uses two cores.

A crawl is CPU-bound when the source answers fast (a local mirror, ``CRAWL_DELAY=0``): downloading with
Scrapy costs ~0.7 ms a page, parsing and storing an article page as much again. During a big run (a
backfill) the storage pipeline hands every item -- fetched article pages, list entries, 304/404 checks --
to ONE worker, in order, and the worker runs the pipeline's own code on them in its own database session:
it is then the run's only writer, so there are no lock waits between the two processes.

Items travel in pickled batches over a private pipe between the two processes (nothing else can write to
it, so unpickling is safe) (one ``write`` per ``BATCH_ITEMS`` items, or ``FLUSH_SECONDS``
after a batch's first item); a full pipe makes the crawl wait (backpressure). At the end of the run the
pipeline sends a stop mark, the worker commits and answers with its counts, drift figures and failure.

Crash safety: the worker is forked before the crawl's first request, while the crawl process has a single
thread and no open database connection (it is never forked later; with more threads there is no worker and
the pipeline does the work itself). It ignores SIGINT/SIGTERM (the crawl stops it with the stop mark),
asks Linux to SIGKILL it when its parent dies and polls ``os.getppid()`` too, so a killed crawl never
leaves it behind; what it had not committed is rolled back by the database and fetched again next run.
A worker that dies fails the run (the next run fetches what it had not stored); the items still in the
crawl process are then stored there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import pickle  # nosec B403
import select
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

BATCH_ITEMS = 32  # items per write to the pipe
FLUSH_SECONDS = 0.2  # a batch's first item waits at most this long for the rest
PIPE_BYTES = 1 << 20  # pipe buffer asked of Linux (F_SETPIPE_SZ): ~170 article pages in flight
NICE = 10  # CPU priority below the crawl's: parsing can wait, a download's timers should not
POLL_SECONDS = 0.2  # how often the worker checks that its parent is alive
DRAIN_SECONDS = 120.0  # how long the crawl waits for the worker at the end of a run
_HEADER = 8  # bytes of a frame's length prefix
_F_SETPIPE_SZ = 1031


@dataclass
class WorkerResult:
    counts: Counter[str] = field(default_factory=Counter)
    drifted: int = 0
    failure: str | None = None


class ArticleWorker:
    """The crawl process's handle on the worker: batches items into the pipe, collects the result."""

    def __init__(self, process: Any, tasks: int, results: int) -> None:
        self.process = process
        self.tasks = tasks  # write end of the items pipe
        self.results = results  # read end of the result pipe
        self.buffer: list[Any] = []
        self.result: WorkerResult | None = None
        self.sent = 0

    @classmethod
    def fork(cls, ctx: Any, database_url: str) -> ArticleWorker | None:
        """Fork the worker for this run's context; None where forking is not safe (the caller does the work)."""
        if not hasattr(os, "fork") or threading.active_count() > 1:
            logger.info("%s: not forking an article worker (%s); parsing in the crawl process", ctx.source.name,
                        "no fork() here" if not hasattr(os, "fork") else f"{threading.active_count()} threads")
            return None
        tasks_r, tasks_w = os.pipe()
        results_r, results_w = os.pipe()
        with contextlib.suppress(OSError, AttributeError):
            import fcntl

            fcntl.fcntl(tasks_w, _F_SETPIPE_SZ, PIPE_BYTES)
        process = multiprocessing.get_context("fork").Process(
            target=_worker_main, name=f"articles-{ctx.source.name}", daemon=True,
            args=(ctx, database_url, tasks_r, results_w, (tasks_w, results_r), os.getpid()))
        try:
            _flush_std_streams()  # what the crawl process buffered must not be written twice
            process.start()
        except OSError as exc:  # e.g. out of memory or processes: the crawl process does the work itself
            for fd in (tasks_w, results_r):
                os.close(fd)
            logger.warning("%s: could not fork an article worker (%s); parsing in the crawl process",
                           ctx.source.name, exc)
            return None
        finally:
            os.close(tasks_r)
            os.close(results_w)
        logger.info("%s: big run: parsing and storing in an article worker process (pid %s)", ctx.source.name,
                    process.pid)
        return cls(process, tasks_w, results_r)

    # ------------------------------------------------------------------ the crawl process's side
    def submit(self, item: Any) -> list[Any]:
        """Queue one item; return the items that could not be handed over (the worker is gone)."""
        if self.result is not None:
            return [item]
        self.buffer.append(item)
        return self.flush() if len(self.buffer) >= BATCH_ITEMS else []

    def flush(self) -> list[Any]:
        """Write the buffered items to the pipe (waits while it is full); return them if the worker is gone."""
        batch, self.buffer = self.buffer, []
        if not batch or self.result is not None:
            return batch
        try:
            _write_frame(self.tasks, pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))
        except OSError as exc:  # EPIPE: it died
            self._gone(f"article worker died ({type(exc).__name__}: {exc})")
            return batch
        self.sent += len(batch)
        return []

    def finish(self, timeout: float = DRAIN_SECONDS) -> tuple[WorkerResult, list[Any]]:
        """Send the stop mark, wait (bounded) for the worker to store everything it was given.

        Returns its figures and the items it never received (to be stored by the caller).
        """
        unsent = self.flush()
        if self.result is None:
            try:
                _write_frame(self.tasks, pickle.dumps(None))
            except OSError as exc:
                self._gone(f"article worker died ({type(exc).__name__}: {exc})")
            else:
                self.result = self._read_result(timeout)
        self._close()
        return self.result or WorkerResult(failure="article worker: no result"), unsent

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
        self._close()

    def _read_result(self, timeout: float) -> WorkerResult:
        deadline = time.monotonic() + timeout
        try:
            payload = _read_frame(self.results, deadline)
        except (OSError, EOFError, TimeoutError) as exc:
            self.process.join(1)
            if self.process.is_alive():
                self.process.kill()
                return WorkerResult(failure=f"article worker did not finish within {timeout:g} s")
            return WorkerResult(failure=f"article worker exited with code {self.process.exitcode} before storing "
                                        f"its items ({type(exc).__name__})")
        counts, drifted, failure = pickle.loads(payload)  # noqa: S301  # nosec B301
        self.process.join(5)
        return WorkerResult(Counter(counts), drifted, failure)

    def _gone(self, why: str) -> None:
        self.process.join(1)
        code = self.process.exitcode
        self.result = WorkerResult(failure=f"{why}; exit code {code}; its uncommitted items are fetched next run")
        logger.error("%s; storing the rest of the run in the crawl process", why)

    def _close(self) -> None:
        for fd in (self.tasks, self.results):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.tasks = self.results = -1
        if self.process.is_alive():
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)


# ---------------------------------------------------------------------- the worker process
def _worker_main(ctx: Any, database_url: str, tasks: int, results: int, parents_fds: tuple[int, ...],
                 parent_pid: int) -> None:
    for fd in parents_fds:
        os.close(fd)  # so that the crawl process sees EOF/EPIPE when one side is gone
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)  # the crawl's event loop is not running here
    _die_with_parent()
    with contextlib.suppress(OSError):
        os.nice(NICE)  # the crawl process (downloads, politeness timers) and the service come first
    if os.getppid() != parent_pid:
        os._exit(1)
    from crawler.pipelines import COMMIT_SECONDS, StorePipeline
    from db.engine import make_engine, session_factory

    engine = make_engine(database_url)
    run = dataclasses.replace(ctx, factory=session_factory(engine), counts=Counter(), failure=None, drifted=0,
                              worker=None)
    pipeline = StorePipeline(timers=False)
    holder = _SpiderStub(run)
    first_at: float | None = None  # when the open transaction got its first item
    try:
        while True:
            wait = POLL_SECONDS if first_at is None else \
                min(POLL_SECONDS, max(0.0, first_at + COMMIT_SECONDS - time.monotonic()))
            batch: list[Any] | None = []
            if select.select([tasks], [], [], wait)[0]:
                batch = pickle.loads(_read_frame(tasks, None))  # noqa: S301  # nosec B301
            if os.getppid() != parent_pid:  # the crawl was killed: what is not committed is rolled back
                os._exit(1)
            if batch is None:
                break
            for item in batch:
                try:
                    pipeline.process_item(item, holder)
                except Exception:
                    logging.getLogger("scrapy.core.scraper").exception("Error processing %r", item)
                if pipeline.session is None:
                    first_at = None
                elif first_at is None:
                    first_at = time.monotonic()
            if first_at is not None and time.monotonic() - first_at >= COMMIT_SECONDS:
                _commit(pipeline)
                first_at = None
        _commit(pipeline)
    except Exception as exc:
        logger.exception("article worker failed")
        run.fail(f"article worker: {type(exc).__name__}: {exc}")
    with contextlib.suppress(Exception):
        engine.dispose()
    with contextlib.suppress(OSError):
        _write_frame(results, pickle.dumps((dict(run.counts), run.drifted, run.failure)))
    _flush_std_streams()
    os._exit(0)


class _SpiderStub:
    """What the pipeline reads of a spider."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx


def _commit(pipeline: Any) -> None:
    try:
        pipeline.commit()
    except Exception:  # the run is already marked failed by the pipeline
        logging.getLogger("crawler.pipelines").exception("storing a batch of items failed")


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies (the getppid poll is the fallback)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


# ---------------------------------------------------------------------- frames on a pipe
def _write_frame(fd: int, payload: bytes) -> None:
    view = memoryview(len(payload).to_bytes(_HEADER, "little") + payload)
    while view:
        view = view[os.write(fd, view):]


def _read_frame(fd: int, deadline: float | None) -> bytes:
    size = int.from_bytes(_read_exact(fd, _HEADER, deadline), "little")
    return _read_exact(fd, size, deadline)


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("no answer from the article worker")
        chunk = os.read(fd, min(size, PIPE_BYTES))
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
