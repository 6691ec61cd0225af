"""One crawl per source at a time, across processes: an advisory file lock the OS drops if we die."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from db.engine import normalize_url


def _lock_dir(database_url: str) -> Path:
    """Beside an SQLite file (so every process using that database sees the lock, even under systemd's
    PrivateTmp); the temp folder for server databases."""
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent
    return Path(tempfile.gettempdir())


class SourceLock:
    def __init__(self, database_url: str, source: str) -> None:
        key = hashlib.sha256(database_url.encode("utf-8")).hexdigest()[:12]
        self.path = _lock_dir(database_url) / f".ghu-feeds-{key}-{source}.lock"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
