"""`python scheduler.py add URL --all`: every list column in a VSB site's navigation becomes a source, in one
command; `--dry-run` writes nothing. Against a replica site on 127.0.0.1 whose navigation holds three columns
under two parents, a plain page, an article link and an external link (build_replica.build_site_columns).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest

from crawler.sources import load_sources
from tests.crawl_helpers import assert_matches_manifest
from tests.fixtures.project import ROOT, articles, project_env, runs, scrapy_crawl
from tests.fixtures.site import SiteServer, build_columns_site, serve

SITE_NAME = "长春光华学院组织部"
HEADER = ("# Columns to crawl (test copy).\n"
          "# These comments, the blank lines and the existing source must survive `add --all`.\n"
          "\n"
          "[[source]]\n"
          'name = "zuzhi"  # kept by hand under another name\n'
          'title = "组织动态 (mine)"\n'
          'list_url = "{base}/zzgz/zzdt.htm"\n'
          "\n")
EXPECTED = {  # name -> (list path, column)
    "dxgzdt": ("/dxgz/dxgzdt.htm", "党校工作动态"),
    "tzgg": ("/zzgz/tzgg.htm", "通知公告"),
}


@pytest.fixture(scope="module")
def columns_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SiteServer, dict[str, Any]]]:
    """The several-columns replica; read-only for the tests (plus one page without navigation)."""
    root = tmp_path_factory.mktemp("columns") / "site"
    built = build_columns_site(root)
    (root / "lonely.htm").write_text(
        "<html><head><script>_jsq_(1,'/list.jsp',-1,1)</script></head><body><p>no menus here</p></body></html>",
        encoding="utf-8")
    with serve(root) as site:
        yield site, built


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "scheduler.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def table_rows(stdout: str) -> dict[str, tuple[str, str]]:
    """URL -> (result, rest of the line) from the printed table."""
    rows = {}
    for line in stdout.splitlines():
        words = line.split()
        url = next((w for w in words if w.startswith("http")), None)
        if url and words[0] in ("added", "present", "skipped", "would"):
            rows[url] = (" ".join(words[:2]) if words[0] == "would" else words[0], line)
    return rows


def check_table(stdout: str, site: SiteServer, built: dict[str, Any], added: str) -> None:
    rows = table_rows(stdout)
    base = site.base
    for href, _name, kind in built["nav"]:
        url = href if kind == "external" else f"{base}/{href}"
        assert url in rows, (url, stdout)
        result, line = rows[url]
        if kind == "list":
            expected = "present" if href == "zzgz/zzdt.htm" else added
            assert result == expected, line
            assert "entries on page 1" in line and "pages" in line, line
        else:
            assert result == "skipped", line
            reason = {"external": "external link", "article": "article page", "home": "home page",
                      "plain": "not a list page", "landing": "not a list page"}[kind]
            assert reason in line, line
    assert f"{base}/zzgz/zzdt.htm" in rows and "zuzhi" in rows[f"{base}/zzgz/zzdt.htm"][1]


def test_add_all_adds_every_list_column_and_leaves_the_rest(columns_site: tuple[SiteServer, dict[str, Any]],
                                                            sqlite_url: str, tmp_path: Path) -> None:
    site, built = columns_site
    sources = tmp_path / "sources.toml"
    header = HEADER.format(base=site.base)
    sources.write_text(header, encoding="utf-8")
    env = project_env(sqlite_url, sources)

    result = run_cli(env, "add", site.base + "/", "--all")
    assert result.returncode == 0, result.stderr
    check_table(result.stdout, site, built, "added")
    assert "added 2 sources" in result.stdout

    text = sources.read_text(encoding="utf-8")
    assert text.startswith(header), "existing comments, layout and sources must be kept byte for byte"
    loaded = load_sources(sources)
    assert sorted(loaded) == sorted(["zuzhi", *EXPECTED])
    assert loaded["zuzhi"].title == "组织动态 (mine)"
    for name, (path, column) in EXPECTED.items():
        src = loaded[name]
        assert (src.list_url, src.column, src.title) == (site.base + path, column, f"{SITE_NAME} · {column}")
        assert src.seed_url is None

    again = run_cli(env, "add", site.base + "/", "--all")
    assert again.returncode == 0, again.stderr
    assert "nothing to add" in again.stdout
    assert sources.read_text(encoding="utf-8") == text


def test_add_all_from_a_list_page_finds_the_same_columns(columns_site: tuple[SiteServer, dict[str, Any]],
                                                         sqlite_url: str, tmp_path: Path) -> None:
    """Any page of the site carries the navigation; the column menu of a list page is read too."""
    site, _built = columns_site
    sources = tmp_path / "sources.toml"
    result = run_cli(project_env(sqlite_url, sources), "add", site.base + "/zzgz/tzgg/2.htm", "--all")
    assert result.returncode == 0, result.stderr
    loaded = load_sources(sources)
    assert sorted(loaded) == ["dxgzdt", "tzgg", "zzdt"]
    assert sources.read_text(encoding="utf-8").startswith("# Columns to crawl.")


def test_dry_run_prints_and_writes_nothing(columns_site: tuple[SiteServer, dict[str, Any]], sqlite_url: str,
                                           tmp_path: Path) -> None:
    site, built = columns_site
    sources = tmp_path / "sources.toml"
    header = HEADER.format(base=site.base)
    sources.write_text(header, encoding="utf-8")
    before = sources.stat()
    env = project_env(sqlite_url, sources)

    result = run_cli(env, "add", site.base + "/", "--all", "--dry-run")
    assert result.returncode == 0, result.stderr
    check_table(result.stdout, site, built, "would add")
    assert "dry run: 2 sources would be added" in result.stdout
    after = sources.stat()
    assert sources.read_text(encoding="utf-8") == header
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sources.toml"], "no temporary file left either"

    missing = tmp_path / "none" / "sources.toml"
    result = run_cli(project_env(sqlite_url, missing), "add", site.base + "/", "--all", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run: 3 sources would be added" in result.stdout
    assert not missing.exists() and not missing.parent.exists()

    single = run_cli(env, "add", site.base + "/zzgz/tzgg.htm", "--dry-run")
    assert single.returncode == 0, single.stderr
    assert "would add source 'tzgg'" in single.stdout and "通知公告" in single.stdout
    assert sources.read_text(encoding="utf-8") == header


@pytest.mark.parametrize(
    ("path", "args", "why"),
    [
        ("/lonely.htm", ("--all",), "no list column found in the navigation"),
        ("/", ("--all", "--name", "x"), "takes no --name or --column"),
        ("/", ("--all", "--column", "通知公告"), "takes no --name or --column"),
    ],
)
def test_add_all_refuses_in_one_line(path: str, args: tuple[str, ...], why: str,
                                     columns_site: tuple[SiteServer, dict[str, Any]], sqlite_url: str,
                                     tmp_path: Path) -> None:
    site, _built = columns_site
    sources = tmp_path / "sources.toml"
    result = run_cli(project_env(sqlite_url, sources), "add", site.base + path, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert why in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not sources.exists()


@pytest.mark.slow
def test_a_column_added_by_add_all_crawls(columns_site: tuple[SiteServer, dict[str, Any]], sqlite_url: str,
                                          tmp_path: Path) -> None:
    site, built = columns_site
    sources = tmp_path / "sources.toml"
    env = project_env(sqlite_url, sources)
    result = run_cli(env, "add", site.base + "/", "--all")
    assert result.returncode == 0, result.stderr

    crawl = scrapy_crawl("tzgg", env)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    run = runs(sqlite_url)[-1]
    assert run.status == "ok", run.error
    manifest = built["columns"]["tzgg"]
    assert_matches_manifest(articles(sqlite_url, "tzgg"), manifest, site.base)
    assert len(manifest["column"]["pages"]) == 3  # reverse-numbered list pages were followed


def test_a_source_whose_list_url_was_a_wrong_guess_is_recognised_by_its_column(
        columns_site: tuple[SiteServer, dict[str, Any]], sqlite_url: str, tmp_path: Path) -> None:
    """As the shipped sources.toml: a guessed list_url (discovery finds the real one) and the column's name."""
    site, _built = columns_site
    sources = tmp_path / "sources.toml"
    sources.write_text(f'[[source]]\nname = "dangxiao"\ntitle = "党校"\nlist_url = "{site.base}/dxgz/guess.htm"\n'
                       'column = "党校工作动态"\n', encoding="utf-8")
    result = run_cli(project_env(sqlite_url, sources), "add", site.base + "/", "--all")
    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout)[f"{site.base}/dxgz/dxgzdt.htm"][0] == "present"
    assert sorted(load_sources(sources)) == ["dangxiao", "tzgg", "zzdt"]


