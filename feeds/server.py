"""The feed server: :class:`feeds.asgi.FeedApp` served by uvicorn (httptools, uvloop) in a thread.

Why uvicorn in a thread of the service: HTTP parsing, framing, keep-alive and pipelining are uvicorn's and
httptools' job, not ours; a thread keeps one process to run and lets ``reload()`` be a plain call after each
publish. uvicorn never installs signal handlers off the main thread, so SIGTERM stays with the service.
:class:`_GuardedHttpTools` adds the limits uvicorn's httptools protocol lacks: a bound on the request
line and head size (414/431) and on the time a request head may take to arrive (408, slowloris).

Usage::

    server = FeedServer(feeds_dir, "127.0.0.1", 8080, cache_max_age=900,
                        health=check_health, metrics=render_metrics,
                        session_factory=factory, public_url="https://feeds.example/",  # enables /search
                        extra_routes=[Mount("/media", app=media_app)])              # more dynamic routes
    host, port = server.start_in_thread()
    server.reload()      # after publishing (it also polls once per second)
    server.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from feeds.asgi import NOT_FOUND, FeedApp, accepts_gzip
from feeds.filetable import FileTable

log = logging.getLogger(__name__)

HealthFn = Callable[[], tuple[int, dict[str, Any]]]
MetricsFn = Callable[[], str]

MAX_REQUEST_LINE = 8192
MAX_HEAD = 16384
MAX_HEADERS = 100
DYNAMIC_TTL = 1.0

__all__ = ["FeedServer", "accepts_gzip"]


class _Reject(Exception):
    """Raised inside an httptools callback: the parser stops and the connection gets ``code``."""


class _GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol plus size limits and a head timeout (class attributes set per server).

    Timeouts are checked by :meth:`check_timeouts`, which the server calls for every connection a few times
    a second: a timer per request would cost the hot path more than the whole ASGI answer does.
    """

    request_timeout = 30.0
    idle_timeout = 30.0
    counters: dict[str, int] = {}

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.counters["connections"] = self.counters.get("connections", 0) + 1
        self._reject_code = 0
        self._head_bytes = 0
        self._in_head = False
        self._eof = False
        self._fresh = True  # no request begun yet: closed like an idle keep-alive connection
        self._since = self.loop.time()

    def check_timeouts(self, now: float) -> None:
        if self.transport.is_closing():
            return
        if self._in_head and now - self._since > self.request_timeout:
            self._reject_code = 408  # slowloris: the head must arrive within request_timeout
            self.send_400_response("")
        elif self._fresh and now - self._since > self.idle_timeout:
            self.transport.close()

    def eof_received(self) -> bool | None:  # type: ignore[override]
        """Half-closed client: answer what it already sent (pipelined requests included), then close."""
        if self.pipeline or (self.cycle is not None and not self.cycle.response_complete):
            self._eof = True
            return True
        return None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._eof and not self.pipeline and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > 4 * (MAX_HEAD + MAX_REQUEST_LINE):
                self._reject_code = 431
                self.send_400_response("")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._fresh = False
        self._head_bytes = 0
        self._since = self.loop.time()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_REQUEST_LINE:
            self._reject_code = 414
            raise _Reject

    def on_headers_complete(self) -> None:
        self._in_head = False
        headers = self.headers
        if len(headers) > MAX_HEADERS or sum(len(n) + len(v) + 4 for n, v in headers) > MAX_HEAD:
            self._reject_code = 431
            raise _Reject
        if self.parser.get_http_version() not in ("1.0", "1.1"):
            self._reject_code = 505
            raise _Reject
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """Every parse error ends here (uvicorn's hook): answer with our status and close."""
        code = self._reject_code or 400
        self._in_head = False
        if self.transport.is_closing():
            return
        body = f"{code} {http.HTTPStatus(code).phrase}\n".encode()
        self.transport.write(
            f"HTTP/1.1 {code} {http.HTTPStatus(code).phrase}\r\n".encode()
            + b"".join(n + b": " + v + b"\r\n" for n, v in self.server_state.default_headers)
            + b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n" + body)
        self.transport.close()


class _Cached:
    """A callable run in the thread pool, its answer reused for ``ttl`` seconds; concurrent callers share a run."""

    def __init__(self, fn: Callable[[], tuple[int, bytes, str]], ttl: float = DYNAMIC_TTL) -> None:
        self.fn = fn
        self.ttl = ttl
        self._value: tuple[float, tuple[int, bytes, str]] | None = None
        self._running: asyncio.Future[tuple[int, bytes, str]] | None = None

    async def endpoint(self, request: Request) -> Response:
        now = time.monotonic()
        if self._value is not None and self._value[0] > now:
            code, body, ctype = self._value[1]
        else:
            if self._running is None:
                self._running = asyncio.ensure_future(run_in_threadpool(self.fn))
                try:
                    result = await self._running
                finally:
                    self._running = None
                self._value = (time.monotonic() + self.ttl, result)
            else:
                result = await self._running
            code, body, ctype = result
        return Response(body, code, media_type=ctype, headers={"cache-control": "no-store"})


async def _not_found(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send(NOT_FOUND[0])
        await send(NOT_FOUND[1])


class FeedServer:
    """Serves FEEDS_DIR plus ``/healthz``, ``/metrics``, search (with a session factory) and ``extra_routes``.

    Run it with :meth:`start_in_thread` (own thread and uvloop event loop, for the APScheduler process) or
    by awaiting :meth:`serve` inside an existing loop; :meth:`stop` works from any thread for both.

    ``cache_max_age`` goes into ``Cache-Control: public, max-age=N``; tie it to the crawl interval.
    ``health()`` returns ``(status, json-able dict)``, ``metrics()`` Prometheus text; both run in a worker
    thread and their answers are reused for ~1 s. ``session_factory`` (+ ``public_url`` for the feeds' own
    links) turns on ``/search``. ``extra_routes``: Starlette routes or mounts tried after the published
    files and the built-in routes (a published file wins over a route with the same path).
    ``poll_interval`` (0 = off) is how often FEEDS_DIR is re-stat'ed; ``idle_timeout`` closes quiet
    keep-alive connections, ``request_timeout`` bounds how long one request head may take to arrive.
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
        session_factory: Any = None,
        public_url: str | None = None,
        extra_routes: Sequence[BaseRoute] = (),
        poll_interval: float = 1.0,
        idle_timeout: float = 30.0,
        request_timeout: float = 30.0,
        max_connections: int = 4096,
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
        self.backlog = backlog
        self.counters: dict[str, int] = {}
        self.protocol = type("GuardedHttpTools", (_GuardedHttpTools,), {
            "request_timeout": request_timeout, "idle_timeout": idle_timeout, "counters": self.counters})
        routes: list[BaseRoute] = [
            Route("/healthz", _Cached(self._render_health).endpoint, methods=["GET"]),
            Route("/metrics", _Cached(self._render_metrics).endpoint, methods=["GET"]),
        ]
        if session_factory is not None:
            from feeds.search_routes import search_routes

            routes += search_routes(session_factory, public_url or f"http://{host}:{port}/")
        routes += list(extra_routes)
        self.router = Router(routes, redirect_slashes=False, default=_not_found)
        self.app = FeedApp(self.table, self.router)

        self._uv: uvicorn.Server | None = None
        self._address: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None

    # -- public API ---------------------------------------------------------
    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) actually bound, once serving."""
        return self._address

    @property
    def open_connections(self) -> int:
        return len(self._uv.server_state.connections) if self._uv is not None else 0

    def reload(self) -> bool:
        """Re-read FEEDS_DIR now (thread-safe); True if anything changed.

        The publisher calls this right after writing so new items are visible without waiting for the
        once-a-second poll. Runs in the caller's thread: gzip work never blocks the event loop.
        """
        return self.table.reload()

    def start_in_thread(self, timeout: float = 10.0) -> tuple[str, int]:
        """Start serving in a daemon thread with its own (uvloop) event loop; returns the bound address."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            try:
                with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                    runner.run(self.serve(ready=ready.set))
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
        sock = self._bind()
        config = uvicorn.Config(
            self.app, http=self.protocol, ws="none", lifespan="off", interface="asgi3", log_config=None,
            access_log=False, proxy_headers=False, server_header=False, date_header=True,
            timeout_keep_alive=max(1, round(self.idle_timeout)), limit_concurrency=self.max_connections,
            backlog=self.backlog, timeout_graceful_shutdown=1,
        )
        config.load()
        server = self._uv = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        ticker: asyncio.Task[None] | None = None
        poller: asyncio.Task[None] | None = None
        try:
            await loop.run_in_executor(None, self.table.reload)
            await server.startup(sockets=[sock])
            name = sock.getsockname()
            self._address = (name[0], name[1])
            log.info("feed server listening on http://%s:%d/ (%s)", name[0], name[1], self.table.root)
            ticker = asyncio.create_task(server.main_loop())  # uvicorn's once-a-second Date header
            poller = asyncio.create_task(self._poll_and_sweep(server))
            if ready is not None:
                ready()
            if self._stop_requested.is_set():
                self._stop_event.set()
            await self._stop_event.wait()
        finally:
            await self._shutdown(server, ticker, poller, sock)

    # -- internals ------------------------------------------------------------
    def _bind(self) -> socket.socket:
        """Bind ourselves: a port in use raises OSError here (uvicorn would sys.exit), port 0 works."""
        family, kind, proto, _, addr = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(self.backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    async def _shutdown(self, server: uvicorn.Server, ticker: asyncio.Task[None] | None,
                        poller: asyncio.Task[None] | None, sock: socket.socket) -> None:
        server.should_exit = True
        for task in (ticker, poller):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if getattr(server, "started", False):
            loop = asyncio.get_running_loop()
            # Clients that don't read their responses would hold uvicorn's graceful close forever: after a
            # 1 s grace, drop them (RST).
            killer = loop.call_later(1.0, self._abort_connections, server)
            try:
                await server.shutdown(sockets=[sock])
            finally:
                killer.cancel()
            self._abort_connections(server)
        sock.close()
        self._uv = None
        self._loop = None
        self._stop_event = None
        self._stop_requested.clear()  # a stop() before serve() started is honoured; later ones reset
        log.info("feed server stopped")

    @staticmethod
    def _abort_connections(server: uvicorn.Server) -> None:
        server.force_exit = True
        for conn in list(server.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.abort()
            server.server_state.connections.discard(conn)

    async def _poll_and_sweep(self, server: uvicorn.Server) -> None:
        """Four times a second: connection timeouts; every ``poll_interval``: re-stat FEEDS_DIR (in a thread)."""
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self.poll_interval
        while True:
            await asyncio.sleep(0.25)
            now = loop.time()
            for conn in list(server.server_state.connections):
                check = getattr(conn, "check_timeouts", None)
                if check is not None:
                    check(now)
            if self.poll_interval > 0 and now >= next_poll:
                next_poll = now + self.poll_interval
                try:
                    await loop.run_in_executor(None, self.table.poll)
                except Exception:
                    log.exception("feed directory poll failed")

    def _render_health(self) -> tuple[int, bytes, str]:
        ctype = "application/json"
        if self.health is None:
            return 200, b'{"status": "ok"}\n', ctype
        try:
            code, payload = self.health()
            code = int(code)
            if not 200 <= code <= 599:
                raise ValueError(f"bad status code {code}")
            body = json.dumps(payload, ensure_ascii=False, default=str).encode() + b"\n"
        except Exception as exc:
            log.exception("health check callable failed")
            return 500, json.dumps({"status": "error", "error": type(exc).__name__}).encode() + b"\n", ctype
        return code, body, ctype

    def _render_metrics(self) -> tuple[int, bytes, str]:
        ctype = "text/plain; version=0.0.4; charset=utf-8"
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
            "# HELP feed_server_requests_total HTTP requests answered by the feed server.\n"
            "# TYPE feed_server_requests_total counter\n"
            f"feed_server_requests_total {self.app.requests_total}\n"
            "# HELP feed_server_connections_total Connections accepted by the feed server.\n"
            "# TYPE feed_server_connections_total counter\n"
            f"feed_server_connections_total {self.counters.get('connections', 0)}\n"
            "# HELP feed_server_open_connections Currently open client connections.\n"
            "# TYPE feed_server_open_connections gauge\n"
            f"feed_server_open_connections {self.open_connections}\n"
            "# HELP feed_server_files Files currently served from the feeds directory.\n"
            "# TYPE feed_server_files gauge\n"
            f"feed_server_files {self.table.file_count}\n"
        )
        return code, (text + own).encode(), ctype


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] ships it; plain asyncio still works
        return asyncio.new_event_loop
    return uvloop.new_event_loop
