"""Search the archive: the database's trigram indexes (migration 0002_search), newest first, paged.

SQLite: the FTS5 trigram table ``articles_fts``; PostgreSQL: ILIKE served by pg_trgm GIN indexes. Both find
any substring of 3 characters or more, case-insensitively for Latin letters, in titles and full text.

Short words (decided in issue 12): the query is split on spaces and every word must appear. A word of 1 or 2
characters is too short for a trigram index: alongside a word of 3+ characters it narrows that word's
matches (title or text); when every word is that short, titles only are searched (a scan of titles, fast
enough for a college column's archive) and the answer says so (``titles_only``).
Only what the feeds show is found: fetched or external articles, never removed ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

from db.models import Article, Source
from feeds.query import ArticleRec, article_record

MIN_INDEXED = 3
MAX_QUERY = 200
MAX_WORDS = 8
MAX_PAGE = 500
PER_PAGE = 20


class SearchError(ValueError):
    """A query we refuse; ``str()`` is a one-line reason for people."""


@dataclass(frozen=True)
class SearchResult:
    query: str
    source: str | None
    page: int
    articles: tuple[ArticleRec, ...]  # newest first
    has_more: bool
    titles_only: bool  # every word was shorter than MIN_INDEXED
    column_titles: dict[str, str]  # source name -> title, for the entries' categories


def words(query: str) -> list[str]:
    return query.split()[:MAX_WORDS]


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _fts_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def search(session: Session, query: str, source: str | None = None, page: int = 1,
           per_page: int = PER_PAGE) -> SearchResult:
    query = " ".join(query.split())
    if not query:
        raise SearchError("q is empty: give a word to search for")
    if len(query) > MAX_QUERY:
        raise SearchError(f"q is longer than {MAX_QUERY} characters")
    if not 1 <= page <= MAX_PAGE:
        raise SearchError(f"page must be a whole number from 1 to {MAX_PAGE}")
    sources = [tuple(r) for r in session.execute(select(Source.id, Source.name, Source.title))]
    names = {sid: name for sid, name, _ in sources}
    source_id = None
    if source:
        ids = [sid for sid, name in names.items() if name == source]
        if not ids:
            raise SearchError(f"no column named {source!r}")
        source_id = ids[0]
    terms = words(query)
    long_terms = [w for w in terms if len(w) >= MIN_INDEXED]
    short_terms = [w for w in terms if len(w) < MIN_INDEXED]
    sqlite = session.get_bind().dialect.name == "sqlite"
    params: dict[str, object] = {"ok": "ok", "yes": True, "lim": per_page + 1, "off": (page - 1) * per_page}
    where = ["a.removed_at IS NULL", "(a.status = :ok OR a.external = :yes)"]
    if source_id is not None:
        where.append("a.source_id = :sid")
        params["sid"] = source_id
    op = "LIKE" if sqlite else "ILIKE"
    if long_terms and sqlite:
        # "+a.id": not a rowid lookup per match (then a sort of every match), but a walk of
        # ix_articles_search_order in feed order that stops after one page (migration 0002_search).
        where.append("+a.id IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH :m)")
        params["m"] = " AND ".join(_fts_phrase(w) for w in long_terms)
    elif long_terms:
        for i, w in enumerate(long_terms):
            where.append(f"(a.title ILIKE :l{i} ESCAPE '\\' OR a.body_text ILIKE :l{i} ESCAPE '\\')")
            params[f"l{i}"] = _like(w)
    for i, w in enumerate(short_terms):
        params[f"s{i}"] = _like(w)
        if long_terms:
            where.append(f"(a.title {op} :s{i} ESCAPE '\\' OR a.body_text {op} :s{i} ESCAPE '\\')")
        else:
            where.append(f"a.title {op} :s{i} ESCAPE '\\'")
    sql = (f"SELECT a.id FROM articles a WHERE {' AND '.join(where)} "
           "ORDER BY coalesce(a.published_at, a.first_seen_at) DESC, coalesce(a.newsid, -1) DESC, a.id DESC "
           "LIMIT :lim OFFSET :off")
    ids = [row[0] for row in session.execute(text(sql), params)]
    has_more = len(ids) > per_page
    ids = ids[:per_page]
    rows = {a.id: a for a in session.scalars(
        select(Article).where(Article.id.in_(ids)).options(selectinload(Article.attachments)))}
    articles = tuple(article_record(names[rows[i].source_id], rows[i]) for i in ids if i in rows)
    return SearchResult(query, source if source_id is not None else None, page, articles, has_more,
                        not long_terms, {name: title for _, name, title in sources})
