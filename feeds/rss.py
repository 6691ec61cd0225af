"""RSS 2.0 (``<slug>.xml``): summary in description, full text in content:encoded, author in dc:creator.

RSS ``<author>`` must be an e-mail address, which the site never gives, so the name goes to dc:creator.
RSS allows one enclosure per item: the first attachment (all of them are listed in the content).
"""

from __future__ import annotations

from feedgen.feed import FeedGenerator

from feeds.fg import entry_ext, feed_ext, generator
from feeds.plan import Entry, FeedPlan, Urls, local_time

RSS_TYPE = "application/rss+xml"


def subscription_rss(plan: FeedPlan, urls: Urls) -> bytes:
    fg = generator(plan.title, plan.updated)  # updated -> lastBuildDate: newest change in the data
    fg.load_extension("dc", atom=False, rss=True)
    fg.description(plan.description)
    fg.link(href=urls.feed(plan.slug, "xml"), rel="self", type=RSS_TYPE)
    fg.link(href=plan.home_url, rel="alternate")  # feedgen's RSS <link> is the last link set
    if plan.newest_archive:
        feed_ext(fg).rss_links = [{"href": urls.archive(plan.slug, plan.newest_archive),
                                   "rel": "prev-archive", "type": "application/atom+xml"}]
    for entry in plan.entries:
        _add_item(fg, entry)
    result: bytes = fg.rss_str(pretty=True)
    return result


def _add_item(fg: FeedGenerator, e: Entry) -> None:
    fe = fg.add_entry(order="append")
    fe.title(e.title)
    fe.link(href=e.url)
    fe.guid(e.id, permalink=True)
    fe.description(e.summary)
    fe.content(e.content_html)  # escaped text in content:encoded (CDATA would break on "]]>")
    fe.published(local_time(e.published))
    for term in e.categories:
        fe.category(term=term)
    if e.attachments:
        first = e.attachments[0]
        fe.enclosure(first.url, first.length, first.mime_type)  # 0 when unknown, as the RSS profile advises
    if e.author:
        fe.dc.dc_creator(e.author)
    if e.page_url:  # RSS has no related link: an atom:link in the item, as Atom has it
        entry_ext(fe).rss_links = [{"href": e.page_url, "rel": "related", "type": "text/html"}]
