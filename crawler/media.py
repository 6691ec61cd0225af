"""MEDIA=keep|serve: keep a copy of every image and attachment of a stored article (Scrapy's FilesPipeline).

Media requests go through the crawl's own downloader, so per-host politeness (download slots, delay,
AutoThrottle, robots.txt, retries with backoff) applies to them as to pages. Files are named by the
SHA-256 of their bytes (``ab/abcdef….jpg``), so the same picture in two articles is stored once; they are
written to a temporary name and renamed, so a killed crawl never leaves a partial file under a real name.
Each file's bytes are checked against the allowlist (:mod:`crawler.media_types`) before it is kept.

The pipeline runs before the storage pipeline: an article item goes on only once its media are done (or
failed), so a crawl killed mid-download has not stored that article yet and the next run fetches it again.
A copy is re-fetched with a conditional request when its article page is fetched again (a re-check);
failed downloads are tried again at the next run (:class:`MediaBacklogMiddleware`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.exceptions import DropItem, IgnoreRequest, NotConfigured
from scrapy.http.request import NO_CALLBACK
from scrapy.pipelines.files import FilesPipeline, FSFilesStore
from scrapy.utils.defer import maybe_deferred_to_future
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import CancelledError
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from crawler.items import ArticleItem
from crawler.media_types import check, extension
from db import media as media_db
from db.engine import make_engine, session_factory, transaction
from db.media import KeptCopy, MediaRef, MediaResult
from db.models import utcnow
from settings import AppConfig, ConfigError, load_config

logger = logging.getLogger(__name__)
FILE_MODE = 0o644


@dataclass
class MediaBacklogItem:
    """Media of an already stored article to try again (failed last run, or ``media --backfill``)."""

    source: str
    article_url: str
    media: tuple[MediaRef, ...]


class AtomicFilesStore(FSFilesStore):
    """Write to a temporary file in the target directory, fsync, rename: no half files under real names.

    Names are content hashes, so an existing file already holds these bytes and is left alone.
    """

    def persist_file(self, path: Any, buf: BytesIO, info: Any, meta: Any = None, headers: Any = None) -> None:
        target = self._get_filesystem_path(path)
        if target.exists():
            return
        self._mkdir(target.parent, info)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(buf.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
                os.fchmod(fh.fileno(), FILE_MODE)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def media_refs(item: Any) -> list[MediaRef]:
    """An article's images (body order), then its attachments; each URL once."""
    rec = item.record
    refs = [MediaRef(u, "image") for u in rec.images]
    refs += [MediaRef(a.url, "attachment", a.name) for a in rec.attachments]
    seen: dict[str, MediaRef] = {}
    for ref in refs:
        seen.setdefault(ref.url, ref)
    return list(seen.values())


