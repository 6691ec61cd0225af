"""``python scheduler.py add URL --all``: every list column in a VSB site's navigation becomes a source.

The navigation of the given page (its menus, and the 更多 links of its blocks) is read. Each on-site link
that is not an article, a file or the home page is fetched (robots.txt obeyed, ``CRAWL_DELAY`` apart) and
kept when it is a column list page: list entries *and* a pager, which VSB prints on every list page
(``共N条 1/1`` for a short column). A parent column's landing page shows entries too, in blocks without a
pager, and is skipped like any other page that is not a list; the column menus of the pages fetched from
the navigation are read once more, as some sites show sub-columns only there. Columns already in the
sources file (same list URL, or the same column name on the same host) are left alone. The new sources
are appended in one atomic write that keeps the file's comments; ``--dry-run`` writes nothing.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
from lxml import etree

from crawler import vsb
from crawler.add_source import (
    AddError,
    Fetcher,
    Page,
    append_tables,
    column_of_list,
    page_kind,
    read_sources_file,
    same_page,
    slug_for,
    source_title,
)
from crawler.parsing import ListPage, canonical_article_url, looks_like_vsb, nav_tier, parse_article, parse_list_page
from crawler.sources import Source, source_from_table
from db.filetypes import DOCUMENT_EXTENSIONS, MEDIA_EXTENSIONS, url_extension
from settings import AppConfig

MAX_PAGES = 80  # pages fetched at most, robots.txt aside: a menu is not a site map
_SKIP_SCHEMES = ("javascript:", "mailto:", "tel:", "#")


@dataclass(frozen=True)
class Link:
    text: str
    url: str
    depth: int  # 0: on the given page; 1: in the column menu of a page linked from it


@dataclass
class Row:
    """One line of the table: what a navigation link turned out to be."""

    result: str  # added | would add | present | skipped
    name: str  # the source's name ("" when skipped)
    column: str  # the column as the site names it, or the link's text
    url: str
    detail: str  # entries and pages of a column, or why it was skipped


# ---------------------------------------------------------------- links
def nav_links(page: Page, depth: int, *, menus_only: bool = False) -> Iterator[Link]:
    """Links of the page's navigation (menus; 更多 links unless ``menus_only``, which keeps only column
    menus), in document order. List entries and pagers are not navigation."""
    try:
        root = lxml.html.fromstring(page.html.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
    except (etree.LxmlError, ValueError):
        return
    for a in root.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or href.lower().startswith(_SKIP_SCHEMES) or _in_list_or_pager(a):
            continue
        text = " ".join(a.text_content().split()) or (a.get("title") or "").strip()
        tier = nav_tier(a)
        more = vsb.MORE_TEXT.search(text) is not None or "more" in (a.get("class") or "").lower()
        if tier == 1 or (not menus_only and (tier == 2 or more)):
            try:
                url = urldefrag(urljoin(page.url, href))[0]
            except ValueError:
                continue
            yield Link(text, url, depth)


def _in_list_or_pager(a: etree._Element) -> bool:
    node = a.getparent()
    while node is not None:
        if (node.get("id") or "").startswith(vsb.LIST_ITEM_ID_PREFIX) or vsb.PAGER_CLASS in (node.get("class") or ""):
            return True
        node = node.getparent()
    return False


def _why_not_fetched(link: Link, fetcher: Fetcher) -> str | None:
    """The reason a link is not a column without fetching it, or None."""
    try:
        parts = urlsplit(link.url)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https"):
        return "not a web page"
    if not fetcher.on_host(link.url):
        return "external link"
    if vsb.is_home_path(parts.path):
        return "home page"
    if vsb.is_article_url(link.url):
        return "article page"
    ext = url_extension(link.url)
    if vsb.DOWNLOAD_HREF.search(link.url) or ext in DOCUMENT_EXTENSIONS or ext in MEDIA_EXTENSIONS:
        return "file"
    return None


def is_column_list(listing: ListPage) -> bool:
    """List entries and a pager: what a VSB column's list page shows (a landing page's blocks have none)."""
    return bool(listing.entries) and bool(listing.total_pages or listing.total_items or listing.next_url)


# ---------------------------------------------------------------- the site
class SiteScan:
    """Walks the navigation of one page and sorts its links into columns and the rest."""

    def __init__(self, fetcher: Fetcher, tables: list[dict[str, Any]]) -> None:
        self.fetcher = fetcher
        self.tables = tables
        self.taken = {t["name"] for t in tables if isinstance(t.get("name"), str)}
        self.rows: list[Row] = []
        self.new: list[dict[str, str]] = []
        self.pages = 0
        self._found: list[tuple[Row, dict[str, str], str | None]] = []

    def run(self, start: Page) -> None:
        queue = deque(nav_links(start, 0))
        seen = {canonical_article_url(start.url)}
        while queue:
            link = queue.popleft()
            key = canonical_article_url(link.url)
            if key in seen:
                continue
            seen.add(key)
            page = self._visit(link)
            if page is not None and link.depth == 0:
                queue.extend(nav_links(page, 1, menus_only=True))
        self._decide()

    def _visit(self, link: Link) -> Page | None:
        """Adds the link's row; returns the fetched page, if any."""
        reason = _why_not_fetched(link, self.fetcher)
        if reason is None and self.pages >= MAX_PAGES:
            reason = f"not fetched: {MAX_PAGES} pages looked at already"
        if reason is not None:
            self._skip(link, reason)
            return None
        self.pages += 1
        try:
            page = self.fetcher.page(link.url)
        except AddError as exc:
            self._skip(link, str(exc).replace(link.url, "").strip(" :") or "not fetched")
            return None
        listing = parse_list_page(page.html, page.url)
        article = parse_article(page.html, page.url)
        kind = page_kind(page, article, listing)
        if kind == "list" and is_column_list(listing):
            self._column(link, page, listing, article.breadcrumb)
        elif kind in ("article", "home"):
            self._skip(link, f"{kind} page")
        elif listing.entries:
            self._skip(link, "not a list page: entries but no pager (a landing page)")
        else:
            self._skip(link, "not a list page")
        return page

    def _skip(self, link: Link, reason: str) -> None:
        self.rows.append(Row("skipped", "", link.text, link.url, reason))

    def _column(self, link: Link, page: Page, listing: ListPage, trail: list[tuple[str, str]]) -> None:
        """A column found: its row is completed by :meth:`_decide` once every column is known."""
        list_url = urldefrag(page.url)[0]
        column = column_of_list(page, None) or link.text or None
        pages = f", {listing.total_pages} pages" if listing.total_pages else ""
        row = Row("", "", column or "", list_url, f"{len(listing.entries)} entries on page 1{pages}")
        table = {"title": source_title(page.html, column, list_url), "list_url": list_url}
        if column:
            table["column"] = column
        self.rows.append(row)
        self._found.append((row, table, _parent(trail, list_url, column)))

    def _decide(self) -> None:
        """Each column found is new, or already in the file: under the same list URL, or (for a source
        whose list URL is none of the pages found, e.g. a wrong guess that discovery corrected) under
        the same column name on the same host. Two new columns of one name are both new."""
        found_urls = {canonical_article_url(t["list_url"]) for _row, t, _parent in self._found}
        names = Counter(t.get("column") for _row, t, _parent in self._found)
        for row, table, parent in self._found:
            column = table.get("column")
            title = table["title"]
            if column and parent and names[column] > 1 and title.endswith(column):  # 通知公告 under two parents
                table["title"] = f"{title[:-len(column)]}{parent} · {column}"  # says which in the title
            present = self._present(table, found_urls)
            if present is not None:
                row.result, row.name = "present", str(present.get("name", ""))
                continue
            name = slug_for(table["list_url"], self.taken)
            self.taken.add(name)
            self.new.append({"name": name, **table})
            row.result, row.name = "added", name

    def _present(self, table: dict[str, str], found_urls: set[str]) -> dict[str, Any] | None:
        list_url, column = table["list_url"], table.get("column")
        for other in [*self.tables, *self.new]:
            if same_page(list_url, other.get("list_url")):
                return other
        for other in self.tables:
            theirs = other.get("list_url")
            if isinstance(theirs, str) and canonical_article_url(theirs) in found_urls:
                continue  # that source is one of the columns found: a namesake here is another column
            their_host = _host(theirs or other.get("seed_url") or "")
            if column and other.get("column") == column and their_host == _host(list_url):
                return other
        return None


