"""In-memory table of the published feed files, with every ASGI response message precomputed.

Why a table instead of opening files per request: the server never touches the
filesystem while answering, so a request path can only ever name something the
scanner put here.  The scanner walks FEEDS_DIR itself (no dotfiles, no ``*.tmp``,
no symlinks leading outside, only known extensions), which makes path traversal
impossible by construction rather than by sanitising input.  It also lets every
body, gzip body, ETag and header block be computed once per publish instead of
once per request.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Extension -> Content-Type.  Files with any other extension are not served.
CONTENT_TYPES: dict[str, str] = {
    ".xml": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".xsl": "text/xsl; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
#: Exact relative paths whose type differs from their extension's.
SPECIAL_TYPES: dict[str, str] = {
    "opml.xml": "text/x-opml; charset=utf-8",
}
#: Names a publisher may leave behind while writing; never served.
TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".swp", "~")

SERVER_HEADER = (b"server", b"ghu-feeds")
MIN_GZIP_SIZE = 256
# A page per stored article (``<source>/<id>.html``): thousands of files, each rarely read. They are read
# from disk when asked for (a few hundred kept), not held in memory with the feeds.
ON_DEMAND = re.compile(r"^[a-z0-9][a-z0-9_-]*/[0-9]+\.html$")
ON_DEMAND_CACHE = 256
FULL_SCAN_EVERY = 60  # polls: files edited in place (not renamed into place) are seen within a minute
#: An empty final body message (HEAD and 304 answers).
EMPTY_BODY: dict[str, Any] = {"type": "http.response.body", "body": b""}


def http_date(ts: float) -> str:
    """RFC 9110 IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return formatdate(ts, usegmt=True)


def content_type_for(relpath: str) -> str | None:
    """Content-Type for a relative path, or None if the file must not be served."""
    special = SPECIAL_TYPES.get(relpath)
    if special is not None:
        return special
    return CONTENT_TYPES.get(os.path.splitext(relpath)[1].lower())


@dataclass(slots=True, eq=False)
class Representation:
    """One byte-exact variant of a file (identity or gzip) as ready ASGI messages.

    The server sends ``start_200`` + ``body_msg`` (GET), ``start_200`` + EMPTY_BODY (HEAD) or
    ``start_304`` + EMPTY_BODY: the same dict objects every time, nothing is built per request.
    """

    etag: bytes
    body: bytes
    start_200: dict[str, Any]
    start_304: dict[str, Any]
    body_msg: dict[str, Any]


@dataclass(slots=True, eq=False)
class FileEntry:
    """A served file: its identity and optional gzip representation plus validators."""

    relpath: str
    signature: tuple[int, int, int]
    digest: bytes
    mtime: int
    identity: Representation
    gz: Representation | None
    #: Opaque tags (without ``W/``) matching the identity/gzip representation.
    tags: dict[bytes, Representation] = field(default_factory=dict)


def build_entry(
    relpath: str, raw: bytes, mtime: int, signature: tuple[int, int, int], max_age: int,
    previous: FileEntry | None = None, content_type: str | None = None,
) -> FileEntry:
    """Precompute every answer for ``raw`` (also used for filtered feeds, with their own bytes and ETag)."""
    digest = hashlib.sha256(raw).digest()
    if previous is not None and previous.digest == digest:
        # Same bytes rewritten by the publisher: keep Last-Modified stable so clients
        # that only send If-Modified-Since still get 304s.
        mtime = previous.mtime
    ctype = (content_type or content_type_for(relpath) or "application/octet-stream").encode("latin-1")
    tag = digest[:10].hex()
    common = [
        (b"last-modified", http_date(mtime).encode("latin-1")),
        (b"cache-control", f"public, max-age={max_age}".encode()),
        (b"vary", b"Accept-Encoding"),
        SERVER_HEADER,
    ]

    def rep(etag: str, body: bytes, encoding: bytes) -> Representation:
        tag_header = (b"etag", etag.encode())
        head = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), tag_header]
        if encoding:
            head.append((b"content-encoding", encoding))
        return Representation(
            etag.encode(), body,
            {"type": "http.response.start", "status": 200, "headers": head + common},
            {"type": "http.response.start", "status": 304, "headers": [tag_header, *common]},
            {"type": "http.response.body", "body": body},
        )

    identity = rep(f'"{tag}"', raw, b"")
    gz: Representation | None = None
    if len(raw) >= MIN_GZIP_SIZE:
        packed = gzip.compress(raw, compresslevel=6, mtime=0)
        if len(packed) < len(raw):
            # A distinct strong ETag per content-coding (RFC 9110 8.8.3): the bytes differ.
            gz = rep(f'"{tag}-gz"', packed, b"gzip")
    entry = FileEntry(relpath, signature, digest, mtime, identity, gz)
    entry.tags[identity.etag] = identity
    if gz is not None:
        entry.tags[gz.etag] = gz
    return entry


def _skip_name(name: str) -> bool:
    return name.startswith(".") or name.endswith(TEMP_SUFFIXES)


