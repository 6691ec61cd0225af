"""What the spider hands to the storage pipeline (dataclass items; Scrapy handles them via itemadapter).

Every item names its source: one crawl process crawls several sources side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from db.store import ArticleRecord, ListEntryRecord


@dataclass
class ListPageItem:
    """The entries of one list page, stored together."""

    source: str
    entries: list[ListEntryRecord]


@dataclass
class ArticleItem:
    source: str
    record: ArticleRecord


@dataclass
class CheckItem:
    """The outcome of fetching an article page that yielded no new content."""

    source: str
    url: str
    outcome: str  # "unchanged" (304), "removed" (404/410 of a stored article) or "failed"
    reason: str = ""
    etag: str | None = None
    last_modified: str | None = None
