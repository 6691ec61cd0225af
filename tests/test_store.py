"""Storage on SQLite and on a real PostgreSQL server: upserts, edits, removals, runs, migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, inspect, select

from db import store
from db.engine import open_database, transaction, upgrade
from db.models import Article, Attachment, CrawlRun

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def _record(url: str, body: str = "<p>正文</p>", title: str = "标题", **kw: object) -> store.ArticleRecord:
    return store.ArticleRecord(url=url, title=title, published_at=T0 - timedelta(days=1), body_html=body,
                               body_text=body, **kw)


def test_schema_is_created_by_migrations_and_upgrade_is_idempotent(db_url: str) -> None:
    engine, _ = open_database(db_url)
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"sources", "articles", "attachments", "crawl_runs", "alembic_version"} <= tables


def test_article_upsert_is_idempotent_and_detects_edits(db_url: str) -> None:
    _, factory = open_database(db_url)
    att = [store.AttachmentRecord(name="名单.xlsx", url="http://x/dl?id=1", mime_type="application/x")]
    with transaction(factory) as s:
        sid = store.sync_source(s, "col", "栏目", "http://x/list.htm").id
        assert store.store_article(s, sid, _record("http://x/info/1/1.htm", attachments=att), T0) == "new"
    for later in (1, 2):
        with transaction(factory) as s:
            outcome = store.store_article(s, sid, _record("http://x/info/1/1.htm", attachments=att),
                                          T0 + timedelta(hours=later))
            assert outcome == "unchanged"
    with transaction(factory) as s:
        edited = _record("http://x/info/1/1.htm", body="<p>改过的正文</p>", attachments=att)
        assert store.store_article(s, sid, edited, T0 + timedelta(days=1)) == "updated"
    with factory() as s:
        arts = list(s.scalars(select(Article)))
        assert len(arts) == 1
        art = arts[0]
        assert art.first_seen_at == T0
        assert art.updated_at == T0 + timedelta(days=1)
        assert art.body_html == "<p>改过的正文</p>"
        assert s.scalar(select(func.count()).select_from(Attachment)) == 1


def test_attachment_change_is_an_edit_but_validators_are_not(db_url: str) -> None:
    _, factory = open_database(db_url)
    with transaction(factory) as s:
        sid = store.sync_source(s, "col", "栏目", None).id
        store.store_article(s, sid, _record("http://x/a.htm", etag='"1"'), T0)
        assert store.store_article(s, sid, _record("http://x/a.htm", etag='"2"'), T0) == "unchanged"
        more = [store.AttachmentRecord(name="b.pdf", url="http://x/b.pdf")]
        assert store.store_article(s, sid, _record("http://x/a.htm", attachments=more), T0) == "updated"


def test_removed_articles_are_kept_and_can_come_back(db_url: str) -> None:
    _, factory = open_database(db_url)
    with transaction(factory) as s:
        sid = store.sync_source(s, "col", "栏目", None).id
        store.store_article(s, sid, _record("http://x/a.htm"), T0)
        assert store.mark_removed(s, sid, "http://x/a.htm", T0 + timedelta(hours=1))
        assert not store.mark_removed(s, sid, "http://x/a.htm", T0 + timedelta(hours=2))
        assert store.count_articles(s, sid) == 0
        assert store.known_urls(s, sid) == {"http://x/a.htm"}
        assert store.store_article(s, sid, _record("http://x/a.htm"), T0 + timedelta(hours=3)) == "updated"
        assert store.count_articles(s, sid) == 1


def test_list_entries_pending_failed_and_external(db_url: str) -> None:
    _, factory = open_database(db_url)
    with transaction(factory) as s:
        sid = store.sync_source(s, "col", "栏目", None).id
        ext = store.ListEntryRecord("https://mp.weixin.qq.com/s/x", "微信文章", T0, external=True)
        assert store.record_list_entry(s, sid, ext, T0) == "new"
        assert store.record_list_entry(s, sid, ext, T0) == "known"
        local = store.ListEntryRecord("http://x/info/1/5.htm", "本站文章", T0, newsid=5)
        assert store.record_list_entry(s, sid, local, T0) == "pending"
        assert [u for u, *_ in store.urls_to_fetch(s, sid)] == ["http://x/info/1/5.htm"]
        store.mark_failed(s, sid, "http://x/info/1/5.htm", "timeout", T0)
        assert [u for u, *_ in store.urls_to_fetch(s, sid)] == ["http://x/info/1/5.htm"]
        assert store.count_articles(s, sid) == 1  # the external item only
        store.store_article(s, sid, _record("http://x/info/1/5.htm"), T0)
        assert store.urls_to_fetch(s, sid) == []
        assert store.count_articles(s, sid) == 2


def test_due_rechecks_respect_days_and_interval(db_url: str) -> None:
    _, factory = open_database(db_url)
    with transaction(factory) as s:
        sid = store.sync_source(s, "col", "栏目", None).id
        store.store_article(s, sid, _record("http://x/new.htm"), T0)
        old = store.ArticleRecord(url="http://x/old.htm", title="t", published_at=T0 - timedelta(days=400),
                                  body_html="b", body_text="b")
        store.store_article(s, sid, old, T0 - timedelta(days=400))
    with factory() as s:
        assert [u for u, *_ in store.due_rechecks(s, sid, T0 + timedelta(hours=1), 30, 24)] == []
        assert [u for u, *_ in store.due_rechecks(s, sid, T0 + timedelta(hours=25), 30, 24)] == ["http://x/new.htm"]
        assert [u for u, *_ in store.due_rechecks(s, sid, T0 + timedelta(hours=1), 30, 0)] == ["http://x/new.htm"]
        assert store.due_rechecks(s, sid, T0 + timedelta(days=31), 30, 24) == []
        assert store.due_rechecks(s, sid, T0 + timedelta(hours=30), 0, 24) == []


def test_runs_stale_runs_fail_with_reason(db_url: str) -> None:
    _, factory = open_database(db_url)
    with transaction(factory) as s:
        sid = store.sync_source(s, "col", "栏目", None).id
        r1 = store.begin_run(s, sid).id
    with transaction(factory) as s:
        assert store.fail_stale_runs(s, sid, "killed") == 1
        r2 = store.begin_run(s, sid).id
        store.finish_run(s, r2, "ok", new=3)
    with factory() as s:
        runs = {r.id: r for r in s.scalars(select(CrawlRun))}
        assert runs[r1].status == "failed" and runs[r1].error == "killed"
        assert runs[r2].status == "ok" and runs[r2].new == 3 and runs[r2].changed
        assert store.last_success(s, sid).id == r2


def test_changing_list_url_in_the_config_wins_over_discovery(db_url: str) -> None:
    _, factory = open_database(db_url)
    with transaction(factory) as s:
        sid = store.sync_source(s, "col", "栏目", "http://x/old.htm").id
        store.set_list_state(s, sid, etag='"e"', last_modified="lm", discovered_list_url="http://x/found.htm")
    with transaction(factory) as s:
        src = store.sync_source(s, "col", "栏目", "http://x/new.htm")
        assert (src.discovered_list_url, src.list_etag, src.list_last_modified) == (None, None, None)