def test_two_columns_of_one_name_under_two_parents_are_both_added(sqlite_url: str, tmp_path: Path) -> None:
    root = tmp_path / "site"
    build_columns_site(root, columns=[
        ("党校工作", "dxgz.htm", "通知公告", "dxgz", "tzgg", 1015, (0, 8)),
        ("组织工作", "zzgz.htm", "通知公告", "zzgz", "tzgg", 1011, (8, 16)),
    ])
    sources = tmp_path / "sources.toml"
    with serve(root) as site:
        result = run_cli(project_env(sqlite_url, sources), "add", site.base + "/", "--all")
    assert result.returncode == 0, result.stderr
    loaded = load_sources(sources)
    assert sorted(loaded) == ["tzgg", "tzgg-2"]
    assert {s.list_url for s in loaded.values()} == {f"{site.base}/dxgz/tzgg.htm", f"{site.base}/zzgz/tzgg.htm"}
    assert {s.column for s in loaded.values()} == {"通知公告"}
    parents = ("党校工作", "组织工作")  # the same name twice: the titles say which column is which
    assert {s.title for s in loaded.values()} == {f"{SITE_NAME} · {parent} · 通知公告" for parent in parents}


@pytest.mark.slow
def test_every_column_added_by_add_all_is_crawled_and_published(columns_site: tuple[SiteServer, dict[str, Any]],
                                                                 sqlite_url: str, tmp_path: Path) -> None:
    """`add --all`, then `--once`: each column's articles stored; all.* and the index page show them all."""
    site, built = columns_site
    sources = tmp_path / "sources.toml"
    feeds = tmp_path / "feeds"
    env = project_env(sqlite_url, sources, feeds, FEED_MAX_ITEMS=100, PUBLIC_URL="http://feeds.test/")
    assert run_cli(env, "add", site.base + "/", "--all").returncode == 0
    loaded = load_sources(sources)
    assert sorted(loaded) == ["dxgzdt", "tzgg", "zzdt"]

    once = run_cli(env, "--once")
    assert once.returncode == 0, once.stderr[-3000:]
    links: set[str] = set()
    for name, manifest in built["columns"].items():
        assert_matches_manifest(articles(sqlite_url, name), manifest, site.base)
        links |= {x["url"] if x["external"] else site.base + x["url"] for x in manifest["articles"]}
    assert len(links) == 46
    combined = feedparser.parse((feeds / "all.atom").read_bytes())
    assert combined.bozo == 0 and {e.link for e in combined.entries} == links
    index = (feeds / "index.html").read_text(encoding="utf-8")
    for name, src in loaded.items():
        assert src.title in index and f"http://feeds.test/{name}.xml" in index
