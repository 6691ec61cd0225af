"""In-memory table of the published feed files, with every response precomputed.

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
import stat
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

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

SERVER_HEADER = b"Server: ghu-feeds\r\n"
MIN_GZIP_SIZE = 256


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
    """One byte-exact variant of a file (identity or gzip) with ready-made header blocks.

    ``head_200``/``head_304`` hold every header line that follows ``Date``, without the
    blank line, so the protocol only has to glue status line, date and body together.
    ``cache`` memoises the glued responses for the current second (the Date header is the
    only part that changes), so the hot path is one dict-free attribute lookup.
    """

    etag: bytes
    body: bytes
    head_200: bytes
    head_304: bytes
    cache_sec: int = -1
    cache_get: bytes = b""
    cache_head: bytes = b""
    cache_304: bytes = b""


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


def _build_entry(
    relpath: str, raw: bytes, mtime: int, signature: tuple[int, int, int], max_age: int,
    previous: FileEntry | None,
) -> FileEntry:
    digest = hashlib.sha256(raw).digest()
    if previous is not None and previous.digest == digest:
        # Same bytes rewritten by the publisher: keep Last-Modified stable so clients
        # that only send If-Modified-Since still get 304s.
        mtime = previous.mtime
    ctype = content_type_for(relpath) or "application/octet-stream"
    tag = digest[:10].hex()
    last_modified = http_date(mtime)
    common = (
        f"Last-Modified: {last_modified}\r\n"
        f"Cache-Control: public, max-age={max_age}\r\n"
        "Vary: Accept-Encoding\r\n"
    )

    def rep(etag: str, body: bytes, encoding: str) -> Representation:
        enc = f"Content-Encoding: {encoding}\r\n" if encoding else ""
        head_200 = f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\nETag: {etag}\r\n{enc}{common}"
        head_304 = f"ETag: {etag}\r\n{common}"
        return Representation(etag.encode(), body, head_200.encode("latin-1"), head_304.encode("latin-1"))

    identity = rep(f'"{tag}"', raw, "")
    gz: Representation | None = None
    if len(raw) >= MIN_GZIP_SIZE:
        packed = gzip.compress(raw, compresslevel=6, mtime=0)
        if len(packed) < len(raw):
            # A distinct strong ETag per content-coding (RFC 9110 8.8.3): the bytes differ.
            gz = rep(f'"{tag}-gz"', packed, "gzip")
    entry = FileEntry(relpath, signature, digest, mtime, identity, gz)
    entry.tags[identity.etag] = identity
    if gz is not None:
        entry.tags[gz.etag] = gz
    return entry


def _skip_name(name: str) -> bool:
    return name.startswith(".") or name.endswith(TEMP_SUFFIXES)


class FileTable:
    """Scans a directory into an immutable ``{url-path bytes: FileEntry}`` snapshot.

    ``snapshot`` is replaced wholesale (a single attribute store, atomic under the GIL),
    so the event loop thread can read it without locking while another thread reloads.
    """

    def __init__(self, root: str | os.PathLike[str], max_age: int, max_file_size: int = 64 << 20) -> None:
        self.root = Path(root)
        self.max_age = int(max_age)
        self.max_file_size = max_file_size
        self.snapshot: dict[bytes, FileEntry] = {}
        self.generation = 0
        self._by_relpath: dict[str, FileEntry] = {}
        self._signature: dict[str, tuple[int, int, int]] | None = None
        self._lock = threading.Lock()

    @property
    def file_count(self) -> int:
        return len(self._by_relpath)

    def _scan(self) -> dict[str, tuple[int, int, int]]:
        """Stat-only walk: relpath -> (mtime_ns, size, inode).  Cheap enough to poll every second."""
        found: dict[str, tuple[int, int, int]] = {}
        try:
            real_root = os.path.realpath(self.root)
        except OSError:
            return found
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
            for rel, sig in signature.items():
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
            snapshot: dict[bytes, FileEntry] = {}
            for rel, entry in by_relpath.items():
                snapshot[b"/" + rel.encode("utf-8", "surrogateescape")] = entry
            index = by_relpath.get("index.html")
            if index is not None:
                snapshot[b"/"] = index
            changed = snapshot.keys() != self.snapshot.keys() or any(
                self.snapshot[k] is not v for k, v in snapshot.items()
            )
            self._by_relpath = by_relpath
            self._signature = signature
            self.snapshot = snapshot
            if changed:
                self.generation += 1
                log.debug("feed table reloaded: %d files (generation %d)", len(by_relpath), self.generation)
            return changed

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
        return _build_entry(rel, raw, int(st.st_mtime), sig, self.max_age, old)
