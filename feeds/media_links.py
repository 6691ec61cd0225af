"""Where feeds and article pages point: the article page of each entry, and (MEDIA=serve) our kept copies.

Entry content is rewritten only where a copy exists: ``<img src>`` to ``PUBLIC_URL/media/…``, and each
attachment link to our copy with the original URL kept as a link right after it; enclosures likewise.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape as html_escape

from db.media import KeptCopy
from feeds.plan import Attachment, Entry, Urls
from feeds.query import ArticleRec, SourceRec
from feeds.text import xml_safe

MEDIA_PREFIX = "media/"
ORIGINAL_LABEL = "原始链接 · original"


def page_path(source: str, article_id: int) -> str:
    """The article page's path under FEEDS_DIR (and under PUBLIC_URL)."""
    return f"{source}/{article_id}.html"


def page_url(urls: Urls, source: str, article_id: int) -> str:
    return f"{urls.public}{page_path(source, article_id)}"


def media_url(base: str, copy: KeptCopy) -> str:
    """``base`` is PUBLIC_URL (feeds: absolute links) or a relative prefix (pages)."""
    return f"{base}{MEDIA_PREFIX}{copy.path}"


def rewrite_html(html: str, copies: dict[str, KeptCopy], base: str, original_links: bool = True) -> str:
    """Images and attachment links that have a kept copy point at it; attachments keep their original URL
    as a link next to them. Untouched when nothing applies (the same bytes as before)."""
    if not html or not copies or not any(url in html or html_escape(url) in html for url in copies):
        return html
    import lxml.html

    out: list[str] = []
    for frag in lxml.html.fragments_fromstring(html):
        if isinstance(frag, str):
            out.append(html_escape(frag, quote=False))
            continue
        for img in frag.iter("img"):
            copy = copies.get(img.get("src") or "")
            if copy is not None:
                img.set("src", media_url(base, copy))
        for link in list(frag.iter("a")):
            href = link.get("href") or ""
            copy = copies.get(href)
            if copy is None:
                continue
            link.set("href", media_url(base, copy))
            if original_links and copy.kind == "attachment":
                original = lxml.html.fragment_fromstring(
                    f' <small>(<a href="{html_escape(href)}">{ORIGINAL_LABEL}</a>)</small>', create_parent="span")
                original.tail, link.tail = link.tail, None
                link.addnext(original)
        out.append(lxml.html.tostring(frag, encoding="unicode"))
    return "".join(out)


def with_links(src: SourceRec, entries: list[Entry], urls: Urls, media_mode: str) -> list[Entry]:
    """Each entry with its article page's URL, and (MEDIA=serve) its media pointing at our copies."""
    by_url = {a.url: a for a in src.articles}
    out = []
    for entry in entries:
        art = by_url.get(entry.id)
        if art is None or art.external or art.id is None:
            out.append(entry)
            continue
        entry = replace(entry, page_url=page_url(urls, src.name, art.id))
        if media_mode == "serve" and art.media:
            entry = _served(entry, art, urls)
        out.append(entry)
    return out


def copies_of(art: ArticleRec) -> dict[str, KeptCopy]:
    return {c.url: c for c in art.media}


def _served(entry: Entry, art: ArticleRec, urls: Urls) -> Entry:
    copies = copies_of(art)
    attachments = tuple(
        Attachment(name=a.name, url=xml_safe(media_url(urls.public, copies[a.url])),
                   mime_type=copies[a.url].mime_type, length=copies[a.url].size) if a.url in copies else a
        for a in entry.attachments
    )
    return replace(entry, content_html=xml_safe(rewrite_html(entry.content_html, copies, urls.public)),
                   attachments=attachments)
