"""index.html in a real browser (Debian chromium through Playwright), served by the project's FeedServer:
it renders with its charts, every feed link works, the search box finds an article. A screenshot of the
index page is saved under the test's tmp dir (its path is printed).

CI installs chromium, so there the test must run: it is skipped only on a machine without
/usr/bin/chromium and without CI set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feeds import publish
from feeds.server import FeedServer
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


def test_index_page_renders_and_every_feed_link_resolves(chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    factory = new_database(tmp_path)
    seed_zzb(factory)
    seed_column(factory, "tzgg", "通知公告", 60, sh(2023, 1, 1), first_newsid=3100)  # with archive pages
    root = tmp_path / "feeds"
    root.mkdir()
    server = FeedServer(root, "127.0.0.1", 0, session_factory=factory)
    _, port = server.start_in_thread()
    base = f"http://127.0.0.1:{port}/"
    publish(factory, make_config(root, public_url=base, max_items=20, page_size=10))
    server.reload()

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
            # Each column: an activity chart with 24 monthly bars and a chart of its crawl runs.
            for slug in ("dxgzdt", "tzgg"):
                section = page.locator(f"#feed-{slug}")
                expect(section.locator("svg.chart")).to_have_count(2)
                assert section.locator("svg.chart").first.locator("rect.bar").count() == 24
                assert section.locator("svg.chart").first.bounding_box()["height"] > 50  # type: ignore[index]
            assert page.locator("#feed-dxgzdt rect.run-failed").count() == 1
            assert page.locator("#feed-dxgzdt rect.run-ok").count() == 1
            shot = tmp_path / "index.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            assert shot.stat().st_size > 10_000

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

            # The search box: type a phrase from the middle of a title, submit, land on the result.
            page.locator("form[role=search] input[name=q]").first.fill("开班仪")
            page.locator("form[role=search] button").first.click()
            page.wait_for_url("**/search?q=*")
            expect(page.locator("ol.results li")).to_have_count(1)
            expect(page.locator("ol.results li a")).to_have_text("党校举行第十二期发展对象培训班开班仪式")
            page.screenshot(path=str(tmp_path / "search.png"), full_page=True)

            # The column page renders its charts and links back.
            page.goto(base + "dxgzdt.html")
            expect(page.locator("svg.chart")).to_have_count(2)
            expect(page.locator("table.runs tbody tr")).to_have_count(2)
        finally:
            browser.close()
            server.stop()
    assert errors == []  # no script errors and no CSP violations
