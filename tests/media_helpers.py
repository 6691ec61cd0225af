"""Shared by the media tests: a uvicorn server on 127.0.0.1 in a thread, and kept copies put in place."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from db import media as media_db
from db.engine import transaction
from db.media import MediaResult
from tests.fixtures.service import wait_for


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a free 127.0.0.1 port; yield its base URL; stop it after."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 15, "uvicorn to start", interval=0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def keep_copy(factory: sessionmaker[Session], media_dir: Path, source_id: int, article_url: str, url: str,
              body: bytes, *, kind: str, name: str | None, mime: str, ext: str) -> str:
    """Put a kept file and its rows in place as the media pipeline would; return its relative path."""
    sha = hashlib.sha256(body).hexdigest()
    rel = f"{sha[:2]}/{sha}.{ext}"
    (media_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    (media_dir / rel).write_bytes(body)
    with transaction(factory) as s:
        media_db.record_media(s, source_id, article_url, [MediaResult(
            url, kind, "ok", name=name, sha256=sha, path=rel, size=len(body), mime_type=mime)],
            datetime.now(UTC))
    return rel
