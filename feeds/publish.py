"""Write the built files into FEEDS_DIR: atomically, and only the ones whose bytes changed.

Each file is written to a temporary file in its own directory, fsynced and renamed over the old one, so a
reader (or a crash) never sees half a file. Unchanged files are not touched, so their mtime — and the
Last-Modified/ETag the feed server derives from it — stays put and readers' conditional GETs get 304.
A lock file serializes publishers (the scheduler and a manual CLI run, say).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from feeds.build import build_from_database
from feeds.page_publish import publish_article_pages
from feeds.plan import ALL_SLUG
from settings import AppConfig

log = logging.getLogger(__name__)

LOCK_NAME = ".publish.lock"
FILE_MODE = 0o644  # mkstemp creates 0600: the web server may run as another user
_TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # ".<name>.<mkstemp random>.tmp"
_ARCHIVE_RE = re.compile(r"^[1-9][0-9]*\.atom$")


@dataclass(frozen=True)
class PublishResult:
    written: tuple[str, ...]  # paths relative to FEEDS_DIR
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def publish(session_factory: sessionmaker[Session], config: AppConfig) -> PublishResult:
    """Build every feed from the database and bring FEEDS_DIR up to date."""
    feeds = write_files(config.feeds_path, build_from_database(session_factory, config))
    # After the feeds, from a later read: every article a feed links has its page by the end of this call.
    pages, same = publish_article_pages(session_factory, config, config.feeds_path)
    result = PublishResult(feeds.written + tuple(pages), feeds.unchanged + tuple(same), feeds.removed)
    log.info("published %s: %d written, %d unchanged, %d removed", config.FEEDS_DIR,
             len(result.written), len(result.unchanged), len(result.removed))
    return result


def write_files(root: Path, files: dict[str, bytes]) -> PublishResult:
    """Make ``root`` hold ``files`` (relative POSIX path -> bytes); drop archive pages no longer built."""
    root.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    unchanged: list[str] = []
    with _locked(root):
        _remove_leftover_temps(root, files)
        touched: set[Path] = set()
        # Archive pages first, index and OPML last: a reader following a new link finds its target.
        for rel in sorted(files, key=_write_order):
            path = root / rel
            if _same_bytes(path, files[rel]):
                unchanged.append(rel)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, files[rel])
            touched.add(path.parent)
            written.append(rel)
        removed = _remove_stale(root, files)
        touched.update((root / rel).parent for rel in removed)
        for directory in sorted(touched):
            _fsync_dir(directory)
    return PublishResult(tuple(written), tuple(unchanged), tuple(removed))


def _write_order(rel: str) -> tuple[int, str]:
    if "/archive/" in rel:
        return (0, rel)
    return (2 if rel in ("index.html", "opml.xml") else 1, rel)


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except FileNotFoundError:
        return False


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_dir(directory: Path) -> None:
    """Make the renames themselves durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    with open(root / LOCK_NAME, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _our_dirs(root: Path, files: dict[str, bytes]) -> set[Path]:
    return {(root / rel).parent for rel in files}


def _remove_leftover_temps(root: Path, files: dict[str, bytes]) -> None:
    """Temp files of a publish that was killed mid-write (safe: we hold the lock)."""
    for directory in _our_dirs(root, files):
        if not directory.is_dir():
            continue
        for child in directory.iterdir():
            if _TEMP_RE.match(child.name) and child.is_file():
                log.warning("removing leftover temporary file %s", child)
                child.unlink(missing_ok=True)


def _remove_stale(root: Path, files: dict[str, bytes]) -> list[str]:
    """Archive pages beyond a column's current count, and the combined feed once one column is left.

    Only files this package owns by name are removed; anything else in FEEDS_DIR is left alone.
    """
    stale: list[str] = []
    slugs = {rel.split(".", 1)[0] for rel in files if "/" not in rel and rel.endswith(".atom")}
    for slug in sorted(slugs):
        archive = root / slug / "archive"
        if archive.is_dir():
            stale += [f"{slug}/archive/{p.name}" for p in sorted(archive.iterdir())
                      if _ARCHIVE_RE.match(p.name) and f"{slug}/archive/{p.name}" not in files]
    stale += [f"{ALL_SLUG}.{ext}" for ext in ("xml", "atom", "json")
              if f"{ALL_SLUG}.{ext}" not in files and (root / f"{ALL_SLUG}.{ext}").exists()]
    for rel in stale:
        (root / rel).unlink(missing_ok=True)
    return stale
