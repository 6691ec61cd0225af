"""MEDIA=serve feeds (built from a database holding kept copies): the existing feed checks still hold, pictures
and enclosures point at our copies where there are copies, the original URLs stay, entry ids never change."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from lxml import etree

from feeds import build_from_database
from tests.media_helpers import keep_copy
from tests.test_feeds_formats import ATOM, IMG_SRC, _check_json_feed
from tests.test_feeds_support import DOWNLOAD, PUBLIC, SITE, ZZB_ORDER, info_url, make_config, new_database, parse
from tests.test_feeds_support import seed_zzb as seed

JPEG = (Path(__file__).parent / "fixtures" / "replica" / "replica-src" / "assets" / "dxjx-1.jpg").read_bytes()
PDF = b"%PDF-1.4\n%%EOF\n"
IMAGE = f"{SITE}/__local/9/A8/1B/3C5E0F.jpg"


def _build(tmp_path: Path, media: str) -> dict[str, bytes]:
    factory = new_database(tmp_path / media)
    seed(factory)
    media_dir = tmp_path / media / "media"
    keep_copy(factory, media_dir, 1, info_url(2530), IMAGE, JPEG, kind="image", name="3C5E0F.jpg",
              mime="image/jpeg", ext="jpg")
    keep_copy(factory, media_dir, 1, info_url(2530), DOWNLOAD + "33502", PDF, kind="attachment",
              name="附件2：培训日程安排.pdf", mime="application/pdf", ext="pdf")
    config = dataclasses.replace(make_config(tmp_path / media / "feeds"), MEDIA=media, MEDIA_DIR=str(media_dir))
    return build_from_database(factory, config)


def test_serve_feeds_pass_the_feed_checks_and_point_at_copies(tmp_path: Path) -> None:
    files = _build(tmp_path, "serve")
    linked = _build(tmp_path, "link")
    for name in ("dxgzdt.xml", "dxgzdt.atom"):
        feed = parse(files[name])  # parse() fails on a bozo feed
        assert [e.id for e in feed.entries] == ZZB_ORDER == [e.id for e in parse(linked[name]).entries]
        root = etree.fromstring(files[name])
        for elem in root.iter():
            for attr in ("href", "url"):
                if elem.get(attr) is not None:
                    assert elem.get(attr).startswith("https://"), (name, attr, elem.get(attr))
    doc = json.loads(files["dxgzdt.json"])
    _check_json_feed(doc)

    atom = parse(files["dxgzdt.atom"])
    oldest = atom.entries[-1]
    content = oldest.content[0].value
    srcs = IMG_SRC.findall(content)
    assert srcs[0].startswith(f"{PUBLIC}media/") and srcs[0].endswith(".jpg")  # kept: ours
    assert srcs[1] == f"{SITE}/__local/2/7C/44/91AB0D.png"  # not kept: the source's
    enclosures = {link.title: link.href for link in oldest.links if link.rel == "enclosure"}
    assert enclosures["附件2：培训日程安排.pdf"].startswith(f"{PUBLIC}media/")
    assert enclosures["附件1：入党积极分子培训班报名表.docx"] == DOWNLOAD + "33501"
    assert f'href="{DOWNLOAD}33502"' in content.replace("&amp;", "&")  # the original, next to our copy
    assert "原始链接 · original" in content
    related = [link.href for link in oldest.links if link.rel == "related"]
    assert len(related) == 1 and related[0].startswith(f"{PUBLIC}dxgzdt/") and related[0].endswith(".html")

    rss = etree.fromstring(files["dxgzdt.xml"])
    items = list(rss.iter("item"))
    assert items[-1].find("enclosure").get("url") == DOWNLOAD + "33501"  # RSS: the first attachment only
    assert [i.find(f"{ATOM}link[@rel='related']") is not None for i in items] == [True, False, True, True, True]
    item = doc["items"][-1]
    assert item["attachments"][1]["url"].startswith(f"{PUBLIC}media/")
    assert item["attachments"][1]["size_in_bytes"] == len(PDF) and "size_in_bytes" not in item["attachments"][0]
    pdf_link = next(link for link in oldest.links if link.rel == "enclosure" and link.href.endswith(".pdf"))
    assert pdf_link.length == str(len(PDF))
    assert item["_archive"]["page_url"] == related[0]
