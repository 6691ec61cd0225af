"""``/search`` (a page for people) and ``/search.xml|.atom|.json`` (feeds a reader can subscribe to).

Starlette routes mounted by :class:`feeds.server.FeedServer` when it has a session factory. The queries
(:mod:`feeds.search`) are synchronous SQLAlchemy, so the endpoints are plain functions Starlette runs in
its thread pool; the event loop keeps answering published files meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feeds.atom import subscription_atom
from feeds.index_page import STYLE, _sha256
from feeds.jsonfeed import subscription_json
from feeds.plan import FeedPlan, Urls, local_time, make_entry
from feeds.rss import subscription_rss
from feeds.search import PER_PAGE, SearchError, SearchResult, search, words
from feeds.text import is_absolute_http, one_line

FEED_TYPES = {
    "xml": ("application/rss+xml; charset=utf-8", subscription_rss),
    "atom": ("application/atom+xml; charset=utf-8", subscription_atom),
    "json": ("application/feed+json; charset=utf-8", subscription_json),
}
CACHE = {"cache-control": "public, max-age=60"}
CSP = (f"default-src 'none'; style-src {_sha256(STYLE)}; img-src data:; base-uri 'none'; "
       "form-action 'self'")


@dataclass(frozen=True)
class SearchUrls(Urls):
    """Urls whose feed links point back at this search (self links of the search feeds)."""

    query: str = ""

    def feed(self, slug: str, ext: str) -> str:
        return f"{self.public}search.{ext}?{self.query}"

    def feed_id(self, slug: str) -> str:
        return f"{self.public}search?{self.query}"


def search_routes(session_factory: Any, public_url: str) -> list[Route]:
    urls = Urls.of(public_url)

    def run(request: Request) -> SearchResult:
        params = request.query_params
        page_raw = params.get("page", "1")
        if not page_raw.isascii() or not page_raw.isdigit():
            raise SearchError("page must be a whole number")
        with session_factory() as session:
            return search(session, params.get("q", ""), params.get("source") or None, int(page_raw))

    def page(request: Request) -> Response:
        q = request.query_params.get("q", "")
        if not q.strip():
            return _html(render_page(urls, None, "", None), 200)
        try:
            result = run(request)
        except SearchError as exc:
            return _html(render_page(urls, None, q, str(exc)), 400)
        return _html(render_page(urls, result, q, None), 200)

    def feed(request: Request) -> Response:
        ext = request.path_params["ext"]
        if ext not in FEED_TYPES:
            return Response("404 Not Found\n", 404, media_type="text/plain; charset=utf-8")
        try:
            result = run(request)
        except SearchError as exc:
            return Response(f"400 Bad Request: {exc}\n", 400, media_type="text/plain; charset=utf-8")
        ctype, render = FEED_TYPES[ext]
        query = urlencode({k: v for k, v in (("q", result.query), ("source", result.source or "")) if v})
        return Response(render(search_plan(result, urls), SearchUrls(urls.public, query)), 200,
                        media_type=ctype, headers=CACHE)

    return [Route("/search", page, methods=["GET"]), Route("/search.{ext}", feed, methods=["GET"])]


def search_plan(result: SearchResult, urls: Urls) -> FeedPlan:
    entries = tuple(make_entry(a, result.column_titles.get(a.source_name, a.source_name))
                    for a in result.articles if is_absolute_http(a.url))
    title = f"搜索 Search: {one_line(result.query)}"
    return FeedPlan(
        slug="search", title=title, description=f"{title} · ghu-feeds", home_url=urls.index,
        entries=entries, total=len(entries),
        updated=max((e.modified for e in entries), default=datetime(2000, 1, 1, tzinfo=UTC)),
        archive_pages=(),
    )


def _html(doc: str, status: int) -> Response:
    return Response(doc, status, media_type="text/html; charset=utf-8",
                    headers={**CACHE, "content-security-policy": CSP})


def _e(value: str) -> str:
    return escape(value, quote=True)


def snippet(body: str | None, query: str, width: int = 60) -> str:
    """About 2×width characters of the text around the first word found (plain text, not escaped)."""
    text = " ".join((body or "").split())
    lowered = text.lower()
    at = min((i for i in (lowered.find(w.lower()) for w in words(query)) if i >= 0), default=0)
    start = max(0, at - width)
    return ("…" if start else "") + text[start:at + 2 * width] + ("…" if at + 2 * width < len(text) else "")


def render_page(urls: Urls, result: SearchResult | None, q: str, error: str | None) -> str:
    """The search page: the form, then results, a note, or the reason a query was refused."""
    source = result.source if result else None
    parts = [
        "<!DOCTYPE html>", '<html lang="zh-CN">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{_e(q + ' · ' if q else '')}搜索 Search</title>", '<link rel="icon" href="data:,">',
        f"<style>{STYLE}</style>", "</head>", "<body>",
        f'<p><a href="{_e(urls.index)}">← 订阅源 Feeds</a></p>', "<h1>搜索 Search</h1>",
        f'<form action="{_e(urls.public)}search" method="get" role="search">'
        f'<input type="search" name="q" value="{_e(q)}" aria-label="搜索 Search" required maxlength="200"> '
        + (f'<input type="hidden" name="source" value="{_e(source)}">' if source else "")
        + '<button type="submit">搜索 Search</button></form>',
    ]
    if error:
        parts.append(f'<p class="error" role="alert">{_e(error)}</p>')
    elif result is not None:
        parts += _results(urls, result)
    else:
        parts.append('<p class="muted">在全部存档中搜索标题和全文（至少 3 个字更准确）。'
                     "Search titles and full text of the whole archive (3 characters or more work best).</p>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _results(urls: Urls, result: SearchResult) -> list[str]:
    out = []
    if result.titles_only:
        out.append('<p class="muted" id="titles-only">词太短（少于 3 个字），只搜索了标题。'
                   "Words shorter than 3 characters: titles only were searched.</p>")
    if not result.articles:
        out.append('<p id="no-results">没有找到 · Nothing found.</p>')
    first = (result.page - 1) * PER_PAGE + 1
    out.append(f'<ol class="results" start="{first}">')
    for a in result.articles:
        link = f'<a href="{_e(a.url)}">{_e(one_line(a.title) or a.url)}</a>' if is_absolute_http(a.url) \
            else _e(a.title)
        column = result.column_titles.get(a.source_name, a.source_name)
        out.append(f'<li><time datetime="{local_time(a.published).isoformat()}">{local_time(a.published):%Y-%m-%d}'
                   f"</time> · {_e(one_line(column))} · {link}"
                   f'<br><span class="muted">{_e(snippet(a.body_text, result.query))}</span></li>')
    out.append("</ol>")
    base = {"q": result.query, **({"source": result.source} if result.source else {})}
    nav = []
    if result.page > 1:
        nav.append(f'<a rel="prev" href="{_e(urls.public)}search?{_e(urlencode({**base, "page": result.page - 1}))}">'
                   "← 上一页 Previous</a>")
    if result.has_more:
        nav.append(f'<a rel="next" href="{_e(urls.public)}search?{_e(urlencode({**base, "page": result.page + 1}))}">'
                   "下一页 Next →</a>")
    if nav:
        out.append(f"<nav>{' · '.join(nav)}</nav>")
    query = urlencode(base)
    feeds = " · ".join(f'<a href="{_e(urls.public)}search.{ext}?{_e(query)}">{label}</a>'
                       for ext, label in (("xml", "RSS"), ("atom", "Atom"), ("json", "JSON Feed")))
    out.append(f'<p class="muted">订阅此搜索 Subscribe to this search: {feeds}</p>')
    return out
