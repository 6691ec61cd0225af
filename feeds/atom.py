"""Atom 1.0: the subscription feeds (``<slug>.atom``) and the RFC 5005 archive pages."""

from __future__ import annotations

from feedgen.feed import FeedGenerator

from feeds.fg import Link, entry_ext, feed_ext, generator
from feeds.plan import ArchivePage, Entry, FeedPlan, Urls, archive_path, local_time

ATOM_TYPE = "application/atom+xml"


def subscription_atom(plan: FeedPlan, urls: Urls) -> bytes:
    links: list[Link] = [
        {"href": urls.feed(plan.slug, "atom"), "rel": "self", "type": ATOM_TYPE},
        {"href": plan.home_url, "rel": "alternate", "type": "text/html"},
    ]
    if plan.newest_archive:
        links.append({"href": urls.archive(plan.slug, plan.newest_archive), "rel": "prev-archive",
                      "type": ATOM_TYPE})
    return _document(plan, urls, plan.title, plan, links, plan.entries)


def archive_atom(plan: FeedPlan, page: ArchivePage, urls: Urls) -> bytes:
    """One archive page: fh:archive, links to the current feed and to its older and newer neighbours."""
    links: list[Link] = [
        {"href": urls.archive(plan.slug, page.number), "rel": "self", "type": ATOM_TYPE},
        {"href": plan.home_url, "rel": "alternate", "type": "text/html"},
        {"href": urls.feed(plan.slug, "atom"), "rel": "current", "type": ATOM_TYPE},
    ]
    if page.number > 1:
        links.append({"href": urls.archive(plan.slug, page.number - 1), "rel": "prev-archive",
                      "type": ATOM_TYPE})
    if page.number < len(plan.archive_pages):
        links.append({"href": urls.archive(plan.slug, page.number + 1), "rel": "next-archive",
                      "type": ATOM_TYPE})
    title = f"{plan.title} · 归档 Archive {page.number}"
    return _document(plan, urls, title, page, links, page.entries, archive=True)


def archive_files(plan: FeedPlan, urls: Urls) -> dict[str, bytes]:
    return {archive_path(plan.slug, p.number): archive_atom(plan, p, urls) for p in plan.archive_pages}


def _document(plan: FeedPlan, urls: Urls, title: str, dated: FeedPlan | ArchivePage, links: list[Link],
              entries: tuple[Entry, ...], archive: bool = False) -> bytes:
    fg = generator(title, dated.updated)
    # One id for the current feed and its archive pages: RFC 5005 pages are one logical feed.
    fg.id(urls.feed_id(plan.slug))
    fg.subtitle(plan.description)
    # RFC 4287: entries without their own author inherit the feed's, and one of the two must exist.
    fg.author(name=plan.title, uri=plan.home_url)
    fg.link(links)
    feed_ext(fg).archive = archive
    for entry in entries:
        _add_entry(fg, entry)
    result: bytes = fg.atom_str(pretty=True)
    return result


def _add_entry(fg: FeedGenerator, e: Entry) -> None:
    fe = fg.add_entry(order="append")
    fe.id(e.id)
    fe.title(e.title)
    fe.published(local_time(e.published))
    fe.updated(local_time(e.modified))
    if e.author:
        fe.author(name=e.author)
    fe.content(e.content_html, type="html")
    fe.summary(e.summary)
    for term in e.categories:
        fe.category(term=term)
    links: list[Link] = [{"href": e.url, "rel": "alternate", "type": "text/html"}]
    if e.page_url:  # our copy of the article, kept after the source removes or edits it
        links.append({"href": e.page_url, "rel": "related", "type": "text/html"})
    links += [{"href": a.url, "rel": "enclosure", "type": a.mime_type, "title": a.name,
               **({"length": str(a.length)} if a.length else {})} for a in e.attachments]
    entry_ext(fe).links = links
