"""OPML 2.0 (``opml.xml``): one outline per feed so that a reader can import every column at once.

Each column is listed once, by its RSS URL (OPML's ``type="rss"`` convention); listing the Atom and JSON
twins as well would make importing readers subscribe to every column three times.
"""

from __future__ import annotations

from lxml import etree

from feeds.plan import FeedPlan, Urls


def opml_document(plans: list[FeedPlan], urls: Urls, title: str) -> bytes:
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(root, "body")
    for plan in plans:
        etree.SubElement(body, "outline", {
            "type": "rss",
            "text": plan.title,
            "title": plan.title,
            "description": plan.description,
            "xmlUrl": urls.feed(plan.slug, "xml"),
            "htmlUrl": plan.home_url,
            "language": "zh-CN",
        })
    result: bytes = etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")
    return result