class MediaFilesPipeline(FilesPipeline):
    STORE_SCHEMES = {**FilesPipeline.STORE_SCHEMES, "": AtomicFilesStore, "file": AtomicFilesStore}

    def __init__(self, store_uri: str, *, crawler: Any, config: AppConfig) -> None:
        super().__init__(store_uri, crawler=crawler)
        self.config = config
        self.max_bytes = config.MEDIA_MAX_BYTES
        self.max_total = config.MEDIA_MAX_TOTAL
        self.total: int | None = None  # bytes in MEDIA_DIR per the database, read on first use
        self.total_warned = False
        self._factory: sessionmaker[Session] | None = None
        self._source_ids: dict[str, int] = {}
        self._plans: dict[int, tuple[str, int, str, list[MediaRef], dict[str, KeptCopy]]] = {}
        self._done: dict[int, tuple[int, str, list[MediaResult], list[str] | None]] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> MediaFilesPipeline:
        try:
            config = load_config()
        except ConfigError:
            raise NotConfigured("invalid configuration") from None
        if not config.keeps_media:
            raise NotConfigured("MEDIA=link: no copies kept")
        cls._update_stores(crawler.settings)
        return cls(str(Path(config.MEDIA_DIR).resolve()), crawler=crawler, config=config)

    # ------------------------------------------------------------------ database
    def factory(self) -> sessionmaker[Session]:
        """Opened on first use, inside the crawl, without an Alembic upgrade: the spider did that, and an
        upgrade's lock would wait here for the storage pipeline's open transaction (SQLite)."""
        if self._factory is None:
            self._factory = session_factory(make_engine(self.config.DATABASE_URL))
        return self._factory

    def source_id(self, name: str) -> int | None:
        if name not in self._source_ids:
            with self.factory()() as s:
                found = media_db.source_id_of(s, name)
            if found is None:
                return None
            self._source_ids[name] = found
        return self._source_ids[name]

    # ------------------------------------------------------------------ items
    async def process_item(self, item: Any, spider: Any = None) -> Any:
        if not isinstance(item, (ArticleItem, MediaBacklogItem)):
            return item
        try:
            result = await super().process_item(item)
            work = self._done.pop(id(item), None)
            if work is not None:
                # In a thread: on SQLite the storage pipeline may hold the write lock in this (event loop)
                # thread until its timer commits, so waiting for it here would wait forever.
                await maybe_deferred_to_future(deferToThread(self._record, *work))
        except Exception:  # the article itself must still be stored
            logger.exception("media of %s not recorded (python scheduler.py media --backfill tries again)",
                             getattr(item, "article_url", None) or getattr(getattr(item, "record", None), "url", "?"))
            self._plans.pop(id(item), None)
            self._done.pop(id(item), None)
            result = item
        if isinstance(item, MediaBacklogItem):
            raise DropItem("media backlog item done", log_level="DEBUG")
        return result

    def get_media_requests(self, item: Any, info: Any) -> list[Request]:
        spider = info.spider
        if isinstance(item, MediaBacklogItem):
            name, article_url, refs = item.source, item.article_url, list(item.media)
        else:
            name, article_url, refs = _source_name(item, spider), item.record.url, media_refs(item)
        refs = [r for r in refs if urlsplit(r.url).scheme in ("http", "https")]
        source_id = self.source_id(name) if name else None
        if source_id is None or not refs:
            return []
        with self.factory()() as s:
            copies = media_db.copies_for(s, source_id, [r.url for r in refs])
        self._plans[id(item)] = (name, source_id, article_url, refs, copies)
        return [self._request(ref, copies.get(ref.url)) for ref in refs]

    def _request(self, ref: MediaRef, copy: KeptCopy | None) -> Request:
        headers = {}
        if copy is not None and copy.etag:
            headers["If-None-Match"] = copy.etag
        if copy is not None and copy.last_modified:
            headers["If-Modified-Since"] = copy.last_modified
        return Request(ref.url, callback=NO_CALLBACK, headers=headers, priority=-10, meta={
            "media_ref": ref, "media_copy": copy, "download_maxsize": self.max_bytes,
            "download_warnsize": 0})

    def media_to_download(self, request: Request, info: Any, *, item: Any = None) -> Any:
        copy: KeptCopy | None = request.meta.get("media_copy")
        if copy is None and self._total_reached():
            ref: MediaRef = request.meta["media_ref"]
            return {"url": request.url, "path": "", "checksum": None, "status": "skipped", "result": MediaResult(
                ref.url, ref.kind, "skipped", name=ref.name,
                error=f"MEDIA_MAX_TOTAL ({self.max_total} bytes) reached")}
        return None  # always ask the source (conditionally when a copy is kept)

    def _total_reached(self) -> bool:
        if self.max_total is None:
            return False
        if self.total is None:
            with self.factory()() as s:
                self.total = media_db.total_bytes(s)
        if self.total >= self.max_total:
            if not self.total_warned:
                logger.warning("media: MEDIA_MAX_TOTAL reached (%d of %d bytes kept): no new copies are "
                               "downloaded; kept files are never deleted", self.total, self.max_total)
                self.total_warned = True
            return True
        return False

    async def media_downloaded(self, response: Any, request: Request, info: Any, *, item: Any = None) -> Any:
        """Never raises for a bad file: the outcome (kept, refused, failed) is the returned result."""
        ref: MediaRef = request.meta["media_ref"]
        copy: KeptCopy | None = request.meta.get("media_copy")
        if response.status == 304 and copy is not None:
            self.inc_stats("uptodate")
            return _info(request, "uptodate", _result(
                ref, copy.sha256, copy.path, copy.size, copy.mime_type, copy.name,
                _header(response, b"ETag") or copy.etag, _header(response, b"Last-Modified") or copy.last_modified))
        if response.status != 200:
            return _info(request, "failed", MediaResult(ref.url, ref.kind, "failed", name=ref.name,
                                                        error=f"answered {response.status}"))
        body: bytes = response.body
        if not body:
            return _info(request, "failed", MediaResult(ref.url, ref.kind, "failed", name=ref.name,
                                                        error="empty file"))
        header_type = _header(response, b"Content-Type")
        name = ref.name if extension(ref.name) else (_disposition_name(response) or ref.name or _url_name(request.url))
        verdict = check(body, ref.kind, name, request.url, header_type, self.max_bytes)
        if not verdict.ok:
            return _info(request, "refused", MediaResult(ref.url, ref.kind, "refused", name=name,
                                                         claimed_type=header_type, error=verdict.reason))
        sha = hashlib.sha256(body).hexdigest()
        path = f"{sha[:2]}/{sha}.{verdict.ext}"
        await _maybe_await(self.store.persist_file(path, BytesIO(body), info))
        if (copy is None or copy.sha256 != sha) and self.total is not None:
            self.total += len(body)
        self.inc_stats("downloaded")
        return _info(request, "downloaded", MediaResult(
            ref.url, ref.kind, "ok", name=name, claimed_type=header_type, sha256=sha, path=path, size=len(body),
            mime_type=verdict.mime_type, etag=_header(response, b"ETag"),
            last_modified=_header(response, b"Last-Modified")))

    def media_failed(self, failure: Failure, request: Request, info: Any) -> Any:
        """A download that raised (timeout, connection, size cap, robots.txt): remembered, not raised, so
        that Scrapy logs no traceback; :meth:`item_completed` records it."""
        ref: MediaRef = request.meta["media_ref"]
        exc = failure.value
        status = "failed"
        if isinstance(exc, IgnoreRequest):
            reason = f"not fetched: {exc}"
            status = "refused" if any(w in str(exc).lower() for w in ("robots", "off-site")) else "failed"
        elif isinstance(exc, CancelledError) or type(exc).__name__ == "DownloadCancelledError":
            reason, status = f"over MEDIA_MAX_BYTES ({self.max_bytes} bytes)", "refused"
        else:
            response = getattr(exc, "response", None)
            detail = f"answered {response.status}" if response is not None else str(exc).strip()
            reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return _info(request, status, MediaResult(ref.url, ref.kind, status, name=ref.name, error=reason))

    async def _check_media_to_download(self, request: Request, info: Any, item: Any) -> Any:
        """Scrapy's, except that what media_failed returns is the result (Scrapy expects it to raise)."""
        try:
            self._modify_media_request(request)
            response = await self.crawler.engine.download_async(request)
            return await self.media_downloaded(response, request, info, item=item)
        except Exception:
            return self.media_failed(Failure(), request, info)

    def item_completed(self, results: list[tuple[bool, Any]], item: Any, info: Any) -> Any:
        plan = self._plans.pop(id(item), None)
        if plan is None:
            return item
        name, source_id, article_url, refs, _copies = plan
        outcomes: list[MediaResult] = []
        for ref, (ok, value) in zip(refs, results, strict=False):
            if ok and isinstance(value, dict) and isinstance(value.get("result"), MediaResult):
                res = _named(value["result"], ref)
            else:
                res = MediaResult(ref.url, ref.kind, "failed", name=ref.name, error=f"{value}"[:500])
            outcomes.append(res)
            if res.status == "refused":
                logger.warning("%s: media refused: %s (%s) in %s", name, ref.url, res.error, article_url)
            elif res.status == "failed":
                logger.warning("%s: media download failed: %s (%s) in %s; will retry next run", name, ref.url,
                               res.error, article_url)
        self._done[id(item)] = (source_id, article_url, outcomes, [r.url for r in refs]
                                if isinstance(item, ArticleItem) else None)
        return item

    def _record(self, source_id: int, article_url: str, outcomes: list[MediaResult], linked: list[str] | None
                ) -> None:
        with transaction(self.factory()) as s:
            media_db.record_media(s, source_id, article_url, outcomes, utcnow())
            if linked is not None:
                media_db.mark_unreferenced_failed(s, source_id, article_url, linked)

    def file_path(self, request: Request, response: Any = None, info: Any = None, *, item: Any = None) -> str:
        copy: KeptCopy | None = request.meta.get("media_copy")
        return copy.path if copy is not None else ""  # real paths come from the bytes (media_downloaded)


