"""The parsers against the offline replica of zzb.ghu.edu.cn: every list entry and every article must
match the builder's expected extraction, in the default build, without the article meta line, and as GBK."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from crawler.parsing import (
    ArticlePage,
    ListEntry,
    decode_html,
    find_column_list_url,
    looks_like_vsb,
    parse_article,
    parse_list_page,
)

REPLICA_DIR = Path(__file__).parent / "fixtures" / "replica"
VARIANTS = {
    "default": [],
    "no-meta": ["--no-article-meta"],
    "gbk": ["--encoding", "gbk"],
}
PREV_NEXT_WORDS = ("上一篇", "下一篇", "打印本页", "关闭窗口", "没有了")


def build_replica(out: Path, *options: str) -> dict:
    """Run build_replica.py into ``out`` and return its expected-extraction manifest."""
    expected = out.with_suffix(".json")
    subprocess.run([sys.executable, "build_replica.py", "--out", str(out), "--expected", str(expected), *options],
                   cwd=REPLICA_DIR, check=True, capture_output=True)
    return json.loads(expected.read_text(encoding="utf-8"))


class Replica:
    def __init__(self, root: Path, manifest: dict) -> None:
        self.root, self.manifest = root, manifest
        self.host = manifest["site"]["real_host"]

    def url(self, path: str) -> str:
        return self.host + path

    def page(self, path: str) -> str:
        return decode_html((self.root / path.lstrip("/")).read_bytes())

    @property
    def articles(self) -> list[dict]:
        return self.manifest["articles"]

    @property
    def local_articles(self) -> list[dict]:
        return [a for a in self.articles if not a["external"]]


@pytest.fixture(scope="module", params=list(VARIANTS))
def replica(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Replica:
    out = tmp_path_factory.mktemp("replica") / request.param
    return Replica(out, build_replica(out, *VARIANTS[request.param]))


def norm(text: str) -> str:
    """The manifest's text normalisation (see its ``text_normalisation`` field)."""
    text = text.replace("\u200b", "").replace("\xa0", " ").replace("\u3000", " ")
    return re.sub(r"\s+", " ", text).strip()


def list_entries(replica: Replica) -> list[ListEntry]:
    entries: list[ListEntry] = []
    for path in replica.manifest["column"]["pages"]:
        entries.extend(parse_list_page(replica.page(path), replica.url(path)).entries)
    return entries


# ---------------------------------------------------------------- list pages
def test_list_pages_give_every_entry_with_full_title_date_and_url(replica: Replica) -> None:
    entries = list_entries(replica)
    assert len(entries) == 46 == replica.manifest["column"]["total_items"]
    for entry, expected in zip(entries, replica.articles, strict=True):
        assert entry.url == expected["real_url"]
        assert entry.title == expected["title"]
        assert entry.list_text == expected["list_text"]
        assert entry.title_truncated is False  # every item carries a title attribute
        assert entry.published is not None
        assert entry.published.date() == date.fromisoformat(expected["published"])
        assert (entry.published.hour, entry.published.minute) == (0, 0)
        assert entry.published.utcoffset().total_seconds() == 8 * 3600
        assert entry.newsid == (None if expected["external"] else expected["id"])


def test_pager_links_pages_in_order_and_reports_totals(replica: Replica) -> None:
    pages = replica.manifest["column"]["pages"]
    for index, path in enumerate(pages):
        result = parse_list_page(replica.page(path), replica.url(path))
        expected_next = replica.url(pages[index + 1]) if index + 1 < len(pages) else None
        assert result.next_url == expected_next
        assert result.total_pages == len(pages)
        assert result.total_items == 46


def test_home_and_parent_blocks_parse_as_given(replica: Replica) -> None:
    home = parse_list_page(replica.page("/index.htm"), replica.url("/index.htm"))
    assert [e.url for e in home.entries] == [a["real_url"] for a in replica.articles[:7]]
    assert home.next_url is None
    landing = parse_list_page(replica.page("/dxgz.htm"), replica.url("/dxgz.htm"))
    assert [e.title for e in landing.entries] == [a["title"] for a in replica.articles[:8]]


