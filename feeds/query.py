"""Read what the feeds need from the database, once, into plain immutable records.

Every output file is built from one :class:`Snapshot` so that the RSS, Atom, JSON, archive and index files
of one publish agree with each other even while a crawl is writing: the reads run inside one read
transaction (a real snapshot on SQLite WAL and on PostgreSQL REPEATABLE READ).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from db import media as media_db
from db.media import KeptCopy
from db.models import Article, CrawlRun, Source

log = logging.getLogger(__name__)

# Source.name becomes a file name and a URL path segment: only safe slugs, and none that clash with ours.
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
RECENT_RUNS = 30
RESERVED_SLUGS = frozenset({"all", "index", "opml", "search"})


@dataclass(frozen=True)
class AttachmentRec:
    name: str
    url: str
    mime_type: str | None
    in_body: bool


@dataclass(frozen=True)
class ArticleRec:
    source_name: str
    url: str  # canonical URL: entry id; for external items also the external URL
    newsid: int | None
    external: bool
    title: str
    published_at: datetime | None
    author: str | None
    body_html: str | None
    body_text: str | None
    first_seen_at: datetime
    updated_at: datetime | None
    attachments: tuple[AttachmentRec, ...]
    id: int | None = None  # the database row: the article page's file name
    media: tuple[KeptCopy, ...] = ()  # kept copies of its images and attachments (MEDIA=keep|serve)

    @property
    def published(self) -> datetime:
        """Publication time; an undated item counts from when it was first seen."""
        return self.published_at or self.first_seen_at

    @property
    def modified(self) -> datetime:
        """Last content change (never before publication)."""
        return max(self.published, self.updated_at) if self.updated_at else self.published

    @property
    def changed(self) -> datetime:
        """Newest time anything about this item changed: what a feed's own updated time is made of."""
        return max(self.published, self.modified, self.first_seen_at)

    def order_key(self) -> tuple[datetime, int, str, str]:
        """Oldest-first total order; newest-first is exactly its reverse."""
        return (self.published, self.newsid if self.newsid is not None else -1, self.url, self.source_name)


@dataclass(frozen=True)
class RunRec:
    started_at: datetime
    finished_at: datetime | None
    status: str
    pages_fetched: int
    requests: int
    new: int
    updated: int
    unchanged: int
    removed: int
    failed: int
    error: str | None


@dataclass(frozen=True)
class SourceRec:
    name: str
    title: str
    column_url: str | None  # the list page people can open (discovered one first)
    created_at: datetime
    articles: tuple[ArticleRec, ...]  # visible ones, oldest first
    last_removed_at: datetime | None  # newest removal: a removal is a change of the feed too
    last_run: RunRec | None
    runs: tuple[RunRec, ...] = ()  # the last RECENT_RUNS crawls, oldest first (charts)

    @property
    def changed(self) -> datetime:
        """The newest change in this source's data; a feed with no items dates from the source's creation."""
        times = [a.changed for a in self.articles]
        if self.last_removed_at:
            times.append(self.last_removed_at)
        return max(times, default=self.created_at)


@dataclass(frozen=True)
class Snapshot:
    sources: tuple[SourceRec, ...]  # sorted by name

    @property
    def changed(self) -> datetime | None:
        return max((s.changed for s in self.sources), default=None)


def _begin_snapshot(session: Session) -> None:
    """Make the following SELECTs see one consistent state of the database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    elif dialect == "sqlite":
        # pysqlite does not BEGIN before a SELECT, so each statement would see the newest commit.
        conn = session.connection()
        if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql("BEGIN")


def _visible() -> ColumnElement[bool]:
    return and_(Article.removed_at.is_(None), or_(Article.status == "ok", Article.external.is_(True)))


def load_snapshot(session: Session) -> Snapshot:
    """Every source with its visible articles (fetched or external, not removed) and its latest run."""
    _begin_snapshot(session)
    sources = session.scalars(select(Source).order_by(Source.name)).all()
    rows = session.scalars(
        select(Article).where(_visible()).options(selectinload(Article.attachments))
    ).all()
    by_source: dict[int, list[Article]] = {}
    for art in rows:
        by_source.setdefault(art.source_id, []).append(art)
    removed: dict[int, datetime] = {
        sid: when for sid, when in session.execute(
            select(Article.source_id, func.max(Article.removed_at))
            .where(Article.removed_at.is_not(None)).group_by(Article.source_id)
        )
    }
    copies = media_db.kept_copies(session)
    out: list[SourceRec] = []
    for src in sources:
        if not SLUG_RE.match(src.name) or src.name in RESERVED_SLUGS:
            log.error("source name %r is not a safe feed name (a-z, 0-9, _ and -; not all/index/opml): "
                      "no feeds for it", src.name)
            continue
        runs = _recent_runs(session, src.id)
        arts = tuple(sorted((_article(src.name, a, copies) for a in by_source.get(src.id, [])),
                            key=ArticleRec.order_key))
        out.append(SourceRec(
            name=src.name,
            title=src.title,
            column_url=src.discovered_list_url or src.list_url,
            created_at=src.created_at,
            articles=arts,
            last_removed_at=removed.get(src.id),
            last_run=runs[-1] if runs else None,
            runs=runs,
        ))
    return Snapshot(sources=tuple(out))


def article_record(source_name: str, a: Article) -> ArticleRec:
    """An ORM article (attachments loaded) as the immutable record every format renders."""
    return _article(source_name, a)


def _article(source_name: str, a: Article, copies: dict[tuple[int, str], dict[str, KeptCopy]] | None = None
             ) -> ArticleRec:
    return ArticleRec(
        source_name=source_name,
        url=a.url,
        newsid=a.newsid,
        external=bool(a.external),
        title=a.title or a.list_title or "",
        published_at=a.published_at,
        author=a.author,
        body_html=a.body_html,
        body_text=a.body_text,
        first_seen_at=a.first_seen_at,
        updated_at=a.updated_at,
        attachments=tuple(
            AttachmentRec(name=f.name, url=f.url, mime_type=f.mime_type, in_body=bool(f.in_body))
            for f in sorted(a.attachments, key=lambda f: f.position)
        ),
        id=a.id,
        media=tuple((copies or {}).get((a.source_id, a.url), {}).values()),
    )


def _recent_runs(session: Session, source_id: int) -> tuple[RunRec, ...]:
    rows = session.scalars(
        select(CrawlRun).where(CrawlRun.source_id == source_id)
        .order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc()).limit(RECENT_RUNS)
    ).all()
    return tuple(
        RunRec(
            started_at=run.started_at, finished_at=run.finished_at, status=run.status,
            pages_fetched=run.pages_fetched, requests=run.requests, new=run.new, updated=run.updated,
            unchanged=run.unchanged, removed=run.removed, failed=run.failed, error=run.error,
        )
        for run in reversed(rows)
    )
