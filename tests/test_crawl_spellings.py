"""One article reached through different spellings of its URL is fetched and stored once (a real crawl).

The replica's list pages are edited to link article 2556 again as the site might: with a fragment, a query,
``./`` and ``../`` segments, an upper-case host and in its dynamic ``content.jsp`` form, on page 1 and on
page 2. (The default port cannot be spelled against a server on an ephemeral port: the unit tests in
test_parsing_urls.py cover it.) The source is configured on ``localhost`` so that ``LOCALHOST`` is the same
host in another case; both resolve to 127.0.0.1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.crawl_helpers import assert_matches_manifest
from tests.fixtures.project import articles, project_env, runs, scrapy_crawl, write_sources
from tests.fixtures.site import serve

pytestmark = pytest.mark.slow
ARTICLE = "/info/1015/2556.htm"


def _add_entries(page: Path, hrefs: list[str], title: str, date: str) -> None:
    html = page.read_text(encoding="utf-8-sig")
    items = "".join(f'<li id="line_u8_{90 + n}"><a href="{href}" target="_blank" title="{title}">{title}</a>'
                    f"<span>{date}</span></li>\n" for n, href in enumerate(hrefs))
    html, count = re.subn(r"(<li id=\"line_u8_0\">)", items.replace("\\", "\\\\") + r"\1", html, count=1)
    assert count == 1
    page.write_text(html, encoding="utf-8")


def test_one_article_under_many_spellings_is_stored_once(sqlite_url: str, replica_copy, tmp_path: Path) -> None:
    root, manifest = replica_copy
    seed = next(a for a in manifest["articles"] if a["url"] == ARTICLE)
    with serve(root) as site:
        port = site.httpd.server_address[1]
        base = f"http://localhost:{port}"
        _add_entries(root / "dxgz" / "dxgzdt.htm", [
            "../info/1015/2556.htm#top",
            "../info/1015/2556.htm?from=list",
            "../info/1015/./2556.htm",
            "../info/9999/../1015/2556.htm",
            f"http://LOCALHOST:{port}/info/1015/2556.htm",
            "../content.jsp?urltype=news.NewsContentUrl&wbtreeid=1015&wbnewsid=2556#c",
        ], seed["title"], seed["published"])
        _add_entries(root / "dxgz" / "dxgzdt" / "3.htm", [  # page 2 of 4
            "../../info/1015/2556.htm?from=page2#x",
            f"HTTP://LocalHost:{port}/info/1015/../1015/2556.htm",
        ], seed["title"], seed["published"])
        sources = write_sources(tmp_path / "sources.toml", {
            "name": "dxgzdt", "title": "党校工作动态", "list_url": f"{base}/dxgz/dxgzdt.htm"})
        result = scrapy_crawl("dxgzdt", project_env(sqlite_url, sources))
        assert result.returncode == 0, result.stderr[-3000:]
        hits = site.hits

    run = runs(sqlite_url)[-1]
    assert run.status == "ok", run.error
    stored = articles(sqlite_url)
    assert [a.url for a in stored].count(base + ARTICLE) == 1
    assert not [a.url for a in stored if "2556" in a.url and a.url != base + ARTICLE]
    assert_matches_manifest(stored, manifest, base)  # 46 articles, no duplicate
    article_gets = [h.path for h in hits if "2556" in h.path]
    assert article_gets == [ARTICLE], article_gets