def _parent(trail: list[tuple[str, str]], list_url: str, column: str | None) -> str | None:
    """The parent column's name: the breadcrumb link before the column's own, unless it is the home page."""
    texts = [t for t, u in trail if not vsb.is_home_url(u) and t not in vsb.HOME_TEXTS]
    own = next((i for i, (t, u) in enumerate(trail) if same_page(u, list_url) or t == column), None)
    if own is None:
        return texts[-2] if len(texts) >= 2 else None
    before = [t for t, u in trail[:own] if not vsb.is_home_url(u) and t not in vsb.HOME_TEXTS]
    return before[-1] if before else None


def _host(url: Any) -> str:
    try:
        return (urlsplit(url).hostname or "") if isinstance(url, str) else ""
    except ValueError:
        return ""


# ---------------------------------------------------------------- output
def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def print_table(rows: list[Row], out: TextIO) -> None:
    header = Row("result", "source", "column", "URL", "found")
    cells = [[r.result, r.name or "-", r.column or "-", r.url, r.detail] for r in [header, *rows]]
    widths = [max(_width(c[i]) for c in cells) for i in range(4)]
    for c in cells:
        print("  ".join(_pad(c[i], widths[i]) for i in range(4)) + "  " + c[4], file=out)


# ---------------------------------------------------------------- entry point
def add_site(cfg: AppConfig, url: str, *, dry_run: bool, out: TextIO) -> list[Source]:
    """Add every list column in the navigation of ``url``'s page; return the sources added (or, with
    ``dry_run``, that would be). AddError when the page is not VSB or its navigation holds no column."""
    url = url.strip()
    path = Path(cfg.SOURCES_FILE)
    old, tables = read_sources_file(path)
    fetcher = Fetcher(url, delay=cfg.CRAWL_DELAY)
    start = fetcher.page(url)
    if not looks_like_vsb(start.html):
        raise AddError(f"{url} is not a VSB (博达) site page: no VSB template markers")
    scan = SiteScan(fetcher, tables)
    scan.run(start)
    if dry_run:
        for row in scan.rows:
            row.result = "would add" if row.result == "added" else row.result
    columns = [r for r in scan.rows if r.result != "skipped"]
    print(f"navigation of {start.url}: {len(scan.rows)} links, {len(columns)} list columns, "
          f"{scan.pages} pages fetched", file=out)
    print_table(scan.rows, out)
    if not columns:
        raise AddError(f"no list column found in the navigation of {start.url}; give a column's list page instead")
    sources = [source_from_table(t) for t in scan.new]
    if not scan.new:
        print(f"nothing to add: every column found is already in {path}", file=out)
    elif dry_run:
        print(f"dry run: {len(scan.new)} sources would be added to {path}; nothing written", file=out)
    else:
        append_tables(path, old, scan.new)
        print(f"added {len(scan.new)} sources to {path}: {', '.join(s.name for s in sources)}", file=out)
    return sources
