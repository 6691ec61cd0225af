"""HTTP/1.1 server for the published feed files, embedded in the scheduler process.

Why not http.server or a framework: this serves a handful of static, rarely changing
files to feed readers that poll often and mostly get 304s.  An asyncio ``Protocol``
that answers from precomputed bytes (see :mod:`feeds.http_files`) does a few dict
lookups and one ``transport.write`` per request, which is several times faster than
stdlib ``http.server`` and needs no extra dependency.  Dynamic endpoints (``/healthz``,
``/metrics``) call back into the application through plain callables run in a thread
pool, so the server knows nothing about the database.

Usage::

    server = FeedServer(feeds_dir, "127.0.0.1", 8080, cache_max_age=900,
                        health=check_health, metrics=render_metrics)
    host, port = server.start_in_thread()
    ...
    server.reload()      # after publishing (it also polls once per second)
    server.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote_to_bytes

from feeds.http_files import SERVER_HEADER, FileEntry, FileTable, Representation, http_date

log = logging.getLogger(__name__)

HealthFn = Callable[[], tuple[int, dict[str, Any]]]
MetricsFn = Callable[[], str]

MAX_REQUEST_LINE = 8192
MAX_HEAD = 16384
MAX_HEADERS = 100
#: Request bodies up to this size are read and discarded to keep the connection usable.
MAX_DISCARD_BODY = 64 * 1024
DYNAMIC_TTL = 1.0

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_ETAG = re.compile(rb'(?:W/)?("[^"]*")')
_HTTP_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]\Z")
_KIND_GET, _KIND_HEAD, _KIND_304 = 0, 1, 2


def _status_line(code: int) -> bytes:
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {code} {phrase}\r\n".encode("latin-1") + SERVER_HEADER


_STATUS: dict[int, bytes] = {}


def status_line(code: int) -> bytes:
    line = _STATUS.get(code)
    if line is None:
        line = _STATUS[code] = _status_line(code)
    return line


S200, S304 = status_line(200), status_line(304)


def accepts_gzip(value: bytes) -> bool:
    """True if an Accept-Encoding value allows gzip (``q=0`` excludes; ``*`` counts if gzip unlisted)."""
    gzip_q: float | None = None
    star_q: float | None = None
    for item in value.split(b","):
        coding, _, params = item.partition(b";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params.split(b";"):
            key, _, val = param.partition(b"=")
            if key.strip().lower() == b"q":
                try:
                    q = float(val.strip())
                except ValueError:
                    q = 0.0
        if coding in (b"gzip", b"x-gzip"):
            gzip_q = q
        elif coding == b"*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


def match_if_none_match(value: bytes, entry: FileEntry, gz_ok: bool) -> Representation | None:
    """The representation a client's If-None-Match validates (weak comparison), or None.

    A client holding the identity variant may revalidate it even while accepting gzip:
    identity is always an acceptable answer, so we confirm it with a 304 rather than
    resend the whole body compressed.
    """
    preferred = entry.gz if gz_ok and entry.gz is not None else entry.identity
    if value.strip() == b"*":
        return preferred
    tags = _ETAG.findall(value)
    if preferred.etag in tags:
        return preferred
    if preferred is not entry.identity and entry.identity.etag in tags:
        return entry.identity
    return None


def _parse_http_date(value: bytes) -> float | None:
    try:
        return parsedate_to_datetime(value.decode("latin-1")).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class _HttpProtocol(asyncio.Protocol):
    """One client connection: pipelining-safe request parsing and in-order responses.

    Requests are handled strictly one after another from ``buf``; processing stops
    while a dynamic endpoint is pending or the transport's write buffer is full, so
    responses stay ordered and a client that pipelines without reading cannot make
    us buffer unbounded output.
    """

    __slots__ = (
        "srv", "transport", "buf", "last", "started", "write_paused", "paused_since",
        "waiting", "discard", "closing", "reading", "peer", "eof",
    )

    def __init__(self, srv: FeedServer) -> None:
        self.srv = srv
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.last = self.started = self.paused_since = 0.0
        self.write_paused = self.waiting = self.closing = False
        self.reading = True
        self.eof = False
        self.discard = 0
        self.peer: Any = None

    # -- asyncio callbacks -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        self.last = time.monotonic()
        srv = self.srv
        if srv.closing or len(srv.conns) >= srv.max_connections:
            transport.abort()
            self.closing = True
            return
        srv.conns.add(self)
        srv.connections_total += 1
        sock = transport.get_extra_info("socket")
        if sock is not None and srv.sndbuf:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, srv.sndbuf)
        if srv.access_log:
            self.peer = transport.get_extra_info("peername")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.srv.conns.discard(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        self.paused_since = time.monotonic()
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()
        if self.buf and self.transport is not None:
            # Not synchronously: we are inside the transport's _write_ready, and closing the
            # transport from there makes CPython 3.11 call connection_lost twice.
            asyncio.get_running_loop().call_soon(self._process)

    def data_received(self, data: bytes) -> None:
        now = self.last = time.monotonic()
        if self.buf:
            self.buf += data
        else:
            self.buf = data
            self.started = now
        self._process()

    def eof_received(self) -> bool | None:
        """Half-closed client: answer every request it already sent, then close."""
        if self.waiting or (self.write_paused and self.buf):
            self.eof = True
            return True  # keep the transport open; _process closes once caught up
        return False  # all answered: asyncio closes after flushing the written responses

    # -- helpers ------------------------------------------------------------
    def _update_reading(self) -> None:
        want = not (self.write_paused or self.waiting or self.closing)
        if want != self.reading and self.transport is not None:
            self.reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def _close(self) -> None:
        """Close after flushing what was written; stop parsing further requests."""
        self.closing = True
        self.buf = b""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection and any unsent output now (RST, no lingering kernel buffers)."""
        self.closing = True
        self.buf = b""
        transport = self.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def _error(self, code: int, keep: bool, head_only: bool = False, extra: bytes = b"") -> None:
        body = f"{code} {HTTPStatus(code).phrase}\n".encode()
        self._send_simple(code, body, b"text/plain; charset=utf-8", keep, head_only, extra)

    def _send_simple(
        self, code: int, body: bytes, ctype: bytes, keep: bool, head_only: bool, extra: bytes = b""
    ) -> None:
        if self.transport is None or self.closing or self.transport.is_closing():
            return
        parts = [
            status_line(code), self.srv.date_line(),
            b"Content-Type: ", ctype, b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\n", extra,
            b"Connection: keep-alive\r\n\r\n" if keep else b"Connection: close\r\n\r\n",
        ]
        if not head_only:
            parts.append(body)
        self.transport.write(b"".join(parts))
        if not keep:
            self._close()

    # -- request handling -------------------------------------------------
    def _process(self) -> None:
        """Handle every complete request in ``buf``, in order, until blocked."""
        transport = self.transport
        while self.buf and not (self.write_paused or self.waiting or self.closing):
            if transport is None or transport.is_closing():  # e.g. the peer reset mid-batch
                self.buf = b""
                return
            buf = self.buf
            if self.discard:
                n = min(self.discard, len(buf))
                self.discard -= n
                self.buf = buf[n:]
                self.started = self.last
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._incomplete(buf)
                break
            if end > MAX_HEAD:
                self._oversized(buf)
                break
            self.buf = rest = buf[end + 4:]
            if rest:
                self.started = self.last
            if end:
                self._handle(buf[:end])
        if self.eof and not self.closing and not self.waiting and not (self.write_paused and self.buf):
            self._close()

    def _incomplete(self, buf: bytes) -> None:
        if len(buf) > MAX_HEAD:
            self._oversized(buf)
        elif b"\n\n" in buf or b"\x00" in buf:
            # Bare-LF framing or binary garbage: it will never become a valid head.
            self._error(400, keep=False)
        elif len(buf) > MAX_REQUEST_LINE and b"\r\n" not in buf[: MAX_REQUEST_LINE + 2]:
            self._error(414, keep=False)

    def _oversized(self, buf: bytes) -> None:
        line_end = buf.find(b"\r\n", 0, MAX_REQUEST_LINE + 2)
        self._error(414 if line_end < 0 else 431, keep=False)

    def _handle(self, head: bytes) -> None:  # noqa: C901 - one linear parse is the point
        srv = self.srv
        srv.requests_total += 1
        if head[:1] in (b"\r", b"\n"):
            head = head.lstrip(b"\r\n")
        lines = head.split(b"\r\n")
        nlines = len(lines)
        # Lone CR/LF or NUL anywhere means a framing we don't understand: refuse.
        if head.count(b"\n") != nlines - 1 or head.count(b"\r") != nlines - 1 or b"\x00" in head:
            return self._error(400, keep=False)
        request_line = lines[0]
        if len(request_line) > MAX_REQUEST_LINE:
            return self._error(414, keep=False)
        parts = request_line.split(b" ")
        if len(parts) != 3:
            return self._error(400, keep=False)
        method, target, version = parts
        if version == b"HTTP/1.1":
            v11 = keep = True
        elif version == b"HTTP/1.0":
            v11 = keep = False
        elif _HTTP_VERSION.match(version):
            return self._error(505, keep=False)
        else:
            return self._error(400, keep=False)
        if nlines > MAX_HEADERS + 1:
            return self._error(431, keep=False)

        inm = ims = ae = conn = clen = None
        hosts = 0
        chunked = False
        for i in range(1, nlines):
            name, sep, value = lines[i].partition(b":")
            if not sep or not name or b" " in name or b"\t" in name:
                return self._error(400, keep=False)
            name = name.lower()
            value = value.strip(b" \t")
            if name == b"host":
                hosts += 1
            elif name == b"if-none-match":
                inm = value if inm is None else inm + b", " + value
            elif name == b"accept-encoding":
                ae = value if ae is None else ae + b", " + value
            elif name == b"if-modified-since":
                ims = value
            elif name == b"connection":
                conn = value.lower() if conn is None else conn + b", " + value.lower()
            elif name == b"content-length":
                if clen is not None and clen != value:
                    return self._error(400, keep=False)
                clen = value
            elif name == b"transfer-encoding":
                chunked = True
        if hosts > 1 or (v11 and hosts == 0):
            return self._error(400, keep=False)
        if conn is not None:
            if b"close" in conn:
                keep = False
            elif not v11 and b"keep-alive" in conn:
                keep = True
        if chunked:
            if clen is not None or not v11:
                return self._error(400, keep=False)
            keep = False  # we don't decode chunked bodies: answer, then close
        elif clen is not None:
            if not clen.isdigit():
                return self._error(400, keep=False)
            size = int(clen)
            if size > MAX_DISCARD_BODY:
                keep = False
            else:
                self.discard = size

        if method == b"GET":
            head_only = False
        elif method == b"HEAD":
            head_only = True
        elif _TOKEN.match(method):
            return self._error(405, keep, extra=b"Allow: GET, HEAD\r\n")
        else:
            return self._error(400, keep=False)

        if target[:1] != b"/":
            lowered = target[:8].lower()
            if lowered.startswith((b"http://", b"https://")):
                slash = target.find(b"/", target.find(b"//") + 2)
                target = target[slash:] if slash >= 0 else b"/"
            else:
                return self._error(400, keep, head_only)
        path = target
        q = path.find(b"?")
        if q >= 0:
            path = path[:q]
        if b"%" in path:
            path = unquote_to_bytes(path)

        entry = srv.table.snapshot.get(path)
        if entry is None:
            if path in srv.dynamic_paths:
                return self._dynamic(path, head_only, keep)
            if srv.access_log:
                self._log(method, target, 404)
            return self._error(404, keep, head_only)

        # -- static file: pick representation, evaluate preconditions -------
        gz = entry.gz
        gz_ok = False
        if gz is not None and ae is not None:
            cached = srv.ae_cache.get(ae)
            if cached is None:
                if len(srv.ae_cache) > 256:
                    srv.ae_cache.clear()
                cached = srv.ae_cache[ae] = accepts_gzip(ae)
            gz_ok = cached
        rep = gz if gz_ok and gz is not None else entry.identity
        kind = _KIND_HEAD if head_only else _KIND_GET
        if inm is not None:
            if inm == rep.etag:
                kind = _KIND_304
            else:
                matched = match_if_none_match(inm, entry, gz_ok)
                if matched is not None:
                    rep, kind = matched, _KIND_304
        elif ims is not None:
            since = srv.ims_cache.get(ims)
            if since is None:
                if len(srv.ims_cache) > 256:
                    srv.ims_cache.clear()
                since = srv.ims_cache[ims] = _parse_http_date(ims) or -1.0
            if since >= 0 and entry.mtime <= since:
                kind = _KIND_304
        if srv.access_log:
            self._log(method, target, 304 if kind == _KIND_304 else 200)
        self._send_rep(rep, kind, keep, v11)

    def _send_rep(self, rep: Representation, kind: int, keep: bool, v11: bool) -> None:
        """Write a file response; the common keep-alive HTTP/1.1 case is a cached bytes object."""
        srv = self.srv
        date = srv.date_line()
        if rep.cache_sec != srv.date_sec:
            rep.cache_sec = srv.date_sec
            rep.cache_get = rep.cache_head = rep.cache_304 = b""
        transport = self.transport
        if transport is None:
            return
        if keep and v11:
            if kind == _KIND_GET:
                data = rep.cache_get
                if not data:
                    data = rep.cache_get = b"".join((S200, date, rep.head_200, b"\r\n", rep.body))
            elif kind == _KIND_304:
                data = rep.cache_304
                if not data:
                    data = rep.cache_304 = b"".join((S304, date, rep.head_304, b"\r\n"))
            else:
                data = rep.cache_head
                if not data:
                    data = rep.cache_head = b"".join((S200, date, rep.head_200, b"\r\n"))
            transport.write(data)
            return
        conn = b"Connection: keep-alive\r\n\r\n" if keep else b"Connection: close\r\n\r\n"
        if kind == _KIND_304:
            transport.write(b"".join((S304, date, rep.head_304, conn)))
        elif kind == _KIND_HEAD:
            transport.write(b"".join((S200, date, rep.head_200, conn)))
        else:
            transport.write(b"".join((S200, date, rep.head_200, conn, rep.body)))
        if not keep:
            self._close()

    def _log(self, method: bytes, target: bytes, code: int) -> None:
        if self.peer is None and self.transport is not None:
            self.peer = self.transport.get_extra_info("peername")
        log.debug("%s %s %s %d", self.peer, method.decode("latin-1"), target.decode("latin-1"), code)

    # -- dynamic endpoints --------------------------------------------------
    def _dynamic(self, path: bytes, head_only: bool, keep: bool) -> None:
        srv = self.srv
        cached = srv.dynamic_cached(path)
        if cached is not None:
            return self._send_dynamic(cached, head_only, keep)
        fut = srv.dynamic_fetch(path)
        if fut is None:
            return self._error(503, keep, head_only)
        self.waiting = True
        self._update_reading()
        fut.add_done_callback(lambda f: self._dynamic_done(f, head_only, keep))

    def _dynamic_done(self, fut: asyncio.Future[tuple[int, bytes, bytes]], head_only: bool, keep: bool) -> None:
        self.waiting = False
        if self.closing:
            return
        if fut.cancelled() or fut.exception() is not None:
            self._error(503, keep, head_only)
        else:
            self._send_dynamic(fut.result(), head_only, keep)
        self._update_reading()
        self._process()

    def _send_dynamic(self, result: tuple[int, bytes, bytes], head_only: bool, keep: bool) -> None:
        code, ctype, body = result
        if self.srv.access_log:
            log.debug("%s dynamic %d", self.peer, code)
        self._send_simple(code, body, ctype, keep, head_only, b"Cache-Control: no-store\r\n")


