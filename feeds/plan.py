"""What goes into which feed: the URL scheme, time zone, item content and the per-feed plans.

Formats (RSS, Atom, JSON Feed, archive pages, index, OPML) only render a :class:`FeedPlan`; every decision
about which articles appear, in what order, with which dates and content, is made here once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from db import filetypes
from feeds.query import ArticleRec, AttachmentRec, Snapshot, SourceRec
from feeds.text import absolute_url, absolutize_html, is_absolute_http, one_line, summarize, xml_safe

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
ALL_SLUG = "all"
ALL_TITLE = "全部栏目 · All columns"
GENERATOR = "ghu-feeds"



def local_time(when: datetime) -> datetime:
    """Aware UTC from the database -> Asia/Shanghai, whole seconds (what every format shows)."""
    return when.astimezone(SHANGHAI).replace(microsecond=0)


def iso(when: datetime) -> str:
    """RFC 3339 with the +08:00 offset (Atom, JSON Feed)."""
    return local_time(when).isoformat()


def attachment_mime(att: AttachmentRec) -> str:
    """The stored type unless it is a generic download type; else guessed from the shown file name."""
    if not filetypes.is_generic(att.mime_type):
        return (att.mime_type or "").split(";")[0].strip().lower()
    return filetypes.mime_type(att.name)


@dataclass(frozen=True)
class Urls:
    """Where each file is served: PUBLIC_URL + the file's path under FEEDS_DIR."""

    public: str

    @staticmethod
    def of(public_url: str) -> Urls:
        return Urls(public_url if public_url.endswith("/") else public_url + "/")

    def feed(self, slug: str, ext: str) -> str:
        return f"{self.public}{slug}.{ext}"

    def archive(self, slug: str, page: int) -> str:
        return f"{self.public}{archive_path(slug, page)}"

    def feed_id(self, slug: str) -> str:
        return f"{self.public}{slug}"

    @property
    def index(self) -> str:
        return f"{self.public}index.html"

    @property
    def opml(self) -> str:
        return f"{self.public}opml.xml"


def archive_path(slug: str, page: int) -> str:
    return f"{slug}/archive/{page}.atom"


@dataclass(frozen=True)
class Attachment:
    name: str
    url: str
    mime_type: str
    length: int = 0  # bytes, when known (our kept copy); 0 = unknown


@dataclass(frozen=True)
class Entry:
    """One article as every format shows it: all strings XML-safe, all URLs absolute."""

    id: str  # = url: the canonical URL never changes
    url: str  # where a reader goes: the article page, or the off-site page for external items
    title: str
    summary: str
    content_html: str
    published: datetime
    modified: datetime
    author: str | None
    categories: tuple[str, ...]  # column titles
    attachments: tuple[Attachment, ...]
    external: bool
    sort_key: tuple[datetime, int, str, str]
    page_url: str | None = None  # our page of the article (feeds.media_links): Atom rel="related"


def make_entry(art: ArticleRec, column_title: str) -> Entry:
    url = xml_safe(art.url)
    title = one_line(art.title) or url
    attachments = tuple(
        Attachment(name=one_line(a.name) or "附件", url=absolute_url(a.url, url), mime_type=attachment_mime(a))
        for a in art.attachments if is_absolute_http(absolute_url(a.url, url))
    )
    return Entry(
        id=url,
        url=url,
        title=title,
        summary=title if art.external else summarize(art.body_text, title),
        content_html=_content_html(art, url, title, attachments),
        published=art.published,
        modified=art.modified,
        author=one_line(art.author) or None,
        categories=(one_line(column_title),),
        attachments=attachments,
        external=art.external,
        sort_key=art.order_key(),
    )


def _content_html(art: ArticleRec, url: str, title: str, attachments: tuple[Attachment, ...]) -> str:
    """Full text for readers: the stored (sanitized) body, plus the 附件 list most readers would not show."""
    link = f'<a href="{escape(url)}">{escape(title)}</a>'
    if art.external:
        return f"<p>本文发布在外部网站 · Published on an external site: {link}</p>"
    body = xml_safe(art.body_html).strip()
    if body and is_absolute_http(url):
        body = absolutize_html(body, url)
    listed = [a for a, rec in zip(attachments, art.attachments, strict=False) if not rec.in_body]
    if listed:
        items = "".join(f'<li><a href="{escape(a.url)}">{escape(a.name)}</a></li>' for a in listed)
        body += f"<p>附件 · Attachments:</p><ul>{items}</ul>"
    return body or f"<p>{link}</p>"