def _named(result: MediaResult, ref: MediaRef) -> MediaResult:
    """A result shared by two articles (same URL, cached in the run) under this article's kind and name."""
    if result.kind == ref.kind and (result.name == ref.name or not ref.name):
        return result
    from dataclasses import replace

    return replace(result, kind=ref.kind, name=ref.name if extension(ref.name) else result.name)


def _info(request: Request, status: str, result: MediaResult) -> dict[str, Any]:
    """Scrapy's FileInfo, carrying our result."""
    return {"url": request.url, "path": result.path or "", "checksum": result.sha256, "status": status,
            "result": result}


def _result(ref: MediaRef, sha: str, path: str, size: int, mime: str, name: str | None,
            etag: str | None, last_modified: str | None) -> MediaResult:
    return MediaResult(ref.url, ref.kind, "ok", name=name or ref.name, sha256=sha, path=path, size=size,
                       mime_type=mime, etag=etag, last_modified=last_modified)


async def _maybe_await(value: Any) -> Any:
    if hasattr(value, "__await__"):
        return await value
    return value


def _header(response: Any, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _disposition_name(response: Any) -> str | None:
    """The file name of a Content-Disposition header (RFC 6266 filename*, else a percent-encoded filename)."""
    raw = response.headers.get(b"Content-Disposition")
    if not raw:
        return None
    from email.message import Message
    from urllib.parse import unquote

    msg = Message()
    msg["Content-Disposition"] = raw.decode("latin-1")
    name = msg.get_filename()
    if not name:
        return None
    if "%" in name:
        name = unquote(name)
    else:
        with contextlib.suppress(UnicodeError):
            name = name.encode("latin-1").decode("utf-8")
    return os.path.basename(name.replace("\\", "/")) or None


def _url_name(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    return os.path.basename(unquote(urlsplit(url).path)) or None


def _source_name(item: Any, spider: Any) -> str | None:
    name = getattr(item, "source", None)
    if name:
        return str(name)
    source = getattr(spider, "source", None)
    return getattr(source, "name", None)


# ---------------------------------------------------------------- retries at the next run
def _spider_source_names(spider: Any) -> list[str]:
    sources = getattr(spider, "sources", None)
    if sources:
        values = sources.values() if isinstance(sources, dict) else sources
        return [getattr(s, "name", s) for s in values]
    source = getattr(spider, "source", None)
    return [source.name] if source is not None else []


def backlog_items(factory: sessionmaker[Session], names: list[str], all_missing: bool = False
                  ) -> list[MediaBacklogItem]:
    with factory() as s:
        ids = [i for i in (media_db.source_id_of(s, n) for n in names) if i is not None]
        work = media_db.media_backlog(s, ids, all_missing=all_missing) if ids else []
    return [MediaBacklogItem(b.source_name, b.article_url, b.media) for b in work]


class MediaBacklogMiddleware:
    """After a crawl's start requests: the media that failed in earlier runs, to try again (MEDIA=keep)."""

    def __init__(self, config: AppConfig, crawler: Any = None) -> None:
        self.config = config
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> MediaBacklogMiddleware:
        try:
            config = load_config()
        except ConfigError:
            raise NotConfigured("invalid configuration") from None
        if not config.keeps_media:
            raise NotConfigured("MEDIA=link")
        return cls(config, crawler)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for thing in start:
            yield thing
        spider = self.crawler.spider if self.crawler is not None else None
        names = _spider_source_names(spider)
        if not names or getattr(spider, "name", "") != "column":
            return
        try:
            items = backlog_items(session_factory(make_engine(self.config.DATABASE_URL)), names)
        except Exception:
            logger.exception("media: could not read the media to retry")
            return
        if items:
            logger.info("media: retrying the media of %d articles", len(items))
        for item in items:
            yield item
