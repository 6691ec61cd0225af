"""Article pages at publish time: one per stored article, notices, and only changed pages rewritten."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db.engine import transaction
from db.models import Article
from feeds import publish
from feeds.article_page import article_pages
from settings import AppConfig
from tests.test_feeds_support import info_url, make_config, new_database, seed_zzb


def _setup(tmp_path: Path) -> tuple[sessionmaker[Session], AppConfig, dict[str, int]]:
    factory = new_database(tmp_path)
    seed_zzb(factory)
    with factory() as s:
        ids = {a.url: a.id for a in s.scalars(select(Article))}
    return factory, make_config(tmp_path / "feeds"), ids


def _pages(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.glob("dxgzdt/*.html"))}


def test_every_stored_article_has_a_page_and_only_changes_are_rewritten(tmp_path: Path) -> None:
    factory, config, ids = _setup(tmp_path)
    first = publish(factory, config)
    root = config.feeds_path
    pages = _pages(root)
    # stored on-site articles, the removed one included; not the pending, failed or off-site ones
    assert set(pages) == {f"dxgzdt/{ids[info_url(n)]}.html" for n in (2530, 2541, 2542, 2550, 2545)}
    assert set(pages) <= set(first.written)
    assert {k: v[0] for k, v in pages.items()} == article_pages(factory, config)  # same as the full build

    removed = pages[f"dxgzdt/{ids[info_url(2545)]}.html"][0].decode()
    assert "本文已于 2024-04-01 从原网站删除" in removed and "已删除的旧通知" in removed

    second = publish(factory, config)
    assert not [p for p in second.written if p.startswith("dxgzdt/") and p.endswith(".html")]
    assert _pages(root) == pages  # same bytes, same mtimes

    with transaction(factory) as s:  # an edit of 2541 at the source
        s.execute(update(Article).where(Article.url == info_url(2541)).values(
            body_html="<p>修改后的正文。</p>", content_hash="edited", updated_at=datetime(2024, 5, 6, 3, tzinfo=UTC)))
    (root / f"dxgzdt/{ids[info_url(2542)]}.html").unlink()  # and a page lost on disk
    third = publish(factory, config)
    rewritten = sorted(p for p in third.written if p.startswith("dxgzdt/") and p.endswith(".html"))
    assert rewritten == sorted(f"dxgzdt/{ids[info_url(n)]}.html" for n in (2541, 2542))
    edited = (root / f"dxgzdt/{ids[info_url(2541)]}.html").read_text("utf-8")
    assert "修改后的正文" in edited and "本文于 2024-05-06 在原网站被修改" in edited

    (root / "dxgzdt" / ".pages.json").write_text("{not json", "utf-8")  # a broken manifest: pages are rebuilt
    fourth = publish(factory, config)
    assert not [p for p in fourth.written if p.startswith("dxgzdt/") and p.endswith(".html")]  # ... and found identical
    assert {k: v[0] for k, v in _pages(root).items()} == article_pages(factory, config)
