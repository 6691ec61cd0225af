"""A page for every stored article, ``<source>/<article id>.html``: the archive of record a reader can open.

Built at publish time from the database alone, for removed articles too (the feeds hide those): the
sanitized full text, with our kept images when there are copies (MEDIA=keep|serve), the attachments
(our copy and the original link), a link to the original, and a notice when the source removed or
edited the article. Pages are pure functions of the database, like the feeds (same data, same bytes).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from html import escape

import nh3
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from db import media as media_db
from db.media import KeptCopy
from db.models import Article, Source
from feeds.media_links import ORIGINAL_LABEL, copies_of, media_url, page_path, rewrite_html
from feeds.plan import attachment_mime, local_time
from feeds.query import RESERVED_SLUGS, SLUG_RE, ArticleRec, AttachmentRec, _article, _begin_snapshot
from feeds.text import is_absolute_http, one_line, xml_safe
from settings import AppConfig

log = logging.getLogger(__name__)

EDIT_MARGIN = timedelta(minutes=1)  # updated_at within this of first_seen_at is the first store, not an edit
CSP = "default-src 'none'; img-src 'self' http: https: data:; style-src 'unsafe-inline'"
STYLE = ("body{font:16px/1.7 system-ui,'PingFang SC','Microsoft YaHei',sans-serif;max-width:46em;margin:2em auto;"
         "padding:0 1em;color:#222}img{max-width:100%;height:auto}.notice{padding:.6em 1em;border-radius:4px;"
         "background:#fff4e5;border:1px solid #f0b45b}.meta{color:#666;font-size:.9em}"
         "footer{margin-top:3em;font-size:.9em;color:#666}")


def article_pages(session_factory: sessionmaker[Session], config: AppConfig) -> dict[str, bytes]:
    """Every stored on-site article's page, keyed by its path under FEEDS_DIR."""
    files: dict[str, bytes] = {}
    with session_factory() as session:
        _begin_snapshot(session)
        titles = {s.id: (s.name, s.title) for s in session.scalars(select(Source))}
        copies = media_db.kept_copies(session) if config.keeps_media else {}
        rows = session.scalars(
            select(Article).where(Article.external.is_(False), Article.body_html.is_not(None))
            .options(selectinload(Article.attachments)).order_by(Article.id)
        ).all()
        for row in rows:
            name, column = titles.get(row.source_id, ("", ""))
            if not SLUG_RE.match(name) or name in RESERVED_SLUGS or not is_absolute_http(row.url):
                continue
            try:
                files[page_path(name, row.id)] = render_page(
                    _article(name, row, copies), column, row.removed_at, row.origin).encode("utf-8")
            except Exception:
                log.exception("%s: no page for article %s", name, row.url)
        session.rollback()
    return files


def render_page(art: ArticleRec, column: str, removed_at: datetime | None, origin: str | None = None) -> str:
    """One article page (relative links: it is served at PUBLIC_URL/<source>/<id>.html)."""
    copies = copies_of(art)
    title = one_line(art.title) or art.url
    url = escape(xml_safe(art.url))
    body = nh3.clean(xml_safe(art.body_html or ""), link_rel="noopener noreferrer")
    body = rewrite_html(body, {u: c for u, c in copies.items() if c.kind == "image"}, "../", original_links=False)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)} · {escape(one_line(column))}</title>",
        f'<link rel="alternate" type="text/html" href="{url}">',
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<main><article>",
        *_notices(art, removed_at),
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{_meta(art, origin)}</p>',
        f'<div class="body">{body}</div>',
        *_attachments(art.attachments, copies),
        f'<p><a href="{url}">原文 · Original article</a>: {url}</p>',
        "</article></main>",
        f'<footer><a href="../index.html">{escape(one_line(column))} · 全部订阅 All feeds</a></footer>',
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def _day(when: datetime) -> str:
    return local_time(when).strftime("%Y-%m-%d")


def _notices(art: ArticleRec, removed_at: datetime | None) -> list[str]:
    out = []
    if removed_at is not None:
        out.append(f'<p class="notice removed">本文已于 {_day(removed_at)} 从原网站删除，此处为存档。'
                   f" · Removed from the source on {_day(removed_at)}; this is our archived copy.</p>")
    edited = art.updated_at
    if edited and edited > art.first_seen_at + EDIT_MARGIN and (removed_at is None or edited < removed_at):
        out.append(f'<p class="notice edited">本文于 {_day(edited)} 在原网站被修改，此处为修改后的内容。'
                   f" · Edited at the source on {_day(edited)}; this is the edited text.</p>")
    return out


def _meta(art: ArticleRec, origin: str | None) -> str:
    bits = [f"发布时间 Published: {local_time(art.published).strftime('%Y-%m-%d %H:%M')}"]
    if art.author:
        bits.append(f"作者 Author: {escape(one_line(art.author))}")
    if origin:
        bits.append(f"来源 Source: {escape(one_line(origin))}")
    return " · ".join(bits)


def _attachments(attachments: tuple[AttachmentRec, ...], copies: dict[str, KeptCopy]) -> list[str]:
    items = []
    for att in attachments:
        if not is_absolute_http(att.url):
            continue
        name = escape(one_line(att.name) or "附件")
        original = escape(xml_safe(att.url))
        copy = copies.get(att.url)
        if copy is not None:
            items.append(f'<li><a href="{escape(media_url("../", copy))}" type="{escape(copy.mime_type)}">{name}</a>'
                         f' <small>(<a href="{original}">{ORIGINAL_LABEL}</a>)</small></li>')
        else:
            items.append(f'<li><a href="{original}" type="{escape(attachment_mime(att))}">{name}</a></li>')
    if not items:
        return []
    return ["<h2>附件 · Attachments</h2>", "<ul>", *items, "</ul>"]
