"""SQLAlchemy 2.0 models. Times are stored as naive UTC and read back as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database (SQLite has no time zones); aware UTC in Python."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Base(DeclarativeBase):
    pass


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    list_url: Mapped[str | None] = mapped_column(Text)
    # The list page found by discovery (when list_url is missing or broken); used until it breaks.
    discovered_list_url: Mapped[str | None] = mapped_column(Text)
    # Set once a crawl has walked every list page: until then each run walks the whole column.
    backfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    list_etag: Mapped[str | None] = mapped_column(Text)
    list_last_modified: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    articles: Mapped[list[Article]] = relationship(back_populates="source")
    runs: Mapped[list[CrawlRun]] = relationship(back_populates="source")


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (UniqueConstraint("source_id", "url", name="uq_articles_source_url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)  # canonical URL: the feed entry id, never changes
    newsid: Mapped[int | None] = mapped_column(Integer)  # VSB wbnewsid, the tie-breaker for same-day items
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    # pending: seen on a list page, article page not stored yet; ok: stored; failed: last fetch failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    title: Mapped[str] = mapped_column(Text)
    list_title: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    author: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str | None] = mapped_column(Text)  # 来源 / 供稿单位
    editor: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    images: Mapped[list[str] | None] = mapped_column(JSON)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    fetch_error: Mapped[str | None] = mapped_column(Text)
    fetch_attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Last change of the extracted content (title, body, attachments): Atom <updated>, JSON date_modified.
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    source: Mapped[Source] = relationship(back_populates="articles")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="article", order_by="Attachment.position", cascade="all, delete-orphan"
    )


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("article_id", "position", name="uq_attachments_article_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)  # the file name as the site shows it
    url: Mapped[str] = mapped_column(Text)
    mime_type: Mapped[str | None] = mapped_column(String(200))
    in_body: Mapped[bool] = mapped_column(Boolean, default=False)  # linked in the body, not the 附件 list

    article: Mapped[Article] = relationship(back_populates="attachments")


class CrawlRun(Base):
    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, ok, failed
    pages_fetched: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)

    source: Mapped[Source] = relationship(back_populates="runs")

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated or self.removed)


class MediaFile(Base):
    """One kept copy in MEDIA_DIR, named by its content (sha256): the same bytes are stored once."""

    __tablename__ = "media_files"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)  # relative to MEDIA_DIR, e.g. "ab/abcdef….jpg"
    size: Mapped[int] = mapped_column(Integer)
    mime_type: Mapped[str] = mapped_column(String(200))  # from the bytes, not from the source's headers
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ArticleMedia(Base):
    """An image or attachment of an article and what became of its copy (MEDIA=keep).

    Keyed by the article's (source, URL) rather than its row id: the media pipeline records a copy
    before the article's own row is committed, and the two are joined on that pair.
    """

    __tablename__ = "article_media"
    __table_args__ = (UniqueConstraint("source_id", "article_url", "url", name="uq_article_media"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    article_url: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text, index=True)  # as the article links it
    kind: Mapped[str] = mapped_column(String(16))  # image, attachment
    name: Mapped[str | None] = mapped_column(Text)  # original file name (Chinese names kept)
    claimed_type: Mapped[str | None] = mapped_column(String(200))  # what the name or the server said
    sha256: Mapped[str | None] = mapped_column(ForeignKey("media_files.sha256"), index=True)
    # ok: a copy is kept; failed: retried next run; refused: not allowed (type, size), not retried;
    # skipped: MEDIA_MAX_TOTAL reached, retried next run
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