class FeedServer:
    """Serves FEEDS_DIR plus ``/healthz`` and ``/metrics`` over HTTP/1.1.

    Run it either with :meth:`start_in_thread` (own thread and event loop, for the
    APScheduler process) or by awaiting :meth:`serve` inside an existing loop.
    :meth:`stop` works from any thread for both.

    ``cache_max_age`` goes into ``Cache-Control: public, max-age=N``; tie it to the crawl
    interval.  ``health()`` returns ``(status, json-able dict)``, ``metrics()`` Prometheus
    text; both run in a worker thread and their answers are reused for ~1 s.
    ``poll_interval`` (0 = off) is how often FEEDS_DIR is re-stat'ed; ``idle_timeout``
    closes quiet keep-alive connections and ``request_timeout`` bounds how long one
    request may take to arrive (slowloris).  ``sndbuf`` optionally fixes SO_SNDBUF.
    """

    def __init__(
        self,
        feeds_dir: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 8080,
        cache_max_age: int = 300,
        health: HealthFn | None = None,
        metrics: MetricsFn | None = None,
        *,
        poll_interval: float = 1.0,
        idle_timeout: float = 30.0,
        request_timeout: float = 30.0,
        max_connections: int = 4096,
        sndbuf: int = 0,
        backlog: int = 1024,
    ) -> None:
        self.table = FileTable(feeds_dir, cache_max_age)
        self.host = host
        self.port = port
        self.health = health
        self.metrics = metrics
        self.poll_interval = poll_interval
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self.sndbuf = sndbuf
        self.backlog = backlog
        self.dynamic_paths = frozenset((b"/healthz", b"/metrics"))

        self.conns: set[_HttpProtocol] = set()
        self.closing = False
        self.access_log = log.isEnabledFor(logging.DEBUG)
        self.requests_total = 0
        self.connections_total = 0
        self.ae_cache: dict[bytes, bool] = {}
        self.ims_cache: dict[bytes, float] = {}
        self.date_sec = -1
        self._date_line = b""

        self._address: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._dyn_cache: dict[bytes, tuple[float, tuple[int, bytes, bytes]]] = {}
        self._dyn_inflight: dict[bytes, asyncio.Future[tuple[int, bytes, bytes]]] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self._polling = False
        self._next_poll = 0.0

    # -- public API ---------------------------------------------------------
    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) actually bound, once serving."""
        return self._address

    def reload(self) -> bool:
        """Re-read FEEDS_DIR now (thread-safe); True if anything changed.

        The publisher calls this right after writing so new items are visible without
        waiting for the once-a-second poll.  Runs in the caller's thread: gzip work
        never blocks the event loop.
        """
        return self.table.reload()

    def start_in_thread(self, timeout: float = 10.0) -> tuple[str, int]:
        """Start serving in a daemon thread with its own event loop; returns the bound address."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            try:
                asyncio.run(self.serve(ready=ready.set))
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()

        self._stop_requested.clear()
        self._thread = threading.Thread(target=main, name="feed-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            self.stop()
            raise TimeoutError("feed server did not start")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        if self._address is None:
            raise RuntimeError("feed server started without reporting its address")
        return self._address

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and all connections; join the server thread if we own one."""
        self._stop_requested.set()
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(event.set)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if not thread.is_alive():
                self._thread = None

    async def serve(self, *, ready: Callable[[], None] | None = None) -> None:
        """Serve until :meth:`stop` is called (or the task is cancelled)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop_event = asyncio.Event()
        self.closing = False
        self._executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="feed-server")
        server: asyncio.base_events.Server | None = None
        try:
            await loop.run_in_executor(self._executor, self.table.reload)
            server = await loop.create_server(
                lambda: _HttpProtocol(self), self.host, self.port,
                reuse_address=True, backlog=self.backlog,
            )
            sockname = server.sockets[0].getsockname()
            self._address = (sockname[0], sockname[1])
            log.info("feed server listening on http://%s:%d/ (%s)", sockname[0], sockname[1], self.table.root)
            self._timers.append(loop.call_later(1.0, self._tick))
            if ready is not None:
                ready()
            if self._stop_requested.is_set():
                self._stop_event.set()
            await self._stop_event.wait()
        finally:
            await self._shutdown(server)

    # -- internals ------------------------------------------------------------
    async def _shutdown(self, server: asyncio.base_events.Server | None) -> None:
        self.closing = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if server is not None:
            server.close()
        for conn in list(self.conns):
            conn._close()
        deadline = time.monotonic() + 1.0
        while self.conns and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.conns):  # clients that don't read their responses
            conn.abort()
        self.conns.clear()
        if server is not None:
            await server.wait_closed()
        for fut in self._dyn_inflight.values():
            fut.cancel()
        self._dyn_inflight.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._loop = None
        self._stop_event = None
        self._stop_requested.clear()  # a stop() before serve() started is honoured; later ones reset
        log.info("feed server stopped")

    def date_line(self) -> bytes:
        """``Date:`` header for the current second, rebuilt at most once per second."""
        now = int(time.time())
        if now != self.date_sec:
            self.date_sec = now
            self._date_line = f"Date: {http_date(now)}\r\n".encode()
        return self._date_line

    def _tick(self) -> None:
        """Once a second: expire idle/slow connections, poll FEEDS_DIR, refresh log level."""
        loop = self._loop
        if loop is None or self.closing:
            return
        self._timers = [loop.call_later(1.0, self._tick)]
        self.access_log = log.isEnabledFor(logging.DEBUG)
        now = time.monotonic()
        for conn in list(self.conns):
            if conn.closing or conn.waiting:
                continue
            if conn.write_paused:
                if now - conn.paused_since > self.idle_timeout:
                    conn.abort()  # client stopped reading
            elif conn.buf or conn.discard:
                if now - conn.started > self.request_timeout:
                    conn._error(408, keep=False)
            elif now - conn.last > self.idle_timeout:
                conn._close()
        if self.poll_interval > 0 and not self._polling and self._executor and now >= self._next_poll:
            self._next_poll = now + self.poll_interval
            self._polling = True
            fut = loop.run_in_executor(self._executor, self.table.reload)
            fut.add_done_callback(self._poll_done)

    def _poll_done(self, fut: asyncio.Future[bool]) -> None:
        self._polling = False
        if not fut.cancelled() and fut.exception() is not None:
            log.error("feed directory poll failed", exc_info=fut.exception())

    def dynamic_cached(self, path: bytes) -> tuple[int, bytes, bytes] | None:
        hit = self._dyn_cache.get(path)
        if hit is not None and self._loop is not None and hit[0] > self._loop.time():
            return hit[1]
        return None

    def dynamic_fetch(self, path: bytes) -> asyncio.Future[tuple[int, bytes, bytes]] | None:
        """Run the endpoint's callable in the pool; concurrent requests share one call."""
        fut = self._dyn_inflight.get(path)
        if fut is not None:
            return fut
        loop, executor = self._loop, self._executor
        if loop is None or executor is None:
            return None
        render = self._render_health if path == b"/healthz" else self._render_metrics
        try:
            fut = loop.run_in_executor(executor, render)
        except RuntimeError:  # executor shut down
            return None
        self._dyn_inflight[path] = fut

        def store(done: asyncio.Future[tuple[int, bytes, bytes]]) -> None:
            self._dyn_inflight.pop(path, None)
            if not done.cancelled() and done.exception() is None and self._loop is not None:
                self._dyn_cache[path] = (self._loop.time() + DYNAMIC_TTL, done.result())

        fut.add_done_callback(store)
        return fut

    def _render_health(self) -> tuple[int, bytes, bytes]:
        ctype = b"application/json"
        if self.health is None:
            return 200, ctype, b'{"status": "ok"}\n'
        try:
            code, payload = self.health()
            code = int(code)
            if not 200 <= code <= 599:
                raise ValueError(f"bad status code {code}")
            body = json.dumps(payload, ensure_ascii=False, default=str).encode() + b"\n"
        except Exception as exc:
            log.exception("health check callable failed")
            body = json.dumps({"status": "error", "error": type(exc).__name__}).encode() + b"\n"
            return 500, ctype, body
        return code, ctype, body

    def _render_metrics(self) -> tuple[int, bytes, bytes]:
        ctype = b"text/plain; version=0.0.4; charset=utf-8"
        text = ""
        code = 200
        if self.metrics is not None:
            try:
                text = self.metrics()
                if text and not text.endswith("\n"):
                    text += "\n"
            except Exception:
                log.exception("metrics callable failed")
                code, text = 500, "# metrics callable failed\n"
        own = (
            "# HELP feed_server_requests_total HTTP requests parsed by the feed server.\n"
            "# TYPE feed_server_requests_total counter\n"
            f"feed_server_requests_total {self.requests_total}\n"
            "# HELP feed_server_connections_total Connections accepted by the feed server.\n"
            "# TYPE feed_server_connections_total counter\n"
            f"feed_server_connections_total {self.connections_total}\n"
            "# HELP feed_server_open_connections Currently open client connections.\n"
            "# TYPE feed_server_open_connections gauge\n"
            f"feed_server_open_connections {len(self.conns)}\n"
            "# HELP feed_server_files Files currently served from the feeds directory.\n"
            "# TYPE feed_server_files gauge\n"
            f"feed_server_files {self.table.file_count}\n"
        )
        return code, ctype, (text + own).encode()
