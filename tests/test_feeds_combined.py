"""Two columns: the combined all.* feeds, and index.html / opml.xml listing every feed."""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html
from lxml import etree
from sqlalchemy import delete, select

from db.engine import transaction
from db.models import Source
from feeds import build_from_database, publish
from tests.test_feeds_support import (
    PUBLIC,
    WECHAT_URL,
    ZZB_ORDER,
    add_article,
    make_config,
    new_database,
    parse,
    seed_column,
    seed_zzb,
    sh,
)

FORMATS = {"xml": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}


def _two_columns(tmp_path: Path) -> tuple[dict[str, bytes], list[str]]:
    factory = new_database(tmp_path)
    seed_zzb(factory)
    other = seed_column(factory, "tzgg", "通知公告", 3, sh(2024, 3, 10), first_newsid=3100)
    with transaction(factory) as s:  # the WeChat item is listed in both columns
        src = s.scalars(select(Source).where(Source.name == "tzgg")).one()
        add_article(s, src, None, sh(2024, 3, 20), "【微信】党校组织学员赴红色教育基地开展实践教学",
                    url=WECHAT_URL, external=True)
    return build_from_database(factory, make_config(tmp_path / "feeds")), other


def test_combined_feeds_hold_both_columns_once_newest_first(tmp_path: Path) -> None:
    files, other = _two_columns(tmp_path)
    for name in ("dxgzdt", "tzgg", "all"):
        assert {f"{name}.xml", f"{name}.atom", f"{name}.json"} <= set(files)
    # 通知公告 (2024-03-10/11/12) falls between 党校工作动态's 03-15 and 03-01 items.
    expected = [*ZZB_ORDER[:4], other[2], other[1], other[0], ZZB_ORDER[4]]
    for ext in ("xml", "atom"):
        feed = parse(files[f"all.{ext}"])
        assert [e.id for e in feed.entries] == expected
        tags = {e.id: [t.term for t in e.tags] for e in feed.entries}
        assert tags[other[0]] == ["通知公告"] and tags[ZZB_ORDER[0]] == ["党校工作动态"]
        assert tags[WECHAT_URL] == ["党校工作动态", "通知公告"]  # once, in both columns
    doc = json.loads(files["all.json"])
    assert [i["id"] for i in doc["items"]] == expected
    assert doc["feed_url"] == PUBLIC + "all.json"


def test_index_and_opml_list_every_feed(tmp_path: Path) -> None:
    files, _ = _two_columns(tmp_path)
    page = lxml.html.fromstring(files["index.html"])
    feed_urls = {PUBLIC + f"{n}.{ext}" for n in ("dxgzdt", "tzgg", "all") for ext in FORMATS}
    discovery = {(link.get("type"), link.get("href")) for link in page.xpath("//head/link[@rel='alternate']")}
    assert discovery == {(FORMATS[u.rsplit(".", 1)[1]], u) for u in feed_urls}
    assert {i.get("value") for i in page.xpath("//input[@readonly]")} == feed_urls
    assert feed_urls <= set(page.xpath("//a/@href"))
    assert len(page.xpath("//button[@data-copy]")) == len(feed_urls)
    body = page.text_content()
    assert "HTTP 503 <Service Unavailable>" in body  # the last crawl's error, escaped
    assert "<Service" not in files["index.html"].decode()
    assert "2024-04-03 09:01" in body  # its finish time, in China Standard Time
    latest = page.xpath("//ol/li/a/@href")
    assert latest[:2] == [ZZB_ORDER[0], WECHAT_URL] and len(latest) == len(set(latest)) == 8

    opml = etree.fromstring(files["opml.xml"])
    assert opml.get("version") == "2.0"
    outlines = opml.findall("body/outline")
    assert [o.get("xmlUrl") for o in outlines] == [PUBLIC + f"{n}.xml" for n in ("dxgzdt", "tzgg", "all")]
    assert all(o.get("type") == "rss" and o.get("text") and o.get("title") and o.get("htmlUrl")
               for o in outlines)


def test_index_escapes_untrusted_titles(tmp_path: Path) -> None:
    factory = new_database(tmp_path)
    seed_column(factory, "dxgzdt", "党校工作动态", 1, sh(2024, 1, 1))
    with transaction(factory) as s:
        src = s.scalars(select(Source)).one()
        add_article(s, src, 77, sh(2024, 1, 5), '<script>alert("x")</script>标题&amp;')
        add_article(s, src, 78, sh(2024, 1, 6), "坏链接", url="javascript:alert(1)")
    files = build_from_database(factory, make_config(tmp_path / "feeds"))
    html = files["index.html"].decode()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;标题&amp;amp;" in html
    assert html.count("<script>") == 1  # only our copy-button script
    assert parse(files["dxgzdt.atom"]).entries[0].title == '<script>alert("x")</script>标题&amp;'
    # An article whose URL is not absolute http(s) is corrupt: it is in no file at all.
    assert not [name for name, data in files.items() if b"javascript:" in data or "坏链接".encode() in data]


def test_combined_feed_goes_away_with_the_second_column(tmp_path: Path) -> None:
    factory = new_database(tmp_path)
    seed_zzb(factory)
    seed_column(factory, "tzgg", "通知公告", 2, sh(2024, 3, 10))
    root = tmp_path / "feeds"
    publish(factory, make_config(root))
    assert (root / "all.atom").exists()
    with transaction(factory) as s:
        s.execute(delete(Source).where(Source.name == "tzgg"))
    result = publish(factory, make_config(root))
    assert sorted(result.removed) == ["all.atom", "all.json", "all.xml"]
    assert b"all.xml" not in (root / "index.html").read_bytes()


def test_unsafe_source_names_get_no_files(tmp_path: Path) -> None:
    """Source.name becomes a path: a name that could escape FEEDS_DIR or clash with all.* is skipped."""
    factory = new_database(tmp_path)
    seed_column(factory, "dxgzdt", "党校工作动态", 1, sh(2024, 1, 1))
    seed_column(factory, "../evil", "坏名字", 1, sh(2024, 1, 2), first_newsid=2000)
    seed_column(factory, "all", "保留名字", 1, sh(2024, 1, 3), first_newsid=3000)
    files = build_from_database(factory, make_config(tmp_path / "feeds"))
    assert sorted(files) == ["dxgzdt.atom", "dxgzdt.html", "dxgzdt.json", "dxgzdt.xml", "index.html", "opml.xml"]
