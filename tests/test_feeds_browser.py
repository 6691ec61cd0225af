"""index.html in a real browser (Debian chromium through Playwright): it renders, every feed link works.

CI installs chromium, so there the test must run: it is skipped only on a machine without
/usr/bin/chromium and without CI set.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from feeds import publish
from tests.test_feeds_support import make_config, new_database, seed_column, seed_zzb, sh

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI (run-tests.sh installs it)")
        pytest.skip(f"{CHROMIUM} not installed")
    return CHROMIUM


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A throw-away static server on 127.0.0.1 (the project's own server is tested elsewhere)."""
    root = tmp_path / "feeds"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_index_page_renders_and_every_feed_link_resolves(chromium_path: str, served_dir: tuple[Path, str],
                                                         tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    root, base = served_dir
    factory = new_database(tmp_path)
    seed_zzb(factory)
    seed_column(factory, "tzgg", "通知公告", 60, sh(2023, 1, 1), first_newsid=3100)  # with archive pages
    publish(factory, make_config(root, public_url=base, max_items=20, page_size=10))

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base.rstrip("/"))
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            response = page.goto(base + "index.html")
            assert response is not None and response.status == 200
            assert "订阅源 Feeds" in page.title()
            assert page.locator("h1").inner_text().endswith("订阅源 Feeds")
            for title in ("党校工作动态", "通知公告", "全部栏目"):
                assert page.locator("h2", has_text=title).count() == 1, title

            hrefs = page.eval_on_selector_all(
                "a[href], link[rel=alternate]", "els => els.map(e => e.href)")
            feed_links = sorted({h for h in hrefs if h.startswith(base)})
            expected = {f"{base}{n}.{ext}" for n in ("dxgzdt", "tzgg", "all") for ext in ("xml", "atom", "json")}
            assert expected <= set(feed_links)
            assert any("/archive/" in h for h in feed_links) and f"{base}opml.xml" in feed_links
            for href in feed_links:
                assert context.request.get(href).status == 200, href

            # The copy button puts the URL on the clipboard and says so.
            button = page.locator("button[data-copy='u-dxgzdt-atom']")
            button.click()
            expect(button).to_contain_text("Copied")  # (the page's CSP forbids wait_for_function's eval)
            assert page.evaluate("navigator.clipboard.readText()") == f"{base}dxgzdt.atom"
        finally:
            browser.close()
    assert errors == []  # no script errors and no CSP violations