@dataclass(frozen=True)
class FeedPlan:
    """One subscription feed (a column, or all columns together) ready to render in any format."""

    slug: str
    title: str
    description: str
    home_url: str  # the column page (alternate link); index.html when unknown
    entries: tuple[Entry, ...]  # newest first, at most FEED_MAX_ITEMS
    total: int  # articles in the feed and its archive pages together
    updated: datetime  # newest change in the data behind the feed: never the clock
    archive_pages: tuple[ArchivePage, ...]  # oldest first; empty for the combined feed

    @property
    def newest_archive(self) -> int | None:
        return len(self.archive_pages) or None


@dataclass(frozen=True)
class ArchivePage:
    """RFC 5005 archive page ``number`` (1 = oldest); its entries newest first."""

    number: int
    entries: tuple[Entry, ...]
    updated: datetime


def split_archive(entries_oldest_first: list[Entry], max_items: int, page_size: int
                  ) -> tuple[list[Entry], list[list[Entry]]]:
    """(subscription window newest first, archive chunks oldest first).

    The window holds the newest ``max_items``; everything older fills pages of ``page_size`` from the
    oldest. There is always exactly one partial (possibly empty) page after the full ones, so a new
    article only ever lands in that last page: full pages, including their next-archive link, never
    change again unless one of their articles (or an older one) is edited, inserted or removed.
    """
    cut = max(len(entries_oldest_first) - max_items, 0)
    window = entries_oldest_first[cut:][::-1]
    older = entries_oldest_first[:cut]
    if not older:
        return window, []
    pages = [older[i:i + page_size] for i in range(0, len(older) // page_size * page_size + 1, page_size)]
    return window, pages


def column_entries(src: SourceRec) -> list[Entry]:
    """The column's visible articles as entries, oldest first.

    An article whose URL is not absolute http(s) is corrupt data (the crawler stores absolute URLs); it is
    left out rather than published as a link or id a reader cannot follow (or that runs script).
    """
    entries = []
    for art in src.articles:
        if is_absolute_http(art.url):
            entries.append(make_entry(art, src.title))
        else:
            log.warning("%s: article URL %r is not an absolute http(s) URL: left out of the feeds",
                        src.name, art.url)
    return entries


def source_plan(src: SourceRec, entries: list[Entry], urls: Urls, max_items: int, page_size: int) -> FeedPlan:
    """``entries``: :func:`column_entries` of ``src`` (passed in so that they are built only once)."""
    window, chunks = split_archive(entries, max_items, page_size)
    pages: list[ArchivePage] = []
    for number, chunk in enumerate(chunks, start=1):
        # An empty last page takes the date of the full page before it (there always is one).
        updated = max((e.modified for e in chunk), default=pages[-1].updated if pages else src.created_at)
        pages.append(ArchivePage(number=number, entries=tuple(chunk[::-1]), updated=updated))
    title = one_line(src.title) or src.name
    return FeedPlan(
        slug=src.name,
        title=title,
        description=f"{title} · 全文订阅 Full-text feed",
        home_url=xml_safe(src.column_url) if is_absolute_http(src.column_url) else urls.index,
        entries=tuple(window),
        total=len(entries),
        updated=src.changed,
        archive_pages=tuple(pages),
    )


def combined_plan(snapshot: Snapshot, entries: dict[str, list[Entry]], urls: Urls, max_items: int
                  ) -> FeedPlan:
    """Every column's newest items together; an article listed in two columns appears once, with both."""
    merged: dict[str, Entry] = {}
    for src in snapshot.sources:
        for entry in entries[src.name]:
            seen = merged.get(entry.id)
            if seen is None:
                merged[entry.id] = entry
            elif entry.categories[0] not in seen.categories:
                merged[entry.id] = replace(seen, categories=seen.categories + entry.categories)
    newest = sorted(merged.values(), key=lambda e: e.sort_key, reverse=True)[:max_items]
    titles = "、".join(one_line(s.title) for s in snapshot.sources)
    return FeedPlan(
        slug=ALL_SLUG,
        title=ALL_TITLE,
        description=f"{titles} · 全文订阅 Full-text feed",
        home_url=urls.index,
        entries=tuple(newest),
        total=len(merged),
        updated=snapshot.changed or min(s.created_at for s in snapshot.sources),
        archive_pages=(),
    )
