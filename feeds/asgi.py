"""The feed server's ASGI application: published files from precomputed messages, everything else routed.

Why a thin raw ASGI layer in front of Starlette: a feed reader's poll (a 200 or a 304 for a published file)
is nearly all the traffic, and answering it from ready-made message dicts costs a dict lookup and two
``send`` calls; a framework's request objects and routing would halve the rate (issue 12's measurements).
Anything not in the file table — ``/healthz``, ``/metrics``, search, routes other modules mount — goes to a
Starlette router, where per-request cost does not matter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any

from feeds import filters
from feeds.filetable import EMPTY_BODY, FileEntry, FileTable, Representation, build_entry

log = logging.getLogger("feeds.server")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FILTER_CACHE_SIZE = 512


def _plain(status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> tuple[dict[str, Any],
                                                                                            dict[str, Any]]:
    body = text.encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               (b"server", b"ghu-feeds"), *(extra or [])]
    return {"type": "http.response.start", "status": status, "headers": headers}, {
        "type": "http.response.body", "body": body}


NOT_FOUND = _plain(404, "404 Not Found\n")
NOT_ALLOWED = _plain(405, "405 Method Not Allowed\n", [(b"allow", b"GET, HEAD")])
BAD_HOST = _plain(400, "400 Bad Request: HTTP/1.1 needs exactly one Host header\n", [(b"connection", b"close")])


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


def _etags(value: bytes) -> list[bytes]:
    """Opaque tags of an If-None-Match value, ``W/`` prefixes dropped (weak comparison)."""
    tags = []
    for part in value.split(b","):
        part = part.strip()
        if part.startswith(b"W/"):
            part = part[2:]
        if len(part) >= 2 and part[:1] == b'"' and part[-1:] == b'"':
            tags.append(part)
    return tags


def match_if_none_match(value: bytes, entry: FileEntry, gz_ok: bool) -> Representation | None:
    """The representation a client's If-None-Match validates, or None.

    A client holding the identity variant may revalidate it even while accepting gzip: identity is always
    an acceptable answer, so we confirm it with a 304 rather than resend the whole body compressed.
    """
    preferred = entry.gz if gz_ok and entry.gz is not None else entry.identity
    if value.strip() == b"*":
        return preferred
    tags = _etags(value)
    if preferred.etag in tags:
        return preferred
    if preferred is not entry.identity and entry.identity.etag in tags:
        return entry.identity
    return None


def _parse_http_date(value: bytes) -> float:
    try:
        return parsedate_to_datetime(value.decode("latin-1")).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return -1.0


class FeedApp:
    """ASGI callable: the file table first, then ``router`` (which answers 404 for the rest)."""

    def __init__(self, table: FileTable, router: ASGIApp) -> None:
        self.table = table
        self.router = router
        self.requests_total = 0
        self._ae_cache: dict[bytes, bool] = {}
        self._ims_cache: dict[bytes, float] = {}
        self._filtered: OrderedDict[tuple[Any, ...], FileEntry] = OrderedDict()
        self._inflight: dict[tuple[Any, ...], asyncio.Future[FileEntry]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        self.requests_total += 1
        if log.isEnabledFor(logging.DEBUG):
            send = _logging_send(scope, send)
        inm = ims = ae = None
        hosts = 0
        for name, value in scope["headers"]:
            if name == b"host":
                hosts += 1
            elif name == b"if-none-match":
                inm = value if inm is None else inm + b", " + value
            elif name == b"accept-encoding":
                ae = value if ae is None else ae + b", " + value
            elif name == b"if-modified-since":
                ims = value
        if hosts > 1 or (hosts == 0 and scope["http_version"] == "1.1"):
            await send(BAD_HOST[0])
            await send(BAD_HOST[1])
            return
        entry = self.table.snapshot.get(scope["path"])
        if entry is None and scope["path"] in self.table.on_demand:
            entry = await asyncio.get_running_loop().run_in_executor(None, self.table.entry_on_demand,
                                                                     scope["path"])
        if entry is None:
            await self.router(scope, receive, send)
            return
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            await send(NOT_ALLOWED[0])
            await send(NOT_ALLOWED[1])
            return
        query = scope["query_string"]
        if query and filters.mentions_filters(query):
            kind = filters.feed_kind(scope["path"])
            if kind is not None:
                try:
                    spec = filters.parse_query(query)
                    if spec is not None:
                        entry = await self._filtered_entry(entry, kind, spec)
                except filters.FilterError as exc:
                    start, body = _plain(400, f"400 Bad Request: {exc}\n", [(b"cache-control", b"no-store")])
                    await send(start)
                    await send(body)
                    return
        await self._answer(entry, method == "HEAD", inm, ims, ae, send)

    async def _answer(self, entry: FileEntry, head: bool, inm: bytes | None, ims: bytes | None,
                      ae: bytes | None, send: Send) -> None:
        gz_ok = False
        if ae is not None and entry.gz is not None:
            gz_ok = self._ae_cache.get(ae)  # type: ignore[assignment]
            if gz_ok is None:
                if len(self._ae_cache) > 256:
                    self._ae_cache.clear()
                gz_ok = self._ae_cache[ae] = accepts_gzip(ae)
        rep = entry.gz if gz_ok else entry.identity
        not_modified: Representation | None = None
        if inm is not None:
            not_modified = match_if_none_match(inm, entry, gz_ok)
        elif ims is not None:
            since = self._ims_cache.get(ims)
            if since is None:
                if len(self._ims_cache) > 256:
                    self._ims_cache.clear()
                since = self._ims_cache[ims] = _parse_http_date(ims)
            if since >= 0 and entry.mtime <= since:
                not_modified = rep
        if not_modified is not None:
            await send(not_modified.start_304)
            await send(EMPTY_BODY)
        else:
            await send(rep.start_200)  # type: ignore[union-attr]
            await send(EMPTY_BODY if head else rep.body_msg)  # type: ignore[union-attr]

    async def _filtered_entry(self, entry: FileEntry, kind: str, spec: filters.FilterSpec) -> FileEntry:
        """The filtered variant of ``entry``, cached per (file version, normalized query)."""
        key = (entry.digest, entry.relpath, spec.cache_key(time.time()))
        hit = self._filtered.get(key)
        if hit is not None:
            return hit
        fut = self._inflight.get(key)
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(None, self._build_filtered, entry, kind, spec)
            self._inflight[key] = fut
            try:
                built = await fut
            finally:
                self._inflight.pop(key, None)
            self._filtered[key] = built
            while len(self._filtered) > FILTER_CACHE_SIZE:
                self._filtered.popitem(last=False)
            return built
        return await fut

    def _build_filtered(self, entry: FileEntry, kind: str, spec: filters.FilterSpec) -> FileEntry:
        raw = filters.apply(spec, kind, entry.identity.body)
        return build_entry(entry.relpath, raw, entry.mtime, entry.signature, self.table.max_age)


def _logging_send(scope: Scope, send: Send) -> Send:
    """Access log at DEBUG only (feed readers poll all day: INFO would drown the service log)."""
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            client = scope.get("client")
            log.debug("%s %s %s %d", client[0] if client else "-", scope["method"], scope["path"],
                      message["status"])
        await send(message)
    return wrapped
