"""Assertions shared by the crawl tests: stored articles against a replica manifest."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from db.models import Article

SHANGHAI = ZoneInfo("Asia/Shanghai")


def assert_matches_manifest(stored: list[Article], manifest: dict[str, Any], base: str) -> None:
    """Field by field: title, date, author, source, images, attachments, body file links, external."""
    by_url = {a.url: a for a in stored}
    expected = manifest["articles"]
    assert len(by_url) == len(stored), "duplicate article URLs stored"
    assert len(stored) == len(expected), f"{len(stored)} stored, {len(expected)} expected"
    for exp in expected:
        url = exp["url"] if exp["external"] else base + exp["url"]
        art = by_url.get(url)
        assert art is not None, f"missing {url}"
        label = f"{exp['id']} {exp['title']}"
        assert art.external == exp["external"], label
        assert art.title == exp["title"], label
        assert art.published_at is not None, label
        assert art.published_at.astimezone(SHANGHAI).date().isoformat() == exp["published"], label
        assert art.removed_at is None, label
        if exp["external"]:
            assert art.body_html is None, label
            continue
        assert art.status == "ok", (label, art.fetch_error)
        assert art.author == exp["author"], label
        assert art.origin == exp["source"], label
        assert len(art.images or []) == exp["image_count"], label
        assert art.images == [base + src for src in exp["images"]], label
        listed = [a for a in art.attachments if not a.in_body]
        inline = [a for a in art.attachments if a.in_body]
        assert [a.name for a in listed] == [a["name"] for a in exp["attachments"]], label
        assert [a.url for a in listed] == [base + a["url"] for a in exp["attachments"]], label
        assert [a.name for a in inline] == [f["name"] for f in exp["body_file_links"]], label
        text = " ".join((art.body_text or "").split())
        assert text.startswith(exp["body_startswith"]), label
        assert text.endswith(exp["body_endswith"]), label
        assert "上一篇" not in (art.body_text or "") and "下一篇" not in (art.body_text or ""), label
