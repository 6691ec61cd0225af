"""What the spider hands to the storage pipeline (dataclass items; Scrapy handles them via itemadapter)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from db.store import ArticleRecord, ListEntryRecord


@dataclass
class ListPageItem:
    """The entries of one list page, stored together."""

    entries: list[ListEntryRecord]


@dataclass
class ArticleItem:
    record: ArticleRecord


@dataclass
class CheckItem:
    """The outcome of fetching an article page that yielded no new content."""

    url: str
    outcome: str  # "unchanged" (304), "removed" (404/410 of a stored article) or "failed"
    reason: str = ""
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class ArticlePageItem:
    """A fetched article page (status 200) and what the list said of it; parsed where it is stored.

    The storage step turns it into an ``ArticleItem`` (or a failed ``CheckItem`` on template drift):
    in the pipeline, or in the article worker process during a big run (crawler.article_worker), so
    that the crawl process only downloads. Picklable; no Scrapy objects.
    """

    url: str  # canonical URL the article is known under (the one asked for, before redirects)
    page_url: str  # the URL the page was served from (after redirects): base of its relative links
    body: bytes = field(repr=False)
    charset: str | None  # from the Content-Type header
    etag: str | None
    last_modified: str | None
    list_title: str | None
    list_published: datetime | None
