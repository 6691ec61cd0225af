"""``/media/…``: the kept copies (MEDIA=keep|serve), as Starlette routes the feed server mounts.

Starlette's FileResponse does Range requests, Last-Modified and HEAD; this adds what a content-addressed
store allows: the SHA-256 as a strong ETag (``304`` on If-None-Match), immutable caching, the type found
in the bytes, and a Content-Disposition carrying the original (Chinese) file name, RFC 6266 style: an
ASCII ``filename`` fallback plus the UTF-8 ``filename*`` of RFC 5987/8187. Copies come from third-party
sites, so they are sandboxed (CSP) and never type-sniffed by browsers.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from db import media as media_db
from settings import AppConfig

PATH_RE = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{64})\.([a-z0-9]{1,5})$")
INLINE_PREFIXES = ("image/", "application/pdf", "text/plain")
CACHE = "public, max-age=31536000, immutable"  # a name is its content: it never changes
SECURITY = {"x-content-type-options": "nosniff", "content-security-policy": "sandbox; default-src 'none'"}
_CACHE_SIZE = 4096


def content_disposition(name: str | None, mime: str, fallback: str) -> str:
    """``inline`` for what browsers show (images, PDF, text), else ``attachment``; both name forms."""
    kind = "inline" if mime.startswith(INLINE_PREFIXES) else "attachment"
    if not name:
        return f'{kind}; filename="{fallback}"'
    ascii_name = name.encode("ascii", "ignore").decode().replace('"', "").replace("\\", "").strip()
    suffix = Path(name).suffix
    if not ascii_name or ascii_name == suffix or ascii_name.startswith("."):
        ascii_name = fallback.rsplit(".", 1)[0][:16] + (suffix if suffix.isascii() else "")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


class MediaFiles:
    """Look-ups of kept files (cached: a file's name and type never change)."""

    def __init__(self, factory: sessionmaker[Session], media_dir: str | Path) -> None:
        self.factory = factory
        self.root = Path(media_dir).resolve()
        self._known: dict[str, tuple[str, str, str | None]] = {}

    def lookup(self, sha: str) -> tuple[str, str, str | None] | None:
        """(relative path, MIME type, original name) of a kept file, or None."""
        if sha in self._known:
            return self._known[sha]
        with self.factory() as s:
            found = media_db.file_by_sha(s, sha)
        if found is None:
            return None
        media, name = found
        if len(self._known) >= _CACHE_SIZE:
            self._known.clear()
        self._known[sha] = (media.path, media.mime_type, name)
        return self._known[sha]

    async def endpoint(self, request: Request) -> Response:
        rel = request.path_params["path"]
        match = PATH_RE.match(rel)
        if match is None or match.group(1) != match.group(2)[:2]:
            return PlainTextResponse("not found\n", status_code=404)
        sha = match.group(2)
        found = await run_in_threadpool(self.lookup, sha)
        if found is None or found[0] != rel:
            return PlainTextResponse("not found\n", status_code=404)
        path = self.root / rel
        if not path.is_file():
            return PlainTextResponse("not found\n", status_code=404)
        _rel, mime, name = found
        etag = f'"{sha}"'
        headers = {"etag": etag, "cache-control": CACHE, **SECURITY}
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        headers["content-disposition"] = content_disposition(name, mime, Path(rel).name)
        return FileResponse(path, media_type=mime, headers=headers)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in tags or f"W/{etag}" in tags


def media_routes(factory: sessionmaker[Session], media_dir: str | Path) -> list[BaseRoute]:
    """The routes to mount on the feed server's application."""
    files = MediaFiles(factory, media_dir)
    return [Route("/media/{path:path}", files.endpoint, methods=["GET", "HEAD"])]


def service_routes(config: AppConfig, factory: sessionmaker[Session]) -> list[BaseRoute]:
    """What the service mounts on its feed server: ``/media/…`` when copies are kept, else nothing."""
    return media_routes(factory, config.MEDIA_DIR) if config.keeps_media else []


def media_app(factory: sessionmaker[Session], media_dir: str | Path) -> Starlette:
    """A stand-alone application serving only ``/media/…`` (tests; or behind a proxy next to the feeds)."""
    return Starlette(routes=media_routes(factory, media_dir))
