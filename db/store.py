"""Storage operations the crawler and the service need: idempotent upserts, edits, removals, runs.

Every function takes an open session and leaves committing to the caller's transaction, so that one
item is stored entirely or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Integer, Text, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import Article, Attachment, CrawlRun, Source, UTCDateTime, utcnow

_UPSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True)
class AttachmentRecord:
    name: str
    url: str
    mime_type: str | None = None
    in_body: bool = False


@dataclass(frozen=True)
class ArticleRecord:
    """An extracted article page, as storage sees it (no crawler types cross into db/)."""

    url: str
    title: str
    published_at: datetime | None
    body_html: str
    body_text: str
    newsid: int | None = None
    list_title: str | None = None
    author: str | None = None
    origin: str | None = None
    editor: str | None = None
    images: list[str] = field(default_factory=list)
    attachments: list[AttachmentRecord] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class ListEntryRecord:
    url: str
    title: str
    published_at: datetime | None
    newsid: int | None = None
    external: bool = False


def content_hash(title: str, body_html: str, attachments: list[AttachmentRecord]) -> str:
    """What counts as an edit: the extracted title, body and attachments, never the page's chrome."""
    payload = json.dumps(
        [title.strip(), body_html.strip(), [[a.name, a.url, a.in_body] for a in attachments]],
        ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- sources and runs
def sync_source(session: Session, name: str, title: str, list_url: str | None) -> Source:
    """Create or update the row for a configured source (configuration wins over the database)."""
    src = session.scalar(select(Source).where(Source.name == name))
    if src is None and session.get_bind().dialect.name in _UPSERT:
        # Two processes starting on a new database (the service and `status`, two `--once`) both get here:
        # the second insert is now a no-op instead of a UNIQUE violation that killed that process.
        insert = _UPSERT[session.get_bind().dialect.name](Source)
        session.execute(insert.values(name=name, title=title, list_url=list_url, created_at=utcnow())
                        .on_conflict_do_nothing(index_elements=["name"]))
        src = session.scalars(select(Source).where(Source.name == name)).one()
    if src is None:
        src = Source(name=name, title=title, list_url=list_url)
        session.add(src)
        session.flush()
    else:
        _configure(src, title, list_url)
    return src


def sync_sources(session: Session, configured: list[tuple[str, str, str | None]]) -> dict[str, Source]:
    """:func:`sync_source` for many (name, title, list_url) at once: one query loads the known rows."""
    rows: dict[str, Source] = {}
    for names in _chunks([name for name, _, _ in configured]):
        rows.update((src.name, src) for src in session.scalars(select(Source).where(Source.name.in_(names))))
    for name, title, list_url in configured:
        src = rows.get(name)
        if src is None:
            rows[name] = sync_source(session, name, title, list_url)
        else:
            _configure(src, title, list_url)
    return rows


def _configure(src: Source, title: str, list_url: str | None) -> None:
    if src.title != title:
        src.title = title
    if src.list_url != list_url:
        # the operator changed the list page: forget what discovery remembered and the old validators
        src.list_url = list_url
        src.discovered_list_url = None
        src.list_etag = src.list_last_modified = None


def _chunks(values: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """IN lists of at most ``size`` values (SQLite caps bound parameters per statement)."""
    for i in range(0, len(values), size):
        yield values[i:i + size]


def get_source(session: Session, name: str) -> Source | None:
    return session.scalar(select(Source).where(Source.name == name))


def begin_run(session: Session, source_id: int) -> CrawlRun:
    run = CrawlRun(source_id=source_id, started_at=utcnow(), status="running")
    session.add(run)
    session.flush()
    return run


def begin_runs(session: Session, source_ids: list[int]) -> list[int]:
    """A 'running' run per source in one statement; their ids, in the order of ``source_ids``."""
    if not source_ids:
        return []
    now = utcnow()
    stmt = insert(CrawlRun).returning(CrawlRun.id, sort_by_parameter_order=True)
    rows = session.execute(stmt, [{"source_id": sid, "started_at": now, "status": "running", "pages_fetched": 0,
                                   "requests": 0, "new": 0, "updated": 0, "unchanged": 0, "removed": 0,
                                   "failed": 0} for sid in source_ids])
    return [r.id for r in rows]


def finish_run(session: Session, run_id: int, status: str, error: str | None = None, **counts: int) -> CrawlRun:
    run = session.get(CrawlRun, run_id)
    if run is None:
        raise LookupError(f"crawl run {run_id} not found")
    run.status = status
    run.error = error
    run.finished_at = utcnow()
    for key, value in counts.items():
        setattr(run, key, value)
    return run


def finish_runs(session: Session, runs: list[dict[str, Any]]) -> None:
    """:func:`finish_run` for many runs in one executemany: each dict has ``run_id``, ``status``, ``error``
    and the same counters as the others."""
    if not runs:
        return
    table = CrawlRun.__table__
    now = utcnow()  # the SET clause comes from the dicts' keys (SQLAlchemy's executemany UPDATE)
    session.execute(update(table).where(table.c.id == bindparam("run_id")),
                    [{**run, "finished_at": now} for run in runs])


def fail_stale_runs(session: Session, source_id: int | list[int], reason: str) -> int:
    """Runs left 'running' by a killed crawl are recorded as failed, with the reason (one statement for a
    list of sources)."""
    ids = [source_id] if isinstance(source_id, int) else source_id
    count = 0
    for chunk in _chunks(ids):
        result = session.execute(
            update(CrawlRun)
            .where(CrawlRun.source_id.in_(chunk), CrawlRun.status == "running")
            .values(status="failed", error=reason, finished_at=utcnow())
        )
        count += result.rowcount or 0
    return count


def last_run(session: Session, source_id: int) -> CrawlRun | None:
    return session.scalar(
        select(CrawlRun).where(CrawlRun.source_id == source_id).order_by(CrawlRun.id.desc()).limit(1)
    )


def last_finished_run(session: Session, source_id: int) -> CrawlRun | None:
    return session.scalar(
        select(CrawlRun)
        .where(CrawlRun.source_id == source_id, CrawlRun.status != "running")
        .order_by(CrawlRun.id.desc()).limit(1)
    )


def last_success(session: Session, source_id: int) -> CrawlRun | None:
    return session.scalar(
        select(CrawlRun)
        .where(CrawlRun.source_id == source_id, CrawlRun.status == "ok")
        .order_by(CrawlRun.id.desc()).limit(1)
    )


def count_articles(session: Session, source_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(Article).where(
            Article.source_id == source_id, Article.removed_at.is_(None),
            or_(Article.status == "ok", Article.external.is_(True)),
        )
    ) or 0


# ---------------------------------------------------------------- what the crawl needs to know
# Each takes many sources (a crawl process opens all its runs at once: one query each, not one per source)
# and answers by source id; the singular forms are for one source.
Pending = tuple[str, str | None, datetime | None]
Recheck = tuple[str, str | None, str | None]


def known_urls(session: Session, source_id: int) -> set[str]:
    return known_urls_by_source(session, [source_id]).get(source_id, set())


def known_urls_by_source(session: Session, source_ids: list[int]) -> dict[int, set[str]]:
    known: dict[int, set[str]] = {sid: set() for sid in source_ids}
    for chunk in _chunks(source_ids):
        for sid, url in session.execute(select(Article.source_id, Article.url).where(Article.source_id.in_(chunk))):
            known[sid].add(url)
    return known


def urls_to_fetch(session: Session, source_id: int) -> list[Pending]:
    """Entries seen on a list page whose article page is not stored yet (new, or failed last time)."""
    return urls_to_fetch_by_source(session, [source_id]).get(source_id, [])


def urls_to_fetch_by_source(session: Session, source_ids: list[int]) -> dict[int, list[Pending]]:
    pending: dict[int, list[Pending]] = {sid: [] for sid in source_ids}
    for chunk in _chunks(source_ids):
        rows = session.execute(
            select(Article.source_id, Article.url, Article.list_title, Article.published_at)
            .where(Article.source_id.in_(chunk), Article.external.is_(False),
                   Article.status.in_(("pending", "failed")), Article.removed_at.is_(None))
            .order_by(Article.id)
        )
        for r in rows:
            pending[r.source_id].append((r.url, r.list_title, r.published_at))
    return pending


def due_rechecks(
    session: Session, source_id: int, now: datetime, recheck_days: int, interval_hours: float
) -> list[Recheck]:
    """Recent stored articles whose last check is older than the interval: (url, etag, last_modified)."""
    return due_rechecks_by_source(session, [source_id], now, recheck_days, interval_hours).get(source_id, [])


def due_rechecks_by_source(
    session: Session, source_ids: list[int], now: datetime, recheck_days: int, interval_hours: float
) -> dict[int, list[Recheck]]:
    due: dict[int, list[Recheck]] = {sid: [] for sid in source_ids}
    if recheck_days <= 0:
        return due
    horizon = now - timedelta(days=recheck_days)
    checked_before = now - timedelta(hours=interval_hours)
    for chunk in _chunks(source_ids):
        stmt = (
            select(Article.source_id, Article.url, Article.etag, Article.last_modified)
            .where(
                Article.source_id.in_(chunk), Article.external.is_(False), Article.status == "ok",
                Article.removed_at.is_(None),
                or_(Article.first_seen_at >= horizon, Article.published_at >= horizon),
            )
            .order_by(Article.published_at.desc(), Article.id.desc())
        )
        if interval_hours > 0:
            stmt = stmt.where(or_(Article.last_checked_at.is_(None), Article.last_checked_at <= checked_before))
        for r in session.execute(stmt):
            due[r.source_id].append((r.url, r.etag, r.last_modified))
    return due


# ---------------------------------------------------------------- writes
def record_list_entries(session: Session, source_id: int, entries: list[ListEntryRecord],
                        now: datetime) -> list[str]:
    """Remember the entries of one list page; for each: 'new' (an external item stored), 'pending',
    'updated' or 'known'.

    Off-site items (e.g. WeChat articles) are complete with the list's title and date; on-site ones wait
    for their article page. One query finds the known entries and one executemany inserts the rest:
    a backfill writes a whole page at once.
    """
    urls = list(dict.fromkeys(e.url for e in entries))
    rows = {
        r.url: r for r in session.execute(
            select(Article.id, Article.url, Article.external, Article.removed_at, Article.title,
                   Article.published_at, Article.list_title)
            .where(Article.source_id == source_id, Article.url.in_(urls))
        )
    }
    outcomes: list[str] = []
    inserts: list[dict[str, object]] = []
    for entry in entries:
        row = rows.get(entry.url)
        if row is None:
            if any(i["url"] == entry.url for i in inserts):
                outcomes.append("known")  # listed twice on one page
                continue
            inserts.append({
                "source_id": source_id, "url": entry.url, "newsid": entry.newsid, "external": entry.external,
                "status": "ok" if entry.external else "pending", "title": entry.title,
                "list_title": entry.title, "published_at": entry.published_at, "first_seen_at": now,
                "updated_at": (entry.published_at or now) if entry.external else None, "fetch_attempts": 0,
            })
            outcomes.append("new" if entry.external else "pending")
            continue
        outcomes.append(_update_known_entry(session, row, entry, now))
    if inserts:
        session.execute(insert(Article), inserts)
    return outcomes


def _update_known_entry(session: Session, row: Any, entry: ListEntryRecord, now: datetime) -> str:
    values: dict[str, object] = {}
    outcome = "known"
    if row.external and row.removed_at is None and (row.title, row.published_at) != (entry.title,
                                                                                     entry.published_at):
        values = {"title": entry.title, "list_title": entry.title, "published_at": entry.published_at,
                  "updated_at": now}
        outcome = "updated"
    elif row.external and row.removed_at is not None:
        values = {"removed_at": None, "updated_at": now}
        outcome = "updated"
    elif not row.external and row.list_title != entry.title:
        values = {"list_title": entry.title}
    if values:
        session.execute(update(Article).where(Article.id == row.id).values(**values))
    return outcome


def record_list_entry(session: Session, source_id: int, entry: ListEntryRecord, now: datetime) -> str:
    """One list entry (see :func:`record_list_entries`)."""
    return record_list_entries(session, source_id, [entry], now)[0]


_articles = Article.__table__
_attachments = Attachment.__table__
_when = UTCDateTime()
# Statements built once: store_article runs per article of a backfill, and building a statement costs
# more than running it on SQLite.
_SELECT_STORED = select(
    _articles.c.id, _articles.c.status, _articles.c.content_hash, _articles.c.removed_at,
).where(_articles.c.source_id == bindparam("source_id"), _articles.c.url == bindparam("url"))
_INSERT_PENDING = _articles.insert().returning(_articles.c.id)
_CHECKED = {
    "last_checked_at": bindparam("now", type_=_when), "etag": bindparam("etag"),
    "last_modified": bindparam("last_modified"), "fetch_error": None, "fetch_attempts": 0, "removed_at": None,
    "status": "ok", "author": bindparam("author"), "origin": bindparam("origin"), "editor": bindparam("editor"),
    "newsid": func.coalesce(bindparam("newsid", type_=Integer()), _articles.c.newsid),
    "list_title": func.coalesce(bindparam("list_title", type_=Text()), _articles.c.list_title),
    "published_at": func.coalesce(bindparam("published_at", type_=_when), _articles.c.published_at,
                                  _articles.c.first_seen_at),
    "updated_at": func.coalesce(bindparam("updated_at", type_=_when), _articles.c.updated_at),
}
_UPDATE_CHECKED = _articles.update().where(_articles.c.id == bindparam("article_id")).values(_CHECKED)
_UPDATE_CONTENT = _articles.update().where(_articles.c.id == bindparam("article_id")).values({
    **_CHECKED, "title": bindparam("title"), "body_html": bindparam("body_html"),
    "body_text": bindparam("body_text"), "images": bindparam("images", type_=JSON()),
    "content_hash": bindparam("content_hash"),
})
_DELETE_ATTACHMENTS = _attachments.delete().where(_attachments.c.article_id == bindparam("article_id"))


def store_article(session: Session, source_id: int, rec: ArticleRecord, now: datetime) -> str:
    """Idempotent upsert of an article page. Returns 'new', 'updated' or 'unchanged'."""
    digest = content_hash(rec.title, rec.body_html, rec.attachments)
    row = session.execute(_SELECT_STORED, {"source_id": source_id, "url": rec.url}).first()
    if row is None:
        article_id = session.execute(_INSERT_PENDING, {
            "source_id": source_id, "url": rec.url, "first_seen_at": now, "external": False, "status": "pending",
            "title": rec.title, "fetch_attempts": 0,
        }).scalar_one()
        was_stored, changed, reappeared = False, True, False
    else:
        article_id = row.id
        was_stored = row.status == "ok" or row.content_hash is not None
        changed = row.content_hash != digest
        reappeared = row.removed_at is not None
    params: dict[str, object] = {
        "article_id": article_id, "now": now, "etag": rec.etag, "last_modified": rec.last_modified,
        "author": rec.author, "origin": rec.origin, "editor": rec.editor, "newsid": rec.newsid,
        "list_title": rec.list_title or None, "published_at": rec.published_at,
        "updated_at": now if was_stored and (changed or reappeared) else None,
    }
    if not (changed or not was_stored):
        session.execute(_UPDATE_CHECKED, params)
        return "updated" if reappeared else "unchanged"
    if not was_stored:
        params["updated_at"] = rec.published_at or now
    params.update(title=rec.title, body_html=rec.body_html, body_text=rec.body_text, images=list(rec.images),
                  content_hash=digest)
    session.execute(_UPDATE_CONTENT, params)
    session.execute(_DELETE_ATTACHMENTS, {"article_id": article_id})
    if rec.attachments:
        session.execute(_attachments.insert(), [
            {"article_id": article_id, "position": i, "name": a.name, "url": a.url, "mime_type": a.mime_type,
             "in_body": a.in_body}
            for i, a in enumerate(rec.attachments)
        ])
    return "updated" if was_stored else "new"


def mark_unchanged(session: Session, source_id: int, url: str, now: datetime,
                   etag: str | None = None, last_modified: str | None = None) -> None:
    values: dict[str, object] = {"last_checked_at": now}
    if etag:
        values["etag"] = etag
    if last_modified:
        values["last_modified"] = last_modified
    session.execute(update(Article).where(Article.source_id == source_id, Article.url == url).values(**values))


def mark_removed(session: Session, source_id: int, url: str, now: datetime) -> bool:
    """The article page is gone: keep the row (never delete), hide it from feeds."""
    result = session.execute(
        update(Article)
        .where(Article.source_id == source_id, Article.url == url, Article.removed_at.is_(None),
               Article.status == "ok")
        .values(removed_at=now, last_checked_at=now, updated_at=now)
    )
    return bool(result.rowcount)


def mark_failed(session: Session, source_id: int, url: str, error: str, now: datetime) -> None:
    """A fetch or extraction failed: keep what was stored, retry next run."""
    session.execute(
        update(Article)
        .where(Article.source_id == source_id, Article.url == url)
        .values(fetch_error=error[:2000], fetch_attempts=Article.fetch_attempts + 1, last_checked_at=now)
    )
    session.execute(
        update(Article)
        .where(and_(Article.source_id == source_id, Article.url == url, Article.status == "pending"))
        .values(status="failed")
    )


def set_list_state(session: Session, source_id: int, *, etag: str | None = None,
                   last_modified: str | None = None, backfilled_at: datetime | None = None,
                   discovered_list_url: str | None = None, clear_discovered: bool = False) -> None:
    src = session.get(Source, source_id)
    if src is None:
        return
    if etag is not None or last_modified is not None:
        src.list_etag, src.list_last_modified = etag, last_modified
    if backfilled_at is not None and src.backfilled_at is None:
        src.backfilled_at = backfilled_at
    if discovered_list_url is not None:
        src.discovered_list_url = discovered_list_url
    if clear_discovered:
        src.discovered_list_url = None
        src.list_etag = src.list_last_modified = None
