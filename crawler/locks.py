"""One crawl per source at a time, across processes: an advisory file lock the OS drops if we die."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path


class SourceLock:
    def __init__(self, database_url: str, source: str) -> None:
        key = hashlib.sha256(database_url.encode("utf-8")).hexdigest()[:12]
        self.path = Path(tempfile.gettempdir()) / f"ghu-feeds-{key}-{source}.lock"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
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
