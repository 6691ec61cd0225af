"""Write the article pages incrementally: only pages whose inputs changed are rendered and written.

An archive holds tens of thousands of articles, and a publish runs after every crawl that changed
something; rendering every page each time (and holding them all in memory) would cost ~1 ms and a few KB
per article. So each page's inputs (the article's columns that the page shows, its attachments, its kept
copies, the column title and :data:`PAGE_VERSION`) are hashed, the hashes kept per source in
``<source>/.pages.json``, and a page is rendered only when its hash changed or its file is missing.
Files are written like the feeds (:mod:`feeds.publish`): atomically, only when their bytes differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from db import media as media_db
from db.models import Article, Attachment, Source
from feeds.article_page import render_page
from feeds.files import TEMP_RE, atomic_write, fsync_dir, locked, same_bytes
from feeds.media_links import page_path
from feeds.query import RESERVED_SLUGS, SLUG_RE, _article, _begin_snapshot
from feeds.text import is_absolute_http
from settings import AppConfig

log = logging.getLogger(__name__)

PAGE_VERSION = 1  # bump when render_page's output changes: every page is rebuilt once
MANIFEST = ".pages.json"
CHUNK = 200  # articles rendered per query


def publish_article_pages(session_factory: sessionmaker[Session], config: AppConfig, root: Path
                          ) -> tuple[list[str], list[str]]:
    """Bring every stored article's page under ``root`` up to date: (written, unchanged) relative paths."""
    written: list[str] = []
    unchanged: list[str] = []
    root.mkdir(parents=True, exist_ok=True)
    with session_factory() as session, locked(root):
        _begin_snapshot(session)
        sources = {s.id: (s.name, s.title) for s in session.scalars(select(Source))
                   if SLUG_RE.match(s.name) and s.name not in RESERVED_SLUGS}
        copies = media_db.kept_copies(session) if config.keeps_media else {}
        attachments: dict[int, list[tuple[object, ...]]] = defaultdict(list)
        for att in session.execute(select(Attachment.article_id, Attachment.position, Attachment.name,
                                          Attachment.url, Attachment.mime_type, Attachment.in_body)):
            attachments[att.article_id].append(tuple(att))
        rows = session.execute(
            select(Article.id, Article.source_id, Article.url, Article.title, Article.list_title,
                   Article.content_hash, Article.published_at, Article.first_seen_at, Article.updated_at,
                   Article.removed_at, Article.author, Article.origin)
            .where(Article.external.is_(False), Article.body_html.is_not(None)).order_by(Article.id)
        ).all()
        for name, _title in sources.values():  # temporary files of a publish killed mid-write
            folder = root / name
            if folder.is_dir():
                for child in folder.iterdir():
                    if TEMP_RE.match(child.name) and child.is_file():
                        log.warning("removing leftover temporary file %s", child)
                        child.unlink(missing_ok=True)
        manifests: dict[str, dict[str, str]] = {}
        todo: list[tuple[int, str, str]] = []  # (article id, source name, fingerprint)
        for row in rows:
            if row.source_id not in sources or not is_absolute_http(row.url):
                continue
            name, column = sources[row.source_id]
            manifest = manifests.get(name)
            if manifest is None:
                manifest = manifests[name] = _load(root / name / MANIFEST)
            kept = copies.get((row.source_id, row.url), {})
            digest = _fingerprint(row, column, sorted(attachments.get(row.id, []), key=lambda a: a[1]),
                                  sorted((c.url, c.kind, c.path, c.mime_type) for c in kept.values()))
            rel = page_path(name, row.id)
            if manifest.get(str(row.id)) == digest and (root / rel).is_file():
                unchanged.append(rel)
            else:
                todo.append((row.id, name, digest))
        dirs: set[Path] = set()
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            by_id = {a.id: a for a in session.scalars(
                select(Article).where(Article.id.in_([t[0] for t in chunk]))
                .options(selectinload(Article.attachments)))}
            for article_id, name, digest in chunk:
                art = by_id[article_id]
                column = sources[art.source_id][1]
                try:
                    data = render_page(_article(name, art, copies), column, art.removed_at, art.origin).encode("utf-8")
                except Exception:
                    log.exception("%s: no page for article %s", name, art.url)
                    continue
                rel = page_path(name, article_id)
                path = root / rel
                if same_bytes(path, data):
                    unchanged.append(rel)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(path, data)
                    dirs.add(path.parent)
                    written.append(rel)
                manifests[name][str(article_id)] = digest
        session.rollback()
        for name, manifest in manifests.items():
            target = root / name / MANIFEST
            data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
            if not same_bytes(target, data):
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, data)
                dirs.add(target.parent)
        for directory in sorted(dirs):
            fsync_dir(directory)
    return written, unchanged


def _fingerprint(row: object, column: str, attachments: list[tuple[object, ...]],
                 copies: list[tuple[str, ...]]) -> str:
    fields = [PAGE_VERSION, column, *(_plain(getattr(row, k)) for k in (
        "url", "title", "list_title", "content_hash", "published_at", "first_seen_at", "updated_at",
        "removed_at", "author", "origin")), [[_plain(v) for v in a] for a in attachments], copies]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


def _plain(value: object) -> object:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _load(path: Path) -> dict[str, str]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_bytes())
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items()}
    return {}
