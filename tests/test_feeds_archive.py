"""RFC 5005 archived feeds: a valid page chain, every article exactly once, full pages that never change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db.engine import transaction
from db.models import Article, Source
from feeds import build_from_database
from feeds.plan import split_archive
from tests.test_feeds_support import PUBLIC, add_article, make_config, new_database, parse, seed_column, sh

ATOM = "{http://www.w3.org/2005/Atom}"
FH_ARCHIVE = "{http://purl.org/syndication/history/1.0}archive"


def _links(data: bytes) -> dict[str, str]:
    root = etree.fromstring(data)
    channel = root.find("channel")
    parent = root if channel is None else channel
    return {link.get("rel"): link.get("href") for link in parent.findall(f"{ATOM}link")}


def _path(url: str) -> str:
    assert url.startswith(PUBLIC), url
    return url[len(PUBLIC):]


def _ids(data: bytes) -> list[str]:
    return [e.id for e in parse(data).entries]


def _seed_23(factory: sessionmaker[Session]) -> list[str]:
    urls = seed_column(factory, "dxgzdt", "党校工作动态", 23, sh(2023, 9, 1))
    with transaction(factory) as s:  # two removed articles, in the middle and among the newest
        s.execute(update(Article).where(Article.url.in_([urls[7], urls[21]]))
                  .values(removed_at=datetime(2024, 1, 1, tzinfo=UTC)))
    return [u for i, u in enumerate(urls) if i not in (7, 21)]


def test_archive_chain_holds_every_article_exactly_once(tmp_path: Path) -> None:
    factory = new_database(tmp_path)
    visible = _seed_23(factory)  # 21 visible: 5 in the feed, 16 archived = 4 full pages + 1 empty one
    files = build_from_database(factory, make_config(tmp_path / "feeds", max_items=5, page_size=4))
    pages = sorted(p for p in files if "/archive/" in p)
    assert pages == [f"dxgzdt/archive/{n}.atom" for n in range(1, 6)]

    current = files["dxgzdt.atom"]
    seen = _ids(current)
    assert seen == visible[::-1][:5]  # the newest five, newest first
    # Walk back from the subscription feed to page 1 ...
    walked = []
    url = _links(current).get("prev-archive")
    assert _links(files["dxgzdt.xml"])["prev-archive"] == url  # RSS points at the same page
    while url:
        page = files[_path(url)]
        links = _links(page)
        assert links["self"] == url and links["current"] == PUBLIC + "dxgzdt.atom"
        assert etree.fromstring(page).find(FH_ARCHIVE) is not None
        assert parse(page).feed.id == PUBLIC + "dxgzdt"  # one logical feed
        walked.append(_path(url))
        seen += _ids(page)
        url = links.get("prev-archive")
    assert walked == pages[::-1]
    # ... and forward again along next-archive.
    forward, url = [], PUBLIC + pages[0]
    while url:
        forward.append(_path(url))
        url = _links(files[_path(url)]).get("next-archive")
    assert forward == pages

    assert sorted(seen) == sorted(visible) and len(seen) == len(set(seen))  # exactly once, removed nowhere
    assert seen == visible[::-1]  # and in order: newest first throughout the chain
    assert [len(_ids(files[p])) for p in pages] == [4, 4, 4, 4, 0]


def test_a_new_article_leaves_full_archive_pages_untouched(tmp_path: Path) -> None:
    factory = new_database(tmp_path)
    _seed_23(factory)
    config = make_config(tmp_path / "feeds", max_items=5, page_size=4)
    before = build_from_database(factory, config)
    for extra in range(1, 6):
        with transaction(factory) as s:
            src = s.scalars(select(Source)).one()
            add_article(s, src, 5000 + extra, sh(2024, 2, extra), f"新文章{extra}")
        after = build_from_database(factory, config)
        full = [p for p in before if "/archive/" in p and len(_ids(before[p])) == 4]
        assert full, "the scenario must have full pages"
        for page in full:
            assert after[page] == before[page], f"{page} changed after adding article {extra}"
        before = after
    # 5 more articles archived: the empty page 5 filled up (full now) and page 6 started.
    assert [len(_ids(before[f"dxgzdt/archive/{n}.atom"])) for n in range(1, 7)] == [4, 4, 4, 4, 4, 1]


def test_few_articles_mean_no_archive(tmp_path: Path) -> None:
    factory = new_database(tmp_path)
    seed_column(factory, "dxgzdt", "党校工作动态", 5, sh(2024, 1, 1))
    files = build_from_database(factory, make_config(tmp_path / "feeds", max_items=5, page_size=4))
    assert not [p for p in files if "/archive/" in p]
    assert "prev-archive" not in _links(files["dxgzdt.atom"])


@given(total=st.integers(0, 60), max_items=st.integers(1, 12), size=st.integers(1, 9),
       added=st.integers(1, 10))
def test_split_archive_properties(total: int, max_items: int, size: int, added: int) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    items = [start + timedelta(days=i) for i in range(total)]  # stand-ins for entries, oldest first
    window, pages = split_archive(items, max_items, size)  # type: ignore[arg-type]
    assert window == items[::-1][:max_items]
    flat = [x for page in pages for x in page]
    assert flat + window[::-1] == items  # everything exactly once, in order
    assert all(len(p) == size for p in pages[:-1])
    assert not pages or len(pages[-1]) < size  # the last page is always the partial (maybe empty) one
    more = items + [start + timedelta(days=total + i) for i in range(added)]
    _, later = split_archive(more, max_items, size)  # type: ignore[arg-type]
    for n, page in enumerate(pages):
        if len(page) == size:
            assert later[n] == page and n + 1 < len(later)  # a full page and its next link stay
