"""feedgen glue: a generator with deterministic defaults, and the two extensions feedgen 1.0 lacks.

feedgen stamps the clock into ``updated``/``lastBuildDate`` and its own name into ``generator``; both are
overwritten here. Its Atom entry writer loses the ``rel``/``type``/``title`` of entry links (it reads them
back from the element it just created), and its RSS writer drops every channel ``atom:link`` but ``self``;
:class:`_EntryExt` and :class:`_FeedExt` write those elements themselves. RFC 5005's ``fh:archive`` is
written by :class:`_FeedExt` too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from feeds.plan import GENERATOR, local_time
from settings import PROJECT_URL

FH_NS = "http://purl.org/syndication/history/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
EXT = "ghu"  # the namespace under which our extensions are registered on feedgen objects

Link = dict[str, str]  # href, rel, and optionally type, title, length — written in that order


class _FeedExt(BaseExtension):
    def __init__(self) -> None:
        self.archive = False  # Atom: mark the document as an RFC 5005 archive page
        self.rss_links: list[Link] = []  # RSS: extra channel atom:link elements (prev-archive)

    def extend_ns(self) -> dict[str, str]:
        return {"fh": FH_NS} if self.archive else {}

    def extend_atom(self, atom_feed: Any) -> Any:
        if self.archive:
            etree.SubElement(atom_feed, f"{{{FH_NS}}}archive")
        return atom_feed

    def extend_rss(self, rss_feed: Any) -> Any:
        channel = rss_feed.find("channel")
        existing = channel.findall(f"{{{ATOM_NS}}}link")
        at = channel.index(existing[-1]) + 1 if existing else len(channel)
        for offset, link in enumerate(self.rss_links):
            elem = etree.Element(f"{{{ATOM_NS}}}link")
            _set_link_attrs(elem, link)
            channel.insert(at + offset, elem)
        return rss_feed


class _EntryExt(BaseEntryExtension):
    def __init__(self) -> None:
        self.links: list[Link] = []  # Atom entry links, written correctly
        self.rss_links: list[Link] = []  # RSS item atom:link elements (rel="related": our article page)

    def extend_atom(self, entry: Any) -> Any:
        for link in self.links:
            _set_link_attrs(etree.SubElement(entry, "link"), link)
        return entry

    def extend_rss(self, entry: Any) -> Any:
        for link in self.rss_links:
            _set_link_attrs(etree.SubElement(entry, f"{{{ATOM_NS}}}link"), link)
        return entry


def _set_link_attrs(elem: Any, link: Link) -> None:
    for key in ("href", "rel", "type", "title", "length"):
        if link.get(key):
            elem.set(key, link[key])


def generator(title: str, updated: datetime, language: str = "zh-CN") -> FeedGenerator:
    """A FeedGenerator whose output depends only on what is set on it (no clock, no feedgen version)."""
    fg = FeedGenerator()
    fg.register_extension(EXT, _FeedExt, _EntryExt, atom=True, rss=True)
    fg.title(title)
    fg.updated(local_time(updated))
    fg.generator(GENERATOR, uri=PROJECT_URL)
    fg.language(language)
    return fg


def feed_ext(fg: FeedGenerator) -> _FeedExt:
    ext: _FeedExt = getattr(fg, EXT)
    return ext


def entry_ext(fe: Any) -> _EntryExt:
    ext: _EntryExt = getattr(fe, EXT)
    return ext
