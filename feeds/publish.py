"""Write the built files into FEEDS_DIR: atomically, and only the ones whose bytes changed.

Each file is written to a temporary file in its own directory, fsynced and renamed over the old one, so a
reader (or a crash) never sees half a file. Unchanged files are not touched, so their mtime — and the
Last-Modified/ETag the feed server derives from it — stays put and readers' conditional GETs get 304.
A lock file serializes publishers (the scheduler and a manual CLI run, say).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from feeds.build import build_from_database
from feeds.files import TEMP_RE, atomic_write, fsync_dir, locked, same_bytes
from feeds.page_publish import publish_article_pages
from feeds.plan import ALL_SLUG
from settings import AppConfig

log = logging.getLogger(__name__)

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
    with locked(root):
        _remove_leftover_temps(root, files)
        touched: set[Path] = set()
        # Archive pages first, index and OPML last: a reader following a new link finds its target.
        for rel in sorted(files, key=_write_order):
            path = root / rel
            if same_bytes(path, files[rel]):
                unchanged.append(rel)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, files[rel])
            touched.add(path.parent)
            written.append(rel)
        removed = _remove_stale(root, files)
        touched.update((root / rel).parent for rel in removed)
        for directory in sorted(touched):
            fsync_dir(directory)
    return PublishResult(tuple(written), tuple(unchanged), tuple(removed))


def _write_order(rel: str) -> tuple[int, str]:
    if "/archive/" in rel:
        return (0, rel)
    return (2 if rel in ("index.html", "opml.xml") else 1, rel)


def _our_dirs(root: Path, files: dict[str, bytes]) -> set[Path]:
    return {(root / rel).parent for rel in files}


def _remove_leftover_temps(root: Path, files: dict[str, bytes]) -> None:
    """Temp files of a publish that was killed mid-write (safe: we hold the lock)."""
    for directory in _our_dirs(root, files):
        if not directory.is_dir():
            continue
        for child in directory.iterdir():
            if TEMP_RE.match(child.name) and child.is_file():
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
