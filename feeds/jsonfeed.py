"""JSON Feed 1.1 (``<slug>.json``), written with :mod:`json` directly: sorted keys, UTF-8, stable bytes."""

from __future__ import annotations

import json
from typing import Any

from feeds.plan import Entry, FeedPlan, Urls, iso

VERSION = "https://jsonfeed.org/version/1.1"
# What "_archive.page_url" is: our page of the article, kept after the source removes or edits it.
ARCHIVE_ABOUT = "https://github.com/ghu-feeds/ghu-feeds#article-pages"


def subscription_json(plan: FeedPlan, urls: Urls) -> bytes:
    doc: dict[str, Any] = {
        "version": VERSION,
        "title": plan.title,
        "description": plan.description,
        "home_page_url": plan.home_url,
        "feed_url": urls.feed(plan.slug, "json"),
        "language": "zh-CN",
        "items": [_item(e) for e in plan.entries],
    }
    return (json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")


def _item(e: Entry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": e.id,
        "url": e.url,  # the off-site page for external items (their canonical URL is that page)
        "title": e.title,
        "content_html": e.content_html,
        "summary": e.summary,
        "date_published": iso(e.published),
        "date_modified": iso(e.modified),
        "tags": list(e.categories),
    }
    if e.author:
        item["authors"] = [{"name": e.author}]
    if e.page_url:  # JSON Feed has no related link: an extension object (keys starting with "_" are allowed)
        item["_archive"] = {"about": ARCHIVE_ABOUT, "page_url": e.page_url}
    if e.attachments:
        item["attachments"] = [{"url": a.url, "title": a.name, "mime_type": a.mime_type,
                                **({"size_in_bytes": a.length} if a.length else {})} for a in e.attachments]
    return item