# ---------------------------------------------------------------- articles
def parse_expected_article(replica: Replica, expected: dict) -> ArticlePage:
    return parse_article(replica.page(expected["url"]), expected["real_url"])


def test_every_article_title_date_author_source(replica: Replica) -> None:
    with_meta = replica.manifest["variant"]["article_meta"]
    for expected in replica.local_articles:
        page = parse_expected_article(replica, expected)
        assert page.title == expected["title"], expected["id"]
        if with_meta:
            assert page.published is not None and page.date_only is True
            assert page.published.date() == date.fromisoformat(expected["published"])
        else:
            assert page.published is None and page.date_only is False
        assert page.author == expected["author"], expected["id"]
        assert page.origin == expected["source"], expected["id"]
        assert page.editor is None


def test_every_article_images_attachments_and_body_file_links(replica: Replica) -> None:
    for expected in replica.local_articles:
        page = parse_expected_article(replica, expected)
        assert len(page.images) == expected["image_count"]
        assert page.images == [replica.url(src) for src in expected["images"]]
        listed = [(a.name, a.url) for a in page.attachments if not a.in_body]
        assert listed == [(a["name"], replica.url(a["url"])) for a in expected["attachments"]]
        in_body = [(a.name, a.url) for a in page.attachments if a.in_body]
        assert in_body == [(f["name"], replica.url(f["url"])) for f in expected["body_file_links"]]


def test_every_article_body_text_and_html(replica: Replica) -> None:
    for expected in replica.local_articles:
        page = parse_expected_article(replica, expected)
        assert page.body_html is not None
        lines = page.body_text.split("\n")
        assert norm(lines[0])[:20] == expected["body_startswith"], expected["id"]
        assert norm(lines[-1])[-20:] == expected["body_endswith"], expected["id"]
        assert len(lines) == expected["body_paragraphs"], expected["id"]
        for word in PREV_NEXT_WORDS:
            assert word not in page.body_text and word not in page.body_html
        assert "<script" not in page.body_html and "style=" not in page.body_html
        assert "\u200b" not in page.body_text + page.body_html
        for src in re.findall(r'(?:src|href)="([^"]+)"', page.body_html):
            assert src.startswith(replica.host + "/")


def test_every_article_breadcrumb_and_column_discovery(replica: Replica) -> None:
    column = replica.manifest["column"]
    list_url = replica.url(column["first_page"])
    for expected in replica.local_articles:
        html = replica.page(expected["url"])
        page = parse_article(html, expected["real_url"])
        assert [text for text, _ in page.breadcrumb] == ["首页", column["parent"], column["name"]]
        assert page.breadcrumb[-1][1] == list_url
        assert find_column_list_url(html, expected["real_url"], column["name"]) == list_url
        assert find_column_list_url(html, expected["real_url"], None) == list_url
        assert looks_like_vsb(html)


def test_home_page_discovery(replica: Replica) -> None:
    html = replica.page("/index.htm")
    list_url = replica.url(replica.manifest["column"]["first_page"])
    assert find_column_list_url(html, replica.url("/index.htm"), "党校工作动态") == list_url
    assert find_column_list_url(html, replica.url("/index.htm"), "党校工作") == replica.url("/dxgz.htm")


def test_gbk_pages_decode_from_raw_bytes_without_header(tmp_path: Path) -> None:
    manifest = build_replica(tmp_path / "g", "--encoding", "gbk")
    expected = manifest["articles"][0]
    raw = (tmp_path / "g" / expected["url"].lstrip("/")).read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    for header in (None, "utf-8", "iso-8859-1"):  # the page's meta outranks a wrong header
        page = parse_article(decode_html(raw, header), expected["real_url"])
        assert page.title == expected["title"]
