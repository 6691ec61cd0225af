"""Feeds of a real crawl of the replica, read back with feedparser and checked against the expected JSON."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from db.engine import open_database
from feeds.publish import publish
from settings import load_config

pytestmark = pytest.mark.slow
OFFSET = re.compile(r"\+08:?00$")


@pytest.fixture(scope="module")
def published(crawled_replica, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    db_url, manifest, base = crawled_replica
    feeds_dir = tmp_path_factory.mktemp("feeds")
    cfg = dataclasses.replace(load_config({}), DATABASE_URL=db_url, FEEDS_DIR=str(feeds_dir),
                              PUBLIC_URL="https://feeds.example.org/ghu/")
    publish(open_database(db_url)[1], cfg)
    return feeds_dir, manifest, base


def _expected_url(exp: dict, base: str) -> str:
    return exp["url"] if exp["external"] else base + exp["url"]


@pytest.mark.parametrize("name", ["dxgzdt.xml", "dxgzdt.atom"])
def test_xml_feeds_match_the_replica(published, name: str) -> None:
    feeds_dir, manifest, base = published
    parsed = feedparser.parse((feeds_dir / name).read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    expected = manifest["articles"]
    assert [e.title for e in parsed.entries] == [a["title"] for a in expected]
    assert [e.link for e in parsed.entries] == [_expected_url(a, base) for a in expected]
    ids = [e.id for e in parsed.entries]
    assert ids == [_expected_url(a, base) for a in expected] and len(set(ids)) == len(ids)
    raw = (feeds_dir / name).read_text(encoding="utf-8")
    assert "+08:00" in raw or "+0800" in raw
    for entry, exp in zip(parsed.entries, expected, strict=True):
        local = _local_published(entry.published)
        assert local.utcoffset() == timedelta(hours=8), entry.published
        assert local.date().isoformat() == exp["published"], exp["id"]
        if exp["external"]:
            continue
        html = entry.content[0].value
        for src in exp["images"]:
            assert f'src="{base}{src}"' in html.replace("&amp;", "&"), (exp["id"], src)
        assert exp["body_startswith"][:10] in html
        enclosures = [link.href for link in entry.get("links", []) if link.get("rel") == "enclosure"]
        if exp["attachments"]:
            assert enclosures, exp["id"]
            assert enclosures[0] == base + exp["attachments"][0]["url"]
            if name.endswith(".atom"):
                assert enclosures == [base + a["url"] for a in exp["attachments"]] + [
                    base + f["url"] for f in exp["body_file_links"]]
    self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
    assert self_links == [f"https://feeds.example.org/ghu/{name}"]


def _local_published(value: str) -> datetime:
    """The date as written in the feed, with its own offset (feedparser's *_parsed is UTC)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return email.utils.parsedate_to_datetime(value)


def test_json_feed_matches_the_replica(published) -> None:
    feeds_dir, manifest, base = published
    feed = json.loads((feeds_dir / "dxgzdt.json").read_text(encoding="utf-8"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    items = feed["items"]
    expected = manifest["articles"]
    assert [i["title"] for i in items] == [a["title"] for a in expected]
    for item, exp in zip(items, expected, strict=True):
        assert item["url"] == _expected_url(exp, base)
        assert item["date_published"].startswith(exp["published"]) and OFFSET.search(item["date_published"])
        assert OFFSET.search(item["date_modified"])
        if exp["external"]:
            assert item["url"].startswith("https://mp.weixin.qq.com/")
            continue
        assert item["id"] == base + exp["url"]
        assert [a["title"] for a in item.get("attachments", [])][: len(exp["attachments"])] == [
            a["name"] for a in exp["attachments"]]
        for att in item.get("attachments", []):
            assert att["url"].startswith("http") and att["mime_type"]
        if exp["author"]:
            assert item["authors"] == [{"name": exp["author"]}]
        for src in exp["images"]:
            assert f'src="{base}{src}"' in item["content_html"].replace("&amp;", "&")
