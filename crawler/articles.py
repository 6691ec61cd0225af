"""From a fetched article page to what is stored: decode, parse, decide (pure; no Scrapy, no database).

The spider's article callback calls it, so that page parsing stays testable without a crawl.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from crawler.items import ArticleItem, CheckItem
from crawler.parsing import decode_html, newsid_of, parse_article
from crawler.parsing.model import Selectors
from db import store
from db.filetypes import mime_type

logger = logging.getLogger("crawler.spiders.column")


@dataclass(frozen=True)
class FetchedPage:
    """A fetched article page (status 200) and what the list said of it."""

    url: str  # canonical URL the article is known under (the one asked for, before redirects)
    page_url: str  # the URL the page was served from (after redirects): base of its relative links
    body: bytes = field(repr=False)
    charset: str | None  # from the Content-Type header
    etag: str | None
    last_modified: str | None
    list_title: str | None
    list_published: datetime | None


@dataclass(frozen=True)
class ArticleOutcome:
    item: ArticleItem | CheckItem
    drifted: bool = False  # no title or body: counts towards the run's template-drift verdict


def build_article(page: FetchedPage, selectors: Selectors | None, source_name: str) -> ArticleOutcome:
    parsed = parse_article(decode_html(page.body, page.charset), page.page_url, selectors)
    title = parsed.title or page.list_title or title_from_text(parsed.body_text)
    if not title or parsed.body_html is None:
        missing = "title" if not title else "body"
        reason = f"template changed? article page yielded no {missing}"
        return ArticleOutcome(CheckItem(source_name, page.url, "failed", reason), drifted=True)
    published = published_date(parsed.published, parsed.date_only, page.list_published)
    if published is None:
        logger.warning("%s: no date for %s on the list or the page; using first-seen time", source_name, page.url)
    return ArticleOutcome(ArticleItem(source_name, store.ArticleRecord(
        url=page.url, title=title, published_at=published, body_html=parsed.body_html, body_text=parsed.body_text,
        newsid=newsid_of(page.url), list_title=page.list_title, author=parsed.author, origin=parsed.origin,
        editor=parsed.editor, images=list(parsed.images),
        attachments=[store.AttachmentRecord(name=a.name, url=a.url, in_body=a.in_body,
                                            mime_type=mime_type(a.name)) for a in parsed.attachments],
        etag=page.etag, last_modified=page.last_modified,
    )))


def published_date(page_date: datetime | None, date_only: bool, list_date: datetime | None) -> datetime | None:
    """A time the article page gives beats the list's bare date; then the list; then the page's date."""
    if page_date is not None and not date_only:
        return page_date
    if list_date is not None:
        return list_date
    return page_date


def title_from_text(text: str, limit: int = 60) -> str | None:
    """A title for a page whose title (on the page and in the list) is blank: its first line of text."""
    line = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    return (line[: limit - 1] + "…" if len(line) > limit else line) or None
