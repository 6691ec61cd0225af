"""Archive search (feeds.search, migration 0002_search) on SQLite FTS5 and PostgreSQL pg_trgm, and its routes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from db.engine import MIGRATIONS_DIR, make_engine, open_database, session_factory, transaction, upgrade
from feeds.search import SearchError, search
from feeds.server import FeedServer
from tests.test_feeds_support import (
    WECHAT_URL,
    add_article,
    add_source,
    info_url,
    parse,
    seed_column,
    seed_zzb,
    sh,
)
from tests.test_server_support import request


@pytest.fixture
def zzb(db_url: str):
    _engine, factory = open_database(db_url)
    seed_zzb(factory)
    yield factory
    _engine.dispose()


def urls(result) -> list[str]:
    return [a.url for a in result.articles]


def test_three_characters_from_the_middle_of_a_title(zzb) -> None:
    with zzb() as s:
        result = search(s, "开班仪")  # from 党校举行第十二期发展对象培训班开班仪式
    assert urls(result) == [info_url(2541)] and not result.titles_only


def test_full_text_newest_first_and_case_insensitive(zzb) -> None:
    with zzb() as s:
        assert urls(search(s, "积极分子")) == [info_url(2530)]  # only in the body
        assert urls(search(s, "发展对象培训班")) == [info_url(2550), info_url(2542), info_url(2541)]
    with zzb() as s, s.begin():
        s.execute(text("UPDATE articles SET title = 'Python 培训班' WHERE url = :u"), {"u": info_url(2542)})
    with zzb() as s:
        assert urls(search(s, "PYTHON")) == [info_url(2542)]
        assert urls(search(s, "pyt")) == [info_url(2542)]


def test_removed_pending_and_failed_articles_never_appear(zzb) -> None:
    with zzb() as s:
        assert urls(search(s, "旧通知")) == []
        assert urls(search(s, "尚未抓取")) == []
        assert urls(search(s, "抓取失败")) == []
        assert WECHAT_URL in urls(search(s, "红色教育"))  # external items are shown in the feeds: found


def test_short_words_search_titles_only(zzb) -> None:
    """Decided behaviour: when every word is under 3 characters, titles only are searched (and said so)."""
    with zzb() as s:
        result = search(s, "结业")  # in 2550's title (and body)
        assert result.titles_only and urls(result) == [info_url(2550)]
        assert urls(search(s, "典礼")) == []  # only in a body: not found by a title-only search
        mixed = search(s, "培训班 开班")  # a 2-character word narrows a 3-character one (title or body)
        assert not mixed.titles_only and urls(mixed) == [info_url(2541)]
        assert urls(search(s, "现场 结业典")) == [info_url(2550)]
        with pytest.raises(SearchError):
            search(s, "   ")


def test_edits_and_deletes_are_reindexed(zzb) -> None:
    with zzb() as s, s.begin():
        s.execute(text("UPDATE articles SET title = '改名后的标题abc', body_text = '新的正文' WHERE url = :u"),
                  {"u": info_url(2541)})
    with zzb() as s:
        assert urls(search(s, "开班仪")) == []
        assert urls(search(s, "改名后")) == [info_url(2541)]
        assert urls(search(s, "新的正文")) == [info_url(2541)]
    with zzb() as s, s.begin():
        s.execute(text("DELETE FROM attachments"))
        s.execute(text("DELETE FROM articles WHERE url = :u"), {"u": info_url(2541)})
    with zzb() as s:
        assert urls(search(s, "改名后")) == []


def test_paging_and_source(db_url: str) -> None:
    engine, factory = open_database(db_url)
    try:
        seed_column(factory, "tzgg", "通知公告", 45, sh(2023, 1, 1))
        seed_column(factory, "dxgzdt", "党校通知公告", 3, sh(2022, 1, 1), first_newsid=5000)
        seen: list[str] = []
        with factory() as s:
            for page, size, more in ((1, 20, True), (2, 20, True), (3, 8, False)):
                result = search(s, "通知公告", page=page)
                assert (len(result.articles), result.has_more) == (size, more)
                seen += urls(result)
            assert len(set(seen)) == 48
            dates = [a.published for a in search(s, "通知公告", page=1).articles]
            assert dates == sorted(dates, reverse=True)
            only = search(s, "通知公告", source="dxgzdt")
            assert len(only.articles) == 3 and {a.source_name for a in only.articles} == {"dxgzdt"}
            with pytest.raises(SearchError):
                search(s, "通知公告", source="nope")
            with pytest.raises(SearchError):
                search(s, "通知公告", page=0)
    finally:
        engine.dispose()


def test_migration_indexes_existing_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    factory = session_factory(engine)
    with transaction(factory) as s:
        src = add_source(s)
        add_article(s, src, 1, sh(2024, 1, 2), "迁移之前存入的文章", body_text="这是迁移前的正文内容")
    upgrade(engine)  # to head: 0002_search indexes what is there
    with factory() as s:
        assert urls(search(s, "迁移之前")) == [info_url(1)]
        assert urls(search(s, "前的正文")) == [info_url(1)]
        version = s.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == "0003_media"  # head
    engine.dispose()


def test_search_routes(tmp_path: Path) -> None:
    _engine, factory = open_database(f"sqlite:///{tmp_path / 's.db'}")
    seed_zzb(factory)
    seed_column(factory, "tzgg", "通知公告", 25, sh(2023, 1, 1))
    (tmp_path / "feeds").mkdir()
    server = FeedServer(tmp_path / "feeds", "127.0.0.1", 0, session_factory=factory,
                        public_url="https://feeds.example.org/")
    _, port = server.start_in_thread()
    try:
        status, headers, body = request(port, "GET", "/search?q=%E5%BC%80%E7%8F%AD%E4%BB%AA")  # 开班仪
        assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
        page = body.decode()
        assert "党校举行第十二期发展对象培训班开班仪式" in page and "content-security-policy" in headers
        assert 'name="q" value="开班仪"' in page
        status, _, body = request(port, "GET", "/search?q=%E7%BB%93%E4%B8%9A")  # 结业: titles only
        assert status == 200 and 'id="titles-only"' in body.decode()
        status, _, body = request(port, "GET", "/search?q=%E9%80%9A%E7%9F%A5%E5%85%AC%E5%91%8A&page=2")
        assert status == 200 and 'rel="prev"' in body.decode() and 'rel="next"' not in body.decode()
        assert request(port, "GET", "/search")[0] == 200  # the empty form
        assert request(port, "GET", "/search?q=x&page=abc")[0] == 400

        status, headers, body = request(port, "GET", "/search.xml?q=%E5%9F%B9%E8%AE%AD%E7%8F%AD")  # 培训班
        assert status == 200 and headers["content-type"].startswith("application/rss+xml")
        feed = parse(body)
        assert [e.link for e in feed.entries][:1] == [info_url(2550)]
        assert any("search.xml?q=" in link.href for link in feed.feed.links if link.rel == "self")
        status, headers, body = request(port, "GET", "/search.json?q=%E5%9F%B9%E8%AE%AD%E7%8F%AD&source=dxgzdt")
        assert status == 200 and json.loads(body)["items"][0]["url"] == info_url(2550)
        status, _, body = request(port, "GET", "/search.atom?q=%E5%9F%B9%E8%AE%AD%E7%8F%AD")
        assert status == 200 and parse(body).entries
        status, _, body = request(port, "GET", "/search.json?q=")
        assert status == 400 and body.count(b"\n") == 1
        assert request(port, "GET", "/search.html?q=abc")[0] == 404
    finally:
        server.stop()
        _engine.dispose()


def test_search_is_fast_enough_on_a_thousand_articles(tmp_path: Path) -> None:
    """Not a benchmark (bench/serve.py measures 100,000): the query plan must not degrade to a scan+sort."""
    _engine, factory = open_database(f"sqlite:///{tmp_path / 'big.db'}")
    with transaction(factory) as s:
        src = add_source(s)
        for i in range(1000):
            add_article(s, src, i, datetime(2020, 1, 1, tzinfo=UTC).replace(day=1 + i % 28),
                        f"第{i}期学习会议纪要", body_text=f"正文{i}：学习贯彻会议精神")
    with factory() as s:
        result = search(s, "会议纪要")
        assert len(result.articles) == 20 and result.has_more
    _engine.dispose()
