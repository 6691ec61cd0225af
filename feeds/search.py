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
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, or_, select, text
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
    stmt = select(Article.id).where(Article.removed_at.is_(None),
                                    or_(Article.status == "ok", Article.external.is_(True)))
    if source_id is not None:
        stmt = stmt.where(Article.source_id == source_id)

    def like(column: Any, word: str) -> ColumnElement[bool]:
        return column.like(_like(word), escape="\\") if sqlite else column.ilike(_like(word), escape="\\")

    if long_terms and sqlite:
        # "+articles.id": not a rowid lookup per match (then a sort of every match), but a walk of
        # ix_articles_search_order in feed order that stops after one page (migration 0002_search).
        matches = select(literal_column("rowid")).select_from(text("articles_fts")).where(
            text("articles_fts MATCH :m").bindparams(m=" AND ".join(_fts_phrase(w) for w in long_terms)))
        stmt = stmt.where(literal_column("+articles.id").in_(matches))
    else:
        stmt = stmt.where(*(or_(like(Article.title, w), like(Article.body_text, w)) for w in long_terms))
    for w in short_terms:
        stmt = stmt.where(or_(like(Article.title, w), like(Article.body_text, w)) if long_terms
                          else like(Article.title, w))
    stmt = stmt.order_by(
        func.coalesce(Article.published_at, Article.first_seen_at).desc(),
        func.coalesce(Article.newsid, literal_column("-1")).desc(),  # literal: the index's expression
        Article.id.desc(),
    ).limit(per_page + 1).offset((page - 1) * per_page)
    ids = list(session.scalars(stmt))
    has_more = len(ids) > per_page
    ids = ids[:per_page]
    rows = {a.id: a for a in session.scalars(
        select(Article).where(Article.id.in_(ids)).options(selectinload(Article.attachments)))}
    articles = tuple(article_record(names[rows[i].source_id], rows[i]) for i in ids if i in rows)
    return SearchResult(query, source if source_id is not None else None, page, articles, has_more,
                        not long_terms, {name: title for _, name, title in sources})
