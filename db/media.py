"""Storage of media copies (MEDIA=keep): which image or attachment of which article has which kept file.

Like :mod:`db.store`, every function takes an open session and leaves committing to the caller.
Files are content-addressed (``media_files``, one row per distinct content); ``article_media`` says, per
article and media URL, what became of it. Nothing here ever deletes a kept file's row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import Article, ArticleMedia, Attachment, MediaFile, Source

_UPSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
RETRIED = ("failed", "skipped")  # statuses that the next run tries again


@dataclass(frozen=True)
class MediaRef:
    """An image or attachment an article links to."""

    url: str
    kind: str  # image, attachment
    name: str | None = None  # the name the site shows (attachments)


@dataclass(frozen=True)
class KeptCopy:
    """A kept file as feeds and the media server need it."""

    url: str
    kind: str
    sha256: str
    path: str  # relative to MEDIA_DIR
    mime_type: str
    size: int
    name: str | None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class MediaResult:
    """What one download attempt gave (written by :func:`record_media`)."""

    url: str
    kind: str
    status: str  # ok, failed, refused, skipped
    name: str | None = None
    claimed_type: str | None = None
    error: str | None = None
    sha256: str | None = None
    path: str | None = None
    size: int | None = None
    mime_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class BacklogArticle:
    source_id: int
    source_name: str
    article_url: str
    media: tuple[MediaRef, ...]


def source_id_of(session: Session, name: str) -> int | None:
    return session.scalar(select(Source.id).where(Source.name == name))


def copies_for(session: Session, source_id: int, urls: list[str]) -> dict[str, KeptCopy]:
    """Kept copies of these URLs in this source (whichever article they were kept for)."""
    if not urls:
        return {}
    rows = session.execute(
        select(ArticleMedia.url, ArticleMedia.kind, ArticleMedia.name, ArticleMedia.etag,
               ArticleMedia.last_modified, MediaFile.sha256, MediaFile.path, MediaFile.mime_type, MediaFile.size)
        .join(MediaFile, MediaFile.sha256 == ArticleMedia.sha256)
        .where(ArticleMedia.source_id == source_id, ArticleMedia.url.in_(urls), ArticleMedia.status == "ok")
        .order_by(ArticleMedia.checked_at)
    )
    return {r.url: KeptCopy(r.url, r.kind, r.sha256, r.path, r.mime_type, r.size, r.name, r.etag, r.last_modified)
            for r in rows}


def record_media(session: Session, source_id: int, article_url: str, results: list[MediaResult],
                 now: datetime) -> None:
    """Remember the outcome of each media download of one article (idempotent)."""
    dialect = session.get_bind().dialect.name
    for res in results:
        if res.sha256 and res.path:
            stmt = _UPSERT[dialect](MediaFile).values(
                sha256=res.sha256, path=res.path, size=res.size or 0, mime_type=res.mime_type or "",
                created_at=now).on_conflict_do_nothing(index_elements=["sha256"])
            session.execute(stmt)
        row = session.scalar(select(ArticleMedia).where(
            ArticleMedia.source_id == source_id, ArticleMedia.article_url == article_url,
            ArticleMedia.url == res.url))
        if row is None:
            row = ArticleMedia(source_id=source_id, article_url=article_url, url=res.url, kind=res.kind,
                               attempts=0)
            session.add(row)
        if res.status != "ok" and row.status == "ok" and row.sha256:
            # a failed re-check keeps the copy we have; it is only noted
            row.error = res.error
            row.checked_at = now
            continue
        row.kind = res.kind
        row.name = res.name or row.name
        row.claimed_type = res.claimed_type or row.claimed_type
        row.status = res.status
        row.error = res.error
        if res.status == "ok":
            row.sha256 = res.sha256 or row.sha256
            row.etag, row.last_modified = res.etag, res.last_modified
            row.attempts = 0
        else:
            row.attempts = (row.attempts or 0) + 1
        row.checked_at = now
        session.flush()


def refs_of_articles(session: Session, source_ids: list[int] | None = None,
                     ) -> dict[tuple[int, str], list[MediaRef]]:
    """Every image and attachment of stored on-site articles (removed ones included), in page order."""
    stmt = select(Article.id, Article.source_id, Article.url, Article.images).where(
        Article.external.is_(False), Article.body_html.is_not(None))
    if source_ids is not None:
        stmt = stmt.where(Article.source_id.in_(source_ids))
    arts = session.execute(stmt.order_by(Article.id)).all()
    by_id: dict[int, tuple[int, str]] = {}
    refs: dict[tuple[int, str], list[MediaRef]] = {}
    for a in arts:
        by_id[a.id] = (a.source_id, a.url)
        refs[(a.source_id, a.url)] = [MediaRef(u, "image") for u in (a.images or [])]
    if by_id:
        for att in session.execute(
            select(Attachment.article_id, Attachment.url, Attachment.name).join(Article)
            .where(Article.external.is_(False), Article.body_html.is_not(None),
                   *([Article.source_id.in_(source_ids)] if source_ids is not None else []))
            .order_by(Attachment.article_id, Attachment.position)
        ):
            key = by_id.get(att.article_id)
            if key is not None:
                refs[key].append(MediaRef(att.url, "attachment", att.name))
    return refs


def media_backlog(session: Session, source_ids: list[int], all_missing: bool = False) -> list[BacklogArticle]:
    """Media to try (again): failed or skipped ones; with ``all_missing`` also those never tried
    (articles stored before MEDIA=keep: ``scheduler.py media --backfill``)."""
    names: dict[int, str] = {r.id: r.name for r in session.execute(
        select(Source.id, Source.name).where(Source.id.in_(source_ids)))}
    done: dict[tuple[int, str], dict[str, str]] = defaultdict(dict)
    for r in session.execute(select(ArticleMedia.source_id, ArticleMedia.article_url, ArticleMedia.url,
                                    ArticleMedia.status).where(ArticleMedia.source_id.in_(source_ids))):
        done[(r.source_id, r.article_url)][r.url] = r.status
    out: list[BacklogArticle] = []
    for (source_id, article_url), refs in refs_of_articles(session, source_ids).items():
        seen = done.get((source_id, article_url), {})
        todo = tuple(dict.fromkeys(
            ref for ref in refs
            if seen.get(ref.url) in RETRIED or (all_missing and ref.url not in seen)))
        if todo:
            out.append(BacklogArticle(source_id, names.get(source_id, ""), article_url, todo))
    return out


def total_bytes(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(MediaFile.size), 0))) or 0)


@dataclass(frozen=True)
class MediaStats:
    files: int
    bytes: int
    failures: int  # failed + skipped (will be retried)
    refused: int


def media_stats(session: Session) -> dict[str, MediaStats]:
    """Per source name: distinct kept files and their bytes, failures, refusals."""
    kept = session.execute(
        select(Source.name, func.count(func.distinct(MediaFile.sha256)))
        .join(ArticleMedia, ArticleMedia.source_id == Source.id)
        .join(MediaFile, MediaFile.sha256 == ArticleMedia.sha256)
        .where(ArticleMedia.status == "ok").group_by(Source.name)
    ).all()
    sizes = _sizes(session)
    bad = session.execute(
        select(Source.name, ArticleMedia.status, func.count())
        .join(ArticleMedia, ArticleMedia.source_id == Source.id)
        .where(ArticleMedia.status.in_((*RETRIED, "refused"))).group_by(Source.name, ArticleMedia.status)
    ).all()
    names = list(session.scalars(select(Source.name).order_by(Source.name)))
    files = dict(kept)
    failures: dict[str, int] = defaultdict(int)
    refused: dict[str, int] = defaultdict(int)
    for name, status, n in bad:
        (refused if status == "refused" else failures)[name] += n
    return {n: MediaStats(files.get(n, 0), sizes.get(n, 0), failures[n], refused[n]) for n in names}


def _sizes(session: Session) -> dict[str, int]:
    pairs = session.execute(
        select(Source.name, MediaFile.sha256, MediaFile.size).distinct()
        .join(ArticleMedia, ArticleMedia.source_id == Source.id)
        .join(MediaFile, MediaFile.sha256 == ArticleMedia.sha256)
        .where(ArticleMedia.status == "ok")
    ).all()
    out: dict[str, int] = defaultdict(int)
    for name, _sha, size in pairs:
        out[name] += size
    return dict(out)


def kept_copies(session: Session) -> dict[tuple[int, str], dict[str, KeptCopy]]:
    """Every kept copy, by (source id, article URL), then media URL: what feeds and pages link to."""
    out: dict[tuple[int, str], dict[str, KeptCopy]] = defaultdict(dict)
    for r in session.execute(
        select(ArticleMedia.source_id, ArticleMedia.article_url, ArticleMedia.url, ArticleMedia.kind,
               ArticleMedia.name, MediaFile.sha256, MediaFile.path, MediaFile.mime_type, MediaFile.size)
        .join(MediaFile, MediaFile.sha256 == ArticleMedia.sha256)
        .where(ArticleMedia.status == "ok")
    ):
        out[(r.source_id, r.article_url)][r.url] = KeptCopy(r.url, r.kind, r.sha256, r.path, r.mime_type,
                                                            r.size, r.name)
    return dict(out)


def file_by_sha(session: Session, sha256: str) -> tuple[MediaFile, str | None] | None:
    """A kept file and an original name for it (the first one recorded), for the media server."""
    media = session.get(MediaFile, sha256)
    if media is None:
        return None
    name = session.scalar(
        select(ArticleMedia.name).where(ArticleMedia.sha256 == sha256, ArticleMedia.name.is_not(None))
        .order_by((ArticleMedia.kind == "attachment").desc(), ArticleMedia.id).limit(1))
    return media, name


def mark_unreferenced_failed(session: Session, source_id: int, article_url: str, keep: list[str]) -> None:
    """Failures of media the article no longer links (edited away) stop being retried."""
    session.execute(
        update(ArticleMedia)
        .where(ArticleMedia.source_id == source_id, ArticleMedia.article_url == article_url,
               ArticleMedia.status.in_(RETRIED), ArticleMedia.url.not_in(keep))
        .values(status="refused", error="no longer linked by the article")
    )


