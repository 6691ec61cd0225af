"""RSS, Atom and JSON Feed of one column: what readers see (parsed by feedparser where it can)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from feeds import build_from_database
from tests.test_feeds_support import (
    COLUMN_URL,
    DOWNLOAD,
    PUBLIC,
    SITE,
    WECHAT_URL,
    ZZB_HIDDEN,
    ZZB_ORDER,
    info_url,
    make_config,
    new_database,
    parse,
    seed_zzb,
)

ATOM = "{http://www.w3.org/2005/Atom}"
IMG_SRC = re.compile(r"""<img[^>]*\ssrc="([^"]*)\"""")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, bytes]:
    factory = new_database(tmp_path)
    seed_zzb(factory)
    return build_from_database(factory, make_config(tmp_path / "feeds"))


def test_builds_the_expected_files(files: dict[str, bytes]) -> None:
    # One column: no combined "all" feed, no archive (5 articles < FEED_MAX_ITEMS).
    assert sorted(files) == ["dxgzdt.atom", "dxgzdt.html", "dxgzdt.json", "dxgzdt.xml", "index.html", "opml.xml"]


def test_rss(files: dict[str, bytes]) -> None:
    feed = parse(files["dxgzdt.xml"])
    assert feed.version == "rss20"
    assert feed.feed.title == "党校工作动态"
    assert feed.feed.link == COLUMN_URL
    assert [e.id for e in feed.entries] == ZZB_ORDER
    assert not set(ZZB_HIDDEN) & {e.id for e in feed.entries}
    first = feed.entries[0]
    assert first.title == "党校第十二期发展对象培训班顺利结业"  # the control character is gone
    oldest = feed.entries[-1]
    assert oldest.author == "组织部"  # dc:creator
    assert oldest.tags[0].term == "党校工作动态"
    assert oldest.enclosures == [{"href": DOWNLOAD + "33501", "length": "0", "type":
                                  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                                  }]
    assert len(oldest.summary) <= 201 and oldest.summary.endswith("…")  # plain text, ~200 characters
    assert "<" not in oldest.summary
    assert "附件2：培训日程安排.pdf" in oldest.content[0].value  # every attachment is listed in the text
    wechat = feed.entries[1]
    assert wechat.link == WECHAT_URL and WECHAT_URL in wechat.content[0].value

    root = etree.fromstring(files["dxgzdt.xml"])
    channel = root.find("channel")
    assert channel.findtext("lastBuildDate") == "Tue, 02 Apr 2024 02:00:00 +0800"  # first_seen of 2550
    assert channel.findtext("generator") == "ghu-feeds"
    assert [i.findtext("pubDate")[-5:] for i in channel.iter("item")] == ["+0800"] * 5
    assert channel.find(f"{ATOM}link[@rel='self']").get("href") == PUBLIC + "dxgzdt.xml"
    assert channel.find(f"{ATOM}link[@rel='prev-archive']") is None
    assert [i.findtext("guid") for i in channel.iter("item")] == ZZB_ORDER
    assert {i.find("guid").get("isPermaLink") for i in channel.iter("item")} == {"true"}


def test_atom(files: dict[str, bytes]) -> None:
    feed = parse(files["dxgzdt.atom"])
    assert feed.version == "atom10"
    assert feed.feed.id == PUBLIC + "dxgzdt"
    assert feed.feed.updated == "2024-04-02T02:00:00+08:00"
    links = {link.rel: link.href for link in feed.feed.links}
    assert links == {"self": PUBLIC + "dxgzdt.atom", "alternate": COLUMN_URL}
    assert feed.feed.author_detail == {"name": "党校工作动态", "href": COLUMN_URL}  # for entries without one
    assert [e.id for e in feed.entries] == ZZB_ORDER
    for entry in feed.entries:
        assert entry.published.endswith("+08:00") and entry.updated.endswith("+08:00")
        assert entry.content[0].type == "text/html"
        for src in IMG_SRC.findall(entry.content[0].value):
            assert src.startswith(SITE + "/__local/"), src  # absolute, even the stored relative one
    newest, wechat = feed.entries[0], feed.entries[1]
    assert newest.published == "2024-04-02T00:00:00+08:00"
    assert f'{SITE}/__local/E/0F/12/ABCDEF.jpg' in newest.content[0].value
    assert wechat.link == WECHAT_URL
    assert [link.rel for link in wechat.links] == ["alternate"]
    oldest = feed.entries[-1]
    enclosures = [(link.href, link.type, link.title) for link in oldest.links if link.rel == "enclosure"]
    assert enclosures == [
        (DOWNLOAD + "33501", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         "附件1：入党积极分子培训班报名表.docx"),
        (DOWNLOAD + "33502", "application/pdf", "附件2：培训日程安排.pdf"),
    ]
    assert oldest.link == info_url(2530)
    assert oldest.author == "组织部"
    assert oldest.tags[0].term == "党校工作动态"
    assert b"python-feedgen" not in files["dxgzdt.atom"]


def _check_json_feed(doc: dict[str, Any]) -> None:
    """The JSON Feed 1.1 rules a reader relies on (feedparser 6.0 cannot read JSON Feed)."""
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str) and doc["title"]
    for item in doc["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert "content_html" in item or "content_text" in item
        for key in ("date_published", "date_modified"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", item[key])
        for att in item.get("attachments", []):
            assert att["url"].startswith("https://") and att["mime_type"]
        for author in item.get("authors", []):
            assert author["name"]


def test_json_feed(files: dict[str, bytes]) -> None:
    raw = files["dxgzdt.json"]
    doc = json.loads(raw)
    _check_json_feed(doc)
    assert "\\u" not in raw.decode("utf-8")  # ensure_ascii=False: Chinese stays readable
    assert doc["feed_url"] == PUBLIC + "dxgzdt.json"
    assert doc["home_page_url"] == COLUMN_URL
    assert [i["id"] for i in doc["items"]] == ZZB_ORDER
    oldest = doc["items"][-1]
    assert oldest["attachments"] == [
        {"url": DOWNLOAD + "33501", "title": "附件1：入党积极分子培训班报名表.docx",
         "mime_type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {"url": DOWNLOAD + "33502", "title": "附件2：培训日程安排.pdf", "mime_type": "application/pdf"},
    ]
    assert oldest["authors"] == [{"name": "组织部"}]
    assert oldest["tags"] == ["党校工作动态"]
    assert oldest["date_published"] == "2024-03-01T00:00:00+08:00"
    wechat = doc["items"][1]
    assert wechat["url"] == WECHAT_URL and "attachments" not in wechat
    # Stable bytes: sorted keys at every level.
    assert raw == (json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode()


def test_every_url_is_absolute(files: dict[str, bytes]) -> None:
    for name in ("dxgzdt.xml", "dxgzdt.atom", "opml.xml"):
        root = etree.fromstring(files[name])
        for elem in root.iter():
            for attr in ("href", "url", "xmlUrl", "htmlUrl"):
                if elem.get(attr) is not None:
                    assert elem.get(attr).startswith("https://"), (name, attr, elem.get(attr))
