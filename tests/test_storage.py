"""The crawl's storage without a spider: batches, replays after a failing item, one run record per source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from crawler import storage as storage_module
from crawler.items import ArticleItem, CheckItem, ListPageItem
from crawler.sources import Source
from crawler.storage import CrawlStorage
from db import store
from db.engine import open_database
from db.models import Article, CrawlRun

DAY = datetime(2025, 6, 1, tzinfo=UTC)
ONE = Source(name="one", title="一", list_url="http://a.example/one.htm")
TWO = Source(name="two", title="二", list_url="http://a.example/two.htm")


def _article(source: str, n: int, body: str = "<p>正文</p>") -> ArticleItem:
    return ArticleItem(source, store.ArticleRecord(url=f"http://a.example/info/1/{source}{n}.htm", title=f"标题{n}",
                                                   published_at=DAY - timedelta(days=n), body_html=body,
                                                   body_text=body))


def _entries(source: str, ns: range) -> ListPageItem:
    return ListPageItem(source, [store.ListEntryRecord(url=f"http://a.example/info/1/{source}{n}.htm",
                                                       title=f"标题{n}", published_at=DAY) for n in ns])


def _rows(factory, model=Article) -> list:
    with factory() as s:
        return list(s.scalars(select(model).order_by(model.id)))


def test_items_of_two_sources_are_stored_in_batches_with_a_run_each(db_url: str, monkeypatch) -> None:
    monkeypatch.setattr(storage_module, "COMMIT_EVERY", 5)
    _, factory = open_database(db_url)
    storage = CrawlStorage(factory)
    one, two = storage.open_run(ONE), storage.open_run(TWO)
    storage.store(_entries("one", range(6)))
    storage.store(_entries("two", range(3)))
    for n in range(4):
        storage.store(_article("one", n))
    assert len(storage.batch) == 1  # five items were committed as one batch
    assert sum(a.status == "ok" for a in _rows(factory)) == 3  # ...and another session sees them
    storage.store(_article("two", 0))
    storage.store(CheckItem("two", "http://a.example/info/1/two1.htm", "failed", "answered 500"))
    assert storage.finish_run("one", requests=11, pages=10, close_reason="finished") == "ok"
    assert storage.finish_run("two", requests=4, pages=3, close_reason="finished") == "ok"
    runs = {r.id: r for r in _rows(factory, CrawlRun)}
    assert (runs[one.run_id].status, runs[one.run_id].new, runs[one.run_id].requests) == ("ok", 4, 11)
    assert (runs[two.run_id].new, runs[two.run_id].failed) == (1, 1)
    stored = [(a.url.rsplit("/", 1)[1], a.status) for a in _rows(factory)]
    assert ("one3.htm", "ok") in stored and ("two1.htm", "failed") in stored and ("one5.htm", "pending") in stored


def test_an_item_that_raises_is_the_only_one_lost_and_fails_nothing_else(db_url: str, caplog) -> None:
    _, factory = open_database(db_url)
    storage = CrawlStorage(factory)
    storage.open_run(ONE)
    storage.open_run(TWO)
    storage.store(_article("one", 1))
    storage.store(_article("two", 1))
    broken = ArticleItem("one", store.ArticleRecord(url=None, title="x", published_at=None,  # type: ignore[arg-type]
                                                    body_html="x", body_text="x"))  # articles.url is NOT NULL
    storage.store(broken)
    storage.store(_article("one", 3))
    storage.commit()
    assert sorted(a.url.rsplit("/", 1)[1] for a in _rows(factory)) == ["one1.htm", "one3.htm", "two1.htm"]
    assert "could not store" in caplog.text and "left out" in caplog.text
    assert storage.finish_run("one", 0, 3, "finished") == "ok"
    assert (storage.runs["one"].counts["new"], storage.runs["two"].counts["new"]) == (2, 1)


def test_a_batch_holds_no_transaction_while_items_arrive(tmp_path) -> None:
    """Another process can write between two items: the write lock is taken only while a batch is written."""
    import sqlite3

    db = tmp_path / "ghu.db"
    _, factory = open_database(f"sqlite:///{db}")
    storage = CrawlStorage(factory)
    storage.open_run(ONE)
    storage.store(_article("one", 1))
    other = sqlite3.connect(db, timeout=0)  # no waiting: "database is locked" if a writer held the lock
    other.execute("UPDATE sources SET title = title")
    other.commit()
    other.close()
    storage.commit()
    assert [a.status for a in _rows(factory)] == ["ok"]


def test_a_run_stopped_early_fails_and_keeps_its_stored_items(db_url: str) -> None:
    _, factory = open_database(db_url)
    storage = CrawlStorage(factory)
    ctx = storage.open_run(ONE)
    storage.store(_article("one", 1))
    assert storage.finish_run("one", 1, 1, "shutdown") == "failed"
    run = [r for r in _rows(factory, CrawlRun) if r.id == ctx.run_id][0]
    assert run.status == "failed" and "stopped early" in run.error
    assert [a.status for a in _rows(factory)] == ["ok"]
