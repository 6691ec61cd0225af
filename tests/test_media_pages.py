"""Article pages and MEDIA=serve after real crawls: a removed article keeps its page and pictures, feeds
point at our copies and stay valid, and Chromium loads every picture from our server."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import feedparser
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from db.engine import open_database
from db.models import Article
from feeds.media_app import media_routes
from feeds.publish import publish
from settings import load_config
from tests.fixtures.faulty import assert_feeds_valid
from tests.fixtures.project import project_env, runs, scrapy_crawl, write_sources
from tests.fixtures.site import build_site, serve
from tests.media_helpers import serve_app
from tests.test_feeds_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow
REMOVED_ID = 2647  # three pictures


def _crawl(env: dict[str, str]) -> None:
    result = scrapy_crawl("dxgzdt", env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert runs(env["DATABASE_URL"])[-1].status == "ok", runs(env["DATABASE_URL"])[-1].error


def crawl_then_remove(db_url: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, str], str]:
    """Crawl with MEDIA=serve, then delete article 2647's page and pictures at the source and crawl again.

    Returns (manifest, environment, the site's base URL); the site is stopped afterwards.
    """
    root = tmp_path / "site"
    manifest = build_site(root)
    with serve(root) as site:
        sources = write_sources(tmp_path / "sources.toml", {
            "name": "dxgzdt", "title": "党校工作动态", "list_url": f"{site.base}/dxgz/dxgzdt.htm"})
        env = project_env(db_url, sources, tmp_path / "feeds", MEDIA="serve", MEDIA_DIR=tmp_path / "media",
                          RECHECK_INTERVAL=0)
        _crawl(env)
        art = next(a for a in manifest["articles"] if a["id"] == REMOVED_ID)
        (root / art["url"].lstrip("/")).unlink()
        for src in art["images"]:
            (root / src.split("?")[0].lstrip("/")).unlink()
        _crawl(env)
        base = site.base
    return manifest, env, base


def _publish(env: dict[str, str], public_url: str) -> Any:
    config = load_config({**env, "PUBLIC_URL": public_url})
    engine, factory = open_database(config.DATABASE_URL)
    try:
        publish(factory, config)
        with factory() as s:
            return {a.url: a.id for a in s.scalars(select(Article))}
    finally:
        engine.dispose()


def _app(env: dict[str, str]) -> Starlette:
    """What the feed server mounts: /media/… plus FEEDS_DIR (as static files here)."""
    _engine, factory = open_database(env["DATABASE_URL"])
    feeds = Path(env["FEEDS_DIR"])
    feeds.mkdir(parents=True, exist_ok=True)
    return Starlette(routes=[*media_routes(factory, env["MEDIA_DIR"]),
                             Mount("/", StaticFiles(directory=feeds, html=True))])


def test_removed_article_page_keeps_text_and_pictures_and_feeds_point_at_copies(
        db_url: str, tmp_path: Path) -> None:
    manifest, env, site_base = crawl_then_remove(db_url, tmp_path)
    public = "http://feeds.example.test/"
    ids = _publish(env, public)
    feeds = Path(env["FEEDS_DIR"])
    art = next(a for a in manifest["articles"] if a["id"] == REMOVED_ID)
    page = (feeds / "dxgzdt" / f"{ids[site_base + art['url']]}.html").read_text("utf-8")
    assert "从原网站删除" in page and "Removed from the source on" in page
    assert art["body_startswith"] in page and art["title"] in page
    srcs = re.findall(r'<img[^>]* src="([^"]+)"', page)
    assert len(srcs) == 3 and all(s.startswith("../media/") for s in srcs)
    for src in srcs:
        assert (Path(env["MEDIA_DIR"]) / src.removeprefix("../media/")).is_file()
    assert f'href="{site_base}{art["url"]}"' in page  # the link to the original

    # the feeds: valid, every entry links its page, pictures and attachments point at our copies
    assert_feeds_valid(feeds)
    atom = feedparser.parse((feeds / "dxgzdt.atom").read_bytes())
    assert site_base + art["url"] not in {e.id for e in atom.entries}  # removed: hidden from the feeds
    for entry in atom.entries:  # off-site (WeChat) items have no page of ours
        related = [link.href for link in entry.links if link.rel == "related"]
        assert related == ([f"{public}dxgzdt/{ids[entry.id]}.html"] if entry.id.startswith(site_base) else []), entry.id
    rss = (feeds / "dxgzdt.xml").read_text("utf-8")
    assert rss.count('rel="related"') == sum(1 for e in atom.entries if e.id.startswith(site_base)) > 0
    items = json.loads((feeds / "dxgzdt.json").read_text("utf-8"))["items"]
    assert all(i["_archive"]["page_url"] == f"{public}dxgzdt/{ids[i['id']]}.html"
               for i in items if i["id"].startswith(site_base))
    content = " ".join(i["content_html"] for i in items)
    assert f'src="{site_base}/__local' not in content and f'src="{public}media/' in content
    with_files = [i for i in items if i.get("attachments")]
    assert with_files and all(a["url"].startswith(f"{public}media/") for i in with_files for a in i["attachments"])
    assert "原始链接 · original" in content and "download.jsp" in content  # the original URL stays, as a link


@pytest.mark.browser
def test_pictures_load_from_our_server_in_chromium(sqlite_url: str, tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM) or not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    manifest, env, site_base = crawl_then_remove(sqlite_url, tmp_path)  # the source is gone from here on
    with serve_app(_app(env)) as base:
        public = base + "/"
        ids = _publish(env, public)
        removed = next(a for a in manifest["articles"] if a["id"] == REMOVED_ID)
        visible = next(a for a in manifest["articles"] if a["id"] == 2497)
        item = next(i for i in json.loads(Path(env["FEEDS_DIR"], "dxgzdt.json").read_text("utf-8"))["items"]
                    if i["id"] == site_base + visible["url"])
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                failed: list[str] = []
                page.on("requestfailed", lambda req: failed.append(req.url))
                for article in (removed, visible):
                    response = page.goto(f"{public}dxgzdt/{ids[site_base + article['url']]}.html")
                    assert response is not None and response.status == 200
                    page.wait_for_load_state("load")
                    images = page.eval_on_selector_all(
                        "img", "els => els.map(e => [e.src, e.complete && e.naturalWidth > 0])")
                    assert len(images) == len(article["images"]) and images
                    assert all(src.startswith(f"{public}media/") and ok for src, ok in images), images
                # a feed entry's content, as a reader shows it: its pictures come from us too
                # (from a page of ours: Chromium keeps about:blank pages off loopback addresses)
                Path(env["FEEDS_DIR"], "reader.html").write_text(
                    f'<!DOCTYPE html><meta charset="utf-8"><body>{item["content_html"]}</body>', "utf-8")
                page.goto(f"{public}reader.html", wait_until="load")
                images = page.eval_on_selector_all("img", "els => els.map(e => [e.src, e.naturalWidth > 0])")
                assert images and all(src.startswith(f"{public}media/") and ok for src, ok in images), images
                assert failed == []
            finally:
                browser.close()