class FileTable:
    """Scans a directory into an immutable ``{url path: FileEntry}`` snapshot.

    ``snapshot`` is replaced wholesale (a single attribute store, atomic under the GIL),
    so the event loop thread can read it without locking while another thread reloads.
    """

    def __init__(self, root: str | os.PathLike[str], max_age: int, max_file_size: int = 64 << 20) -> None:
        self.root = Path(root)
        self.max_age = int(max_age)
        self.max_file_size = max_file_size
        self.snapshot: dict[str, FileEntry] = {}
        self.generation = 0
        self._by_relpath: dict[str, FileEntry] = {}
        self._signature: dict[str, tuple[int, int, int]] | None = None
        self._dirs: dict[str, tuple[int, int]] = {}  # directory path -> (mtime_ns, inode) at the last scan
        self._polls_since_scan = 0
        self.on_demand: dict[str, tuple[int, int, int]] = {}  # url path -> signature, for ON_DEMAND files
        self._on_demand_cache: OrderedDict[str, FileEntry] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def file_count(self) -> int:
        return len(self._by_relpath) + len(self.on_demand)

    def _dir_signature(self, directories: Iterable[str]) -> dict[str, tuple[int, int]]:
        found = {}
        for directory in directories:
            try:
                st = os.stat(directory)
            except OSError:
                continue
            found[directory] = (st.st_mtime_ns, st.st_ino)
        return found

    def poll(self) -> bool:
        """The periodic check: a full re-scan only when a directory changed (publishing renames files into
        place, which touches their directory), or every ``FULL_SCAN_EVERY`` polls for files edited in place.
        A stat per directory instead of one per file: FEEDS_DIR holds a page per article."""
        self._polls_since_scan += 1
        dirs = self._dirs  # replaced, never changed, by a scan in another thread
        if self._polls_since_scan < FULL_SCAN_EVERY and dirs and self._dir_signature(dirs) == dirs:
            return False
        return self.reload()

    def _scan(self) -> dict[str, tuple[int, int, int]]:
        """Stat-only walk: relpath -> (mtime_ns, size, inode)."""
        found: dict[str, tuple[int, int, int]] = {}
        try:
            real_root = os.path.realpath(self.root)
        except OSError:
            return found
        self._polls_since_scan = 0
        dirs = self._dir_signature([real_root])  # each directory is stat'ed before it is listed
        stack = [("", real_root)]
        while stack:
            prefix, directory = stack.pop()
            try:
                it = os.scandir(directory)
            except OSError:
                continue
            with it:
                for de in it:
                    name = de.name
                    if _skip_name(name) or "\\" in name:
                        continue
                    rel = prefix + name
                    try:
                        if de.is_dir(follow_symlinks=False):
                            stack.append((rel + "/", de.path))
                            dirs.update(self._dir_signature([de.path]))
                            continue
                        if content_type_for(rel) is None:
                            continue
                        if de.is_symlink():
                            # Follow file symlinks only when they stay inside the root.
                            target = os.path.realpath(de.path)
                            if os.path.commonpath([real_root, target]) != real_root:
                                continue
                        st = de.stat(follow_symlinks=True)
                    except (OSError, ValueError):
                        continue
                    if not stat.S_ISREG(st.st_mode) or st.st_size > self.max_file_size:
                        continue
                    found[rel] = (st.st_mtime_ns, st.st_size, st.st_ino)
        self._dirs = dirs
        return found

    def reload(self) -> bool:
        """Re-scan and rebuild changed entries; returns True if the served set changed.

        Unchanged files (same mtime, size, inode) reuse their precomputed entry, so a
        no-op reload costs one stat per file.
        """
        with self._lock:
            signature = self._scan()
            if signature == self._signature:
                return False
            by_relpath: dict[str, FileEntry] = {}
            on_demand = {"/" + rel: sig for rel, sig in signature.items() if ON_DEMAND.match(rel)}
            for rel, sig in signature.items():
                if "/" + rel in on_demand:
                    continue
                old = self._by_relpath.get(rel)
                if old is not None and old.signature == sig:
                    by_relpath[rel] = old
                    continue
                entry = self._load(rel, sig, old)
                if entry is not None:
                    by_relpath[rel] = entry
                else:
                    # Vanished or changed while reading: force a retry on the next poll.
                    signature = {**signature, rel: (-1, -1, -1)}
            snapshot: dict[str, FileEntry] = {}
            for rel, entry in by_relpath.items():
                snapshot["/" + rel] = entry
            index = by_relpath.get("index.html")
            if index is not None:
                snapshot["/"] = index
            changed = on_demand != self.on_demand or snapshot.keys() != self.snapshot.keys() or any(
                self.snapshot[k] is not v for k, v in snapshot.items()
            )
            self.on_demand = on_demand
            self._by_relpath = by_relpath
            self._signature = signature
            self.snapshot = snapshot
            if changed:
                self.generation += 1
                log.debug("feed table reloaded: %d files (generation %d)", len(by_relpath), self.generation)
            return changed

    def entry_on_demand(self, path: str) -> FileEntry | None:
        """The entry of an ON_DEMAND file, read from disk unless a recent one is still current."""
        sig = self.on_demand.get(path)
        if sig is None:
            return None
        with self._lock:
            cached = self._on_demand_cache.get(path)
            if cached is not None and cached.signature == sig:
                self._on_demand_cache.move_to_end(path)
                return cached
        entry = self._load(path[1:], sig, cached)
        if entry is not None:
            with self._lock:
                self._on_demand_cache[path] = entry
                while len(self._on_demand_cache) > ON_DEMAND_CACHE:
                    self._on_demand_cache.popitem(last=False)
        return entry

    def _load(self, rel: str, sig: tuple[int, int, int], old: FileEntry | None) -> FileEntry | None:
        real_root = os.path.realpath(self.root)
        path = os.path.realpath(os.path.join(real_root, *rel.split("/")))
        try:
            if os.path.commonpath([real_root, path]) != real_root:
                return None
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with open(fd, "rb") as fh:
                st = os.fstat(fh.fileno())
                if not stat.S_ISREG(st.st_mode):
                    return None
                raw = fh.read(self.max_file_size + 1)
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s: %s", path, exc)
            return None
        if (st.st_mtime_ns, st.st_size, st.st_ino) != sig or len(raw) != st.st_size:
            return None
        return build_entry(rel, raw, int(st.st_mtime), sig, self.max_age, old)
