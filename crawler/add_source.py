"""``python scheduler.py add URL``: find a VSB column from any of its pages and append it to the sources file.

The URL may be the column's list page, one of its articles or the site's home page. The list page is
found the way the spider finds it (breadcrumb, then column menus), checked by parsing it, and the newest
article is fetched so the operator sees what the feed will hold before the first crawl. Nothing is
written unless all of that worked: a wrong URL costs one clear line (:class:`AddError`), not a broken
source that fails every hour.

Fetching is deliberately small and polite: urllib with our User-Agent, robots.txt obeyed, one host only
(redirects elsewhere are refused), a size cap and a timeout. Scrapy would be overkill for a handful of
pages and cannot be started twice in one process.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import urllib.robotparser
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urldefrag, urljoin, urlsplit

import lxml.html
import tomlkit

from crawler import vsb
from crawler.parsing import (
    SHANGHAI,
    ArticlePage,
    ListEntry,
    ListPage,
    canonical_article_url,
    decode_html,
    find_column_list_url,
    header_charset,
    looks_like_vsb,
    nav_tier,
    parse_article,
    parse_list_page,
)
from crawler.sources import NAME_RE, RESERVED_NAMES, Source, source_from_table
from db.filetypes import DOCUMENT_EXTENSIONS, MEDIA_EXTENSIONS, url_extension
from settings import USER_AGENT, AppConfig

TIMEOUT = 15.0
MAX_BYTES = 16 * 1024 * 1024
MAX_CANDIDATES = 12  # home page links tried as list pages before giving up
BODY_PREVIEW = 80

_SLUG_BAD = re.compile(r"[^a-z0-9_-]+")
NEW_FILE_HEADER = ("# Columns to crawl. Each [[source]] is one VSB column; `name` is the slug used in feed file\n"
                   "# names and URLs. `python scheduler.py add URL` appends more.\n")


class AddError(Exception):
    """The URL is not a usable VSB column; the message says why in one line. Nothing was written."""


@dataclass(frozen=True)
class Page:
    url: str  # after redirects (same host): relative links resolve against it
    html: str


@dataclass(frozen=True)
class Found:
    """A verified column list page and how it was found."""

    page: Page
    listing: ListPage
    how: str
    column: str | None  # the column name as the site shows it, when known


# ---------------------------------------------------------------- fetching
class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only on the host the operator named."""

    def __init__(self, netloc: str) -> None:
        self.netloc = netloc

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        parts = urlsplit(newurl)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != self.netloc:
            raise AddError(f"{req.full_url} redirects to another host ({newurl}); give a URL on the column's own site")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Fetcher:
    """GETs pages of one host with our User-Agent, obeying its robots.txt, at most one request per
    ``delay`` seconds (``add --all`` fetches every page of a site's navigation)."""

    def __init__(self, url: str, delay: float = 0.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AddError(f"not an http(s) URL: {url!r}")
        self.scheme, self.netloc = parts.scheme, parts.netloc.lower()
        self.host = parts.hostname
        self.opener = urllib.request.build_opener(_SameHostRedirects(self.netloc))
        self.robots: urllib.robotparser.RobotFileParser | None = None
        self.fetched = 0
        self.delay = max(0.0, delay)
        self._last: float | None = None

    def on_host(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == self.netloc

    def _robots(self) -> urllib.robotparser.RobotFileParser:
        """Parsed robots.txt; a missing one (4xx) allows everything, 401/403 nothing (as Python's own reader)."""
        if self.robots is None:
            rp = urllib.robotparser.RobotFileParser(f"{self.scheme}://{self.netloc}/robots.txt")
            try:
                _url, body, _ctype = self._get(rp.url)
            except urllib.error.HTTPError as exc:
                if exc.code in (401, 403):
                    rp.disallow_all = True
                else:  # 404 etc.; 5xx: treat as absent, as Scrapy's robots.txt middleware does
                    rp.allow_all = True
            else:
                rp.parse(body.decode("utf-8", errors="replace").splitlines())
            self.robots = rp
        return self.robots

    def _polite(self) -> None:
        if self.delay and self._last is not None:
            wait = self._last + self.delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last = time.monotonic()

    def _get(self, url: str) -> tuple[str, bytes, str]:
        # only http(s) URLs of one host get here: Fetcher checks the scheme, redirects are re-checked
        self._polite()
        request = urllib.request.Request(  # noqa: S310
            url, headers={"User-Agent": USER_AGENT, "Accept": "text/html,*/*;q=0.5"})
        try:
            with self.opener.open(request, timeout=TIMEOUT) as response:
                body = response.read(MAX_BYTES + 1)
                if len(body) > MAX_BYTES:
                    raise AddError(f"{url} is larger than {MAX_BYTES // (1024 * 1024)} MB; not a list or article page")
                return response.geturl(), body, response.headers.get("Content-Type", "")
        except urllib.error.HTTPError:
            raise
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise AddError(f"{self.netloc} did not answer within {TIMEOUT:.0f} s ({url})") from None
            raise AddError(f"cannot reach {self.netloc}: {_reason(exc.reason)}") from None
        except TimeoutError:
            raise AddError(f"{self.netloc} did not answer within {TIMEOUT:.0f} s ({url})") from None
        except (OSError, ValueError) as exc:  # connection reset mid-body, bad URL characters, ...
            raise AddError(f"cannot fetch {url}: {_reason(exc)}") from None

    def page(self, url: str) -> Page:
        """One HTML page of this host, decoded; AddError for anything else."""
        url = urldefrag(url)[0]
        if not self.on_host(url):
            raise AddError(f"{url} is not on {self.netloc}; the column must be on the URL's own site")
        if not self._robots().can_fetch(USER_AGENT, url):
            raise AddError(f"robots.txt of {self.netloc} does not allow fetching {url}")
        try:
            final, body, ctype = self._get(url)
        except urllib.error.HTTPError as exc:
            raise AddError(f"{url} answered HTTP {exc.code} {exc.reason}".rstrip()) from None
        self.fetched += 1
        mime = ctype.split(";")[0].strip().lower()
        if mime and mime not in ("text/html", "application/xhtml+xml", "text/plain"):
            raise AddError(f"{url} is not an HTML page ({mime})")
        return Page(final, decode_html(body, header_charset(ctype)))

    def try_page(self, url: str) -> Page | None:
        try:
            return self.page(url)
        except AddError:
            return None


def _reason(exc: object) -> str:
    text = str(exc).strip()
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text


# ---------------------------------------------------------------- page kinds
def page_kind(page: Page, article: ArticlePage, listing: ListPage) -> str:
    """Classify a page as ``article``, ``home``, ``list`` or ``other``.

    VSB's visit counter names the template that rendered the page (``_jsq_(tree,'/content.jsp',...)``,
    ``'/list.jsp'``, ``'/index.jsp'``); structure decides when it is absent: an article body, the site
    root, list entries. A home page has list-shaped blocks too, so it is recognised before lists.
    """
    template = vsb.template_of(page.html)
    if article.body_html is not None or template == vsb.ARTICLE_TEMPLATE:
        return "article"
    if template == vsb.HOME_TEMPLATE or vsb.is_home_url(page.url):
        return "home"
    if listing.entries:
        return "list"
    return "other"


def _list_of(page: Page) -> ListPage | None:
    """The page's listing when it is a column list page with entries, else None."""
    listing = parse_list_page(page.html, page.url)
    if not listing.entries or page_kind(page, parse_article(page.html, page.url), listing) != "list":
        return None
    return listing


def column_of_list(page: Page, hint: str | None) -> str | None:
    """The column's name from its own list page: the breadcrumb link to itself, the breadcrumb's last
    link, or the ``<title>`` (``<column>-<site>``)."""
    if hint:
        return hint
    trail = [(t, urldefrag(u)[0]) for t, u in parse_article(page.html, page.url).breadcrumb]
    for text, url in trail:
        if url == urldefrag(page.url)[0]:
            return text
    trail = [(t, u) for t, u in trail if not vsb.is_home_url(u) and t not in vsb.HOME_TEXTS]
    if trail:
        return trail[-1][0]
    column, _site = title_parts(page.html)
    return column


def title_parts(html: str) -> tuple[str | None, str | None]:
    """``<TITLE>党校工作动态-长春光华学院组织部</TITLE>`` -> (column, site)."""
    match = re.search(r"<title[^>]*>(.*?)</title>", html, re.I | re.S)
    text = " ".join(unescape(match.group(1)).split()) if match else ""
    head, sep, tail = text.rpartition("-")
    if sep and head.strip() and tail.strip():
        return head.strip(), tail.strip()
    return (text or None), None


# ---------------------------------------------------------------- finding the list page
def _from_list(page: Page, listing: ListPage, column: str | None) -> Found:
    return Found(page, listing, "the given URL", column_of_list(page, column))


def _from_article(fetcher: Fetcher, page: Page, article: ArticlePage, column: str | None) -> Found:
    target = find_column_list_url(page.html, page.url, column)
    if target is None:
        what = f"no link named {column!r}" if column else "no breadcrumb link to its column"
        raise AddError(f"article page {page.url} has {what}; give the column's list page instead")
    if not fetcher.on_host(target):
        raise AddError(f"the article's column link {target} is on another host; give a URL on that site")
    found = _checked_list(fetcher, target)
    if found is None:
        raise AddError(f"the article's column link {target} is not a list page with entries")
    name = column
    if name is None:
        name = next((t for t, u in article.breadcrumb if urldefrag(u)[0] == target), None)
    how = "the article's breadcrumb" if column is None else f"the article page's link named {column!r}"
    return Found(found[0], found[1], how, column_of_list(found[0], name))


def _from_home(fetcher: Fetcher, page: Page, column: str | None) -> Found:
    """With a column name: the link so named. Without: 更多/more links first, then navigation links;
    the first that parses as a list page with entries."""
    if column:
        target = find_column_list_url(page.html, page.url, column)
        if target is None:
            raise AddError(f"{page.url} has no link named {column!r}; check the column name as the site shows it")
        found = _checked_list(fetcher, target)
        if found is None:
            raise AddError(f"the link named {column!r} ({target}) is not a list page with entries")
        return Found(found[0], found[1], f"the link named {column!r} on {page.url}", column)
    tried = 0
    for text, url in _candidate_links(page, fetcher):
        if tried >= MAX_CANDIDATES:
            break
        tried += 1
        found = _checked_list(fetcher, url)
        if found is not None:
            return Found(found[0], found[1], f"the link {text!r} on {page.url}", column_of_list(found[0], None))
    raise AddError(f"no column list page found among {tried} links of {page.url}; "
                   "give --column NAME, a list page or an article URL")


def _candidate_links(page: Page, fetcher: Fetcher) -> Iterator[tuple[str, str]]:
    """(text, url) of on-host links that could lead to a column list: 更多/more first, then navigation."""
    root = lxml.html.fromstring(page.html.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
    more: list[tuple[str, str]] = []
    nav: list[tuple[str, str]] = []
    for a in root.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:")):
            continue
        url = urldefrag(urljoin(page.url, href))[0]
        path = urlsplit(url).path.lower()
        if not fetcher.on_host(url) or vsb.is_home_path(path) or _not_a_list(url):
            continue
        text = " ".join(a.text_content().split()) or (a.get("title") or "").strip()
        if vsb.MORE_TEXT.search(text) or "more" in (a.get("class") or "").lower():
            more.append((text, url))
        elif nav_tier(a) <= 2:
            nav.append((text, url))
    seen = {urldefrag(page.url)[0]}
    for text, url in more + nav:
        if url not in seen:
            seen.add(url)
            yield text, url


def _not_a_list(url: str) -> bool:
    """An article page or a file download: never a column's list page."""
    ext = url_extension(url)
    return (vsb.is_article_url(url) or vsb.DOWNLOAD_HREF.search(url) is not None
            or ext in DOCUMENT_EXTENSIONS or ext in MEDIA_EXTENSIONS)


def _checked_list(fetcher: Fetcher, url: str) -> tuple[Page, ListPage] | None:
    if not fetcher.on_host(url):
        return None
    page = fetcher.try_page(url)
    if page is None:
        return None
    listing = _list_of(page)
    return None if listing is None else (page, listing)


def find_column(fetcher: Fetcher, url: str, column: str | None) -> tuple[Found, str]:
    """The column's list page from the given URL, and the URL's kind."""
    page = fetcher.page(url)
    if not looks_like_vsb(page.html):
        raise AddError(f"{url} is not a VSB (博达) site page: no VSB template markers")
    article = parse_article(page.html, page.url)
    listing = parse_list_page(page.html, page.url)
    kind = page_kind(page, article, listing)
    if kind == "article":
        return _from_article(fetcher, page, article, column), kind
    if kind == "list":
        return _from_list(page, listing, column), kind
    if kind == "other" and (vsb.template_of(page.html) == vsb.LIST_TEMPLATE or vsb.PAGER_CLASS in page.html):
        raise AddError(f"{url} looks like a list page but no entries were found on it (template not supported?)")
    return _from_home(fetcher, page, column), kind


# ---------------------------------------------------------------- reporting
def _newest(entries: list[ListEntry], fetcher: Fetcher) -> ListEntry | None:
    """The newest on-site entry: by date (pinned items may stand above newer ones), list order on ties."""
    local = [(i, e) for i, e in enumerate(entries) if fetcher.on_host(e.url)]
    if not local:
        return None
    dated = [(e.published, -i, e) for i, e in local if e.published is not None]
    return max(dated, key=lambda t: (t[0], t[1]))[2] if dated else local[0][1]


def _list_rule(html: str) -> str:
    """Which built-in rule matched (the parsers expose no trace, so the markup is checked directly)."""
    if re.search(rf"""id\s*=\s*["']?{vsb.LIST_ITEM_ID_PREFIX}""", html):
        return f"default VSB selectors ({vsb.LIST_ITEMS.split(',')[0]})"
    return "fallback: the largest group of sibling items with a link and a date"


def _body_rule(html: str) -> str:
    main = vsb.BODY_SELECTORS[0]  # .v_news_content
    if main.lstrip(".") in html:
        return f"default VSB selectors ({main})"
    if re.search(r"""id\s*=\s*["']?vsb_(?:content|newscontent)""", html):
        return "default VSB selectors (#vsb_content)"
    return "fallback body selectors"


def _report(out: TextIO, found: Found, title: str, fetcher: Fetcher) -> None:
    listing = found.listing
    pages = f" of {listing.total_pages} pages" if listing.total_pages else ""
    total = f", {listing.total_items} items in all" if listing.total_items else ""
    print(f"column:       {found.column or '(unknown)'}", file=out)
    print(f"title:        {title}", file=out)
    print(f"list URL:     {found.page.url}  (found: {found.how})", file=out)
    print(f"entries:      {len(listing.entries)} on page 1{pages}{total}", file=out)
    print(f"list:         {_list_rule(found.page.html)}", file=out)
    entry = _newest(listing.entries, fetcher)
    if entry is None:
        print("newest:       no on-site article on page 1 (all entries link to other sites)", file=out)
        return
    try:
        page = fetcher.page(entry.url)
    except AddError as exc:  # one unreachable article is the crawl's problem, not a reason to refuse the column
        print(f"newest:       {entry.url} could not be fetched: {exc}", file=out)
        return
    art = parse_article(page.html, page.url)
    art_title = art.title or entry.title
    if art.body_html is None or not art_title:
        raise AddError(f"the newest article {entry.url} has no recognizable {'body' if art_title else 'title'}; "
                       "this template needs [source.selectors]")
    when = art.published or entry.published
    body = " ".join(art.body_text.split())
    preview = body[:BODY_PREVIEW] + ("…" if len(body) > BODY_PREVIEW else "")
    print(f"newest:       {entry.url}", file=out)
    print(f"  title:      {art_title}", file=out)
    print(f"  date:       {when.astimezone(SHANGHAI).date().isoformat() if when else '(none)'}", file=out)
    print(f"  author:     {art.author or '(none)'}", file=out)
    print(f"  body:       {preview or '(empty)'}", file=out)
    names = [a.name for a in art.attachments]
    print(f"  attachments: {', '.join(names) if names else '(none)'}", file=out)
    print(f"article:      {_body_rule(page.html)}", file=out)


# ---------------------------------------------------------------- the sources file
def existing_tables(text: str, path: Path) -> list[dict[str, Any]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AddError(f"{path}: invalid TOML, fix it first: {exc}") from None
    tables = data.get("source", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise AddError(f"{path}: `source` must be [[source]] tables")
    return tables


def slug_for(list_url: str, taken: set[str]) -> str:
    """From the list URL's last path segment (``/dxgz/dxgzdt.htm`` -> ``dxgzdt``), made unique."""
    parts = urlsplit(list_url)
    stem = parts.path.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    tree = parse_qs(parts.query).get(vsb.TREE_PARAM, [""])[0]
    if parts.path.lower().endswith(".jsp") and tree.isdigit():
        stem = f"column{tree}"
    base = _SLUG_BAD.sub("-", stem).strip("-_")[:56] or "column"
    if not NAME_RE.match(base) or base in RESERVED_NAMES:
        base = f"column-{base}" if NAME_RE.match(f"column-{base}") else "column"
    name, n = base, 2
    while name in taken or name in RESERVED_NAMES:
        name, n = f"{base}-{n}", n + 1
    return name


def _render(tables: list[dict[str, str]]) -> str:
    doc = tomlkit.document()
    aot = tomlkit.aot()
    for table in tables:
        item = tomlkit.table()
        for key, value in table.items():
            item[key] = value
        aot.append(item)
    doc.append("source", aot)
    return tomlkit.dumps(doc)


def append_tables(path: Path, old: str | None, tables: list[dict[str, str]]) -> None:
    """Append the tables as text so every existing byte (comments, layout) stays; replace atomically."""
    prefix = NEW_FILE_HEADER if old is None else old
    if prefix and not prefix.endswith("\n"):
        prefix += "\n"
    new = prefix + ("\n" if prefix.strip() else "") + _render(tables)
    try:
        written = tomllib.loads(new)["source"]
        for table in written[len(written) - len(tables):]:
            source_from_table(table)
    except (tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        raise AddError(f"{path}: appending the source would make the file invalid: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if old is not None else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(new)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------- entry point
def read_sources_file(path: Path) -> tuple[str | None, list[dict[str, Any]]]:
    """The file's text (None when missing) and its [[source]] tables; AddError when unreadable."""
    try:
        old: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, []
    except (OSError, UnicodeDecodeError) as exc:
        raise AddError(f"{path}: cannot read the sources file: {exc}") from None
    return old, existing_tables(old, path)


def same_page(a: str | None, b: str | None) -> bool:
    """Two spellings of one URL (host case, default port, fragment, dot segments, query order)."""
    return bool(a and b) and canonical_article_url(a or "") == canonical_article_url(b or "")


def source_title(html: str, column: str | None, list_url: str) -> str:
    """``<site> · <column>`` from the list page's ``<title>``; the column alone, or the URL, when unknown."""
    _col, site = title_parts(html)
    return f"{site} · {column}" if site and column and site != column else (column or list_url)


def add_source(cfg: AppConfig, url: str, *, name: str | None, column: str | None, out: TextIO,
               dry_run: bool = False) -> Source:
    """Find the column behind ``url``, show what a crawl would extract, append it to SOURCES_FILE
    (with ``dry_run``: show only)."""
    url = url.strip()
    column = column.strip() if column and column.strip() else None
    path = Path(cfg.SOURCES_FILE)
    old, tables = read_sources_file(path)
    taken = {t["name"] for t in tables if isinstance(t.get("name"), str)}
    if name is not None and (not NAME_RE.match(name) or name in RESERVED_NAMES):
        raise AddError(f"--name must be a lowercase slug (a-z, 0-9, -, _) and not reserved, got {name!r}")
    if name in taken:
        raise AddError(f"{path} already has a source named {name!r}; choose another --name")

    fetcher = Fetcher(url)
    found, kind = find_column(fetcher, url, column)
    list_url = urldefrag(found.page.url)[0]
    for t in tables:
        if same_page(list_url, t.get("list_url")):
            raise AddError(f"{path} already has this column as source {t.get('name')!r} ({list_url})")
    column_name = found.column
    title = source_title(found.page.html, column_name, list_url)
    _report(out, found, title, fetcher)

    table: dict[str, str] = {"name": name or slug_for(list_url, taken), "title": title, "list_url": list_url}
    if kind == "article":
        table["seed_url"] = urldefrag(url)[0]
    if column_name:
        table["column"] = column_name
    source = source_from_table(table)
    if dry_run:
        print(f"dry run: would add source {source.name!r} to {path}; nothing written", file=out)
        return source
    append_tables(path, old, [table])
    print(f"added source {source.name!r} to {path}", file=out)
    return source
