"""Publishing: byte-identical output for an unchanged database, atomic writes, edits, stale files."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db.engine import open_database, transaction
from db.models import Article
from feeds import build_from_database, publish, write_files
from feeds.article_page import article_pages
from settings import AppConfig
from tests.test_feeds_support import (
    ZZB_ORDER,
    info_url,
    make_config,
    new_database,
    parse,
    seed_column,
    seed_zzb,
    sh,
)

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[sessionmaker[Session], AppConfig]:
    factory = new_database(tmp_path)
    seed_zzb(factory)
    return factory, make_config(tmp_path / "feeds")


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def test_republishing_an_unchanged_database_touches_nothing(setup: tuple[sessionmaker[Session], AppConfig]
                                                            ) -> None:
    factory, config = setup
    first = publish(factory, config)
    pages = {p for p in first.written if p.startswith("dxgzdt/") and p.endswith(".html")}  # article pages
    assert pages and set(first.written) == {"dxgzdt.xml", "dxgzdt.atom", "dxgzdt.json", "dxgzdt.html", "index.html",
                                            "opml.xml", *pages}
    before = _snapshot(config.feeds_path)
    second = publish(factory, config)
    assert (second.written, second.removed) == ((), ())
    assert set(second.unchanged) == set(first.written)
    assert not second.changed
    assert _snapshot(config.feeds_path) == before  # same bytes and same mtime_ns
    # What publish wrote is exactly what the in-memory build gives.
    assert {k: v[0] for k, v in before.items()} == {**build_from_database(factory, config),
                                                    **article_pages(factory, config)}


def test_written_files_are_complete_and_readable(setup: tuple[sessionmaker[Session], AppConfig]) -> None:
    factory, config = setup
    publish(factory, config)
    root = config.feeds_path
    leftovers = [p.name for p in root.rglob(".*") if p.name not in (".publish.lock", ".pages.json")]
    assert leftovers == []  # no temporary files
    for path in root.glob("*.*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_a_failed_write_keeps_the_old_file(setup: tuple[sessionmaker[Session], AppConfig],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    factory, config = setup
    publish(factory, config)
    root = config.feeds_path
    old = (root / "dxgzdt.atom").read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_files(root, {"dxgzdt.atom": b"<feed/>"})
    assert (root / "dxgzdt.atom").read_bytes() == old
    assert [p.name for p in root.iterdir() if p.name.endswith(".tmp")] == []


def test_leftover_temp_files_of_a_killed_publish_are_cleaned(setup: tuple[sessionmaker[Session], AppConfig]
                                                             ) -> None:
    factory, config = setup
    root = config.feeds_path
    root.mkdir(parents=True)
    (root / ".dxgzdt.atom.ab12_x9z.tmp").write_bytes(b"<feed")  # what a SIGKILL mid-write leaves
    (root / "notes.txt").write_text("operator's file")
    publish(factory, config)
    assert not (root / ".dxgzdt.atom.ab12_x9z.tmp").exists()
    assert (root / "notes.txt").read_text() == "operator's file"


def test_editing_an_article_changes_updated_and_keeps_the_id(setup: tuple[sessionmaker[Session], AppConfig]
                                                             ) -> None:
    factory, config = setup
    publish(factory, config)
    root = config.feeds_path
    edited = datetime(2024, 4, 10, 6, 30, tzinfo=UTC)
    with transaction(factory) as s:
        art = s.scalars(select(Article).where(Article.url == info_url(2541))).one()
        art.body_html = "<p>3月15日上午，开班仪式在图书馆报告厅举行（更正：地点为学术报告厅）。</p>"
        art.body_text = "3月15日上午，开班仪式在图书馆报告厅举行（更正：地点为学术报告厅）。"
        art.updated_at = edited
    result = publish(factory, config)
    assert {"dxgzdt.xml", "dxgzdt.atom", "dxgzdt.json", "index.html"} <= set(result.written)
    assert "opml.xml" in result.unchanged

    atom = parse((root / "dxgzdt.atom").read_bytes())
    assert [e.id for e in atom.entries] == ZZB_ORDER  # same ids, same order (published did not change)
    entry = atom.entries[ZZB_ORDER.index(info_url(2541))]
    assert entry.updated == "2024-04-10T14:30:00+08:00"
    assert entry.published == "2024-03-15T00:00:00+08:00"
    assert "学术报告厅" in entry.content[0].value
    assert atom.feed.updated == "2024-04-10T14:30:00+08:00"

    item = json.loads((root / "dxgzdt.json").read_bytes())["items"][ZZB_ORDER.index(info_url(2541))]
    assert item["id"] == info_url(2541)
    assert (item["date_modified"], item["date_published"]) == ("2024-04-10T14:30:00+08:00",
                                                               "2024-03-15T00:00:00+08:00")
    rss = etree.fromstring((root / "dxgzdt.xml").read_bytes())
    assert rss.find("channel").findtext("lastBuildDate") == "Wed, 10 Apr 2024 14:30:00 +0800"


def test_removing_an_article_drops_it_and_dates_the_feed(setup: tuple[sessionmaker[Session], AppConfig]
                                                         ) -> None:
    factory, config = setup
    publish(factory, config)
    with transaction(factory) as s:
        s.execute(update(Article).where(Article.url == info_url(2542))
                  .values(removed_at=datetime(2024, 4, 20, tzinfo=UTC)))
    publish(factory, config)
    atom = parse((config.feeds_path / "dxgzdt.atom").read_bytes())
    assert info_url(2542) not in {e.id for e in atom.entries}
    assert atom.feed.updated == "2024-04-20T08:00:00+08:00"  # a removal is a change of the feed


def test_stale_archive_pages_are_removed(tmp_path: Path) -> None:
    factory = new_database(tmp_path)
    seed_column(factory, "dxgzdt", "党校工作动态", 12, sh(2024, 1, 1))
    root = tmp_path / "feeds"
    publish(factory, make_config(root, max_items=2, page_size=3))
    assert sorted(p.name for p in (root / "dxgzdt" / "archive").iterdir()) == [
        "1.atom", "2.atom", "3.atom", "4.atom"]  # 10 archived: 3 + 3 + 3 + 1
    result = publish(factory, make_config(root, max_items=8, page_size=3))
    assert sorted(result.removed) == ["dxgzdt/archive/3.atom", "dxgzdt/archive/4.atom"]
    assert sorted(p.name for p in (root / "dxgzdt" / "archive").iterdir()) == ["1.atom", "2.atom"]
    result = publish(factory, make_config(root, max_items=50, page_size=3))
    assert sorted(result.removed) == ["dxgzdt/archive/1.atom", "dxgzdt/archive/2.atom"]
    assert b"prev-archive" not in (root / "dxgzdt.atom").read_bytes()


def test_same_output_on_sqlite_and_postgresql(db_url: str, tmp_path: Path) -> None:
    """The snapshot read (REPEATABLE READ on PostgreSQL, BEGIN on SQLite) gives the same files."""
    factory = open_database(db_url)[1]
    seed_zzb(factory)
    reference = new_database(tmp_path / "ref")
    seed_zzb(reference)
    config = make_config(tmp_path / "feeds")
    assert build_from_database(factory, config) == build_from_database(reference, config)
