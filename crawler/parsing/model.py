"""What page parsing produces: plain data, no Scrapy, no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Selectors:
    """CSS selectors for one source. ``None`` means: use the built-in VSB defaults and fallbacks.

    Every field can be overridden per source in sources.toml (``[source.selectors]``).
    """

    list_item: str | None = None  # one element per list entry, e.g. "li[id^=line_u]"
    list_link: str | None = None  # inside an item: the article link
    list_date: str | None = None  # inside an item: the element holding the date
    next_page: str | None = None  # the "下页" link on a list page
    title: str | None = None  # article page: the title element
    meta: str | None = None  # article page: the 发布时间/作者/来源 line
    body: str | None = None  # article page: the body container
    attachments: str | None = None  # article page: attachment links


@dataclass(frozen=True)
class ListEntry:
    url: str  # absolute; content.jsp forms mapped to /info/<tree>/<news>.htm
    title: str  # the full title when the list carries one (title attribute), else the shown text
    list_text: str  # the link text as shown (maybe truncated with "...")
    title_truncated: bool  # True when ``title`` is only the truncated list text
    published: datetime | None  # aware, Asia/Shanghai; date-only values at 00:00
    newsid: int | None  # VSB wbnewsid when the URL carries one


@dataclass(frozen=True)
class ListPage:
    entries: list[ListEntry]
    next_url: str | None  # absolute URL of the next (older) list page, None on the last page
    total_pages: int | None  # from the pager when it says so
    total_items: int | None  # from "共N条" when present


@dataclass(frozen=True)
class AttachmentLink:
    name: str  # file name as the site shows it (link text), e.g. "名单.xlsx"
    url: str  # absolute
    in_body: bool = False  # False: from the 附件 list after the body; True: a file linked inside the body


@dataclass(frozen=True)
class ArticlePage:
    title: str | None  # full title from the page (h1/h2/.title/...), None when not found
    published: datetime | None  # aware Asia/Shanghai when the page shows a date, else None
    date_only: bool  # True when the page gave a date without a time
    author: str | None
    origin: str | None  # 来源 / 供稿单位 / 发布单位
    editor: str | None  # 编辑 / 责任编辑 / 网络编辑
    body_html: str | None  # sanitized, every link and image URL absolute; None when no body found
    body_text: str  # plain text of the body, paragraphs separated by "\n"
    images: list[str] = field(default_factory=list)  # absolute image URLs in body order
    attachments: list[AttachmentLink] = field(default_factory=list)  # list + in-body file links
    breadcrumb: list[tuple[str, str]] = field(default_factory=list)  # (text, absolute url) in order
