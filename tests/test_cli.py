"""The CLI contract: `--once` exit codes, `status`, `publish`, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.project import ROOT, project_env, runs, scrapy_crawl, write_sources
from tests.fixtures.service import free_port
from tests.fixtures.site import serve


def _run(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "scheduler.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _env(tmp_path: Path, base: str, **extra: object) -> dict[str, str]:
    sources = write_sources(tmp_path / "sources.toml", {
        "name": "dxgzdt", "title": "党校工作动态", "list_url": f"{base}/dxgz/dxgzdt.htm"})
    return project_env(f"sqlite:///{tmp_path / 'ghu.db'}", sources, tmp_path / "feeds", **extra)


@pytest.mark.slow
def test_once_publishes_and_exits_0_then_status_shows_the_run(replica_build, tmp_path: Path) -> None:
    root, _ = replica_build
    with serve(root) as site:
        env = _env(tmp_path, site.base)
        result = _run(env, "--once")
        assert result.returncode == 0, result.stderr[-3000:]
    for name in ("dxgzdt.xml", "dxgzdt.atom", "dxgzdt.json", "index.html", "opml.xml"):
        assert (tmp_path / "feeds" / name).is_file(), name
    status = _run(env, "status")
    assert status.returncode == 0, status.stderr
    header, row = status.stdout.splitlines()[:2]
    assert header.split()[:2] == ["SOURCE", "ARTICLES"]
    assert row.split()[:2] == ["dxgzdt", "46"]
    assert " ok " in row
    published = _run(env, "publish")
    assert published.returncode == 0, published.stderr


@pytest.mark.slow
def test_service_log_is_our_lines_and_debug_brings_scrapys_back(replica_build, tmp_path: Path) -> None:
    """A scheduled crawl logs a few lines of ours, not Scrapy's ~95 lines of inventory and stats."""
    root, _ = replica_build
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with serve(root) as site:
        quiet = _run(_env(tmp_path / "a", site.base), "--once")
        loud = _run(_env(tmp_path / "b", site.base, LOG_LEVEL="DEBUG"), "--once")
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr[-3000:] + loud.stderr[-3000:]
    lines = quiet.stderr.splitlines()
    assert any("crawl dxgzdt: ok in" in line for line in lines), quiet.stderr
    assert any("[feeds.publish] INFO: published" in line for line in lines), quiet.stderr
    for noise in ("Dumping Scrapy stats", "Enabled downloader middlewares", "Overridden settings", "'lxml':"):
        assert noise not in quiet.stderr
        assert noise in loud.stderr
    assert len(lines) < 20, quiet.stderr


@pytest.mark.slow
def test_once_exits_1_when_the_list_is_unreachable(tmp_path: Path) -> None:
    env = _env(tmp_path, f"http://127.0.0.1:{free_port()}")
    result = _run(env, "--once")
    assert result.returncode == 1
    assert "dxgzdt: crawl failed" in result.stderr
    assert runs(env["DATABASE_URL"])[-1].status == "failed"
    status = _run(env, "status")
    assert "failed" in status.stdout


@pytest.mark.slow
def test_once_exits_1_on_template_drift_and_keeps_stored_articles(replica_copy, tmp_path: Path) -> None:
    root, _ = replica_copy
    with serve(root) as site:
        env = _env(tmp_path, site.base)
        assert _run(env, "--once").returncode == 0
        before = (tmp_path / "feeds" / "dxgzdt.xml").read_bytes()
        page = root / "dxgz" / "dxgzdt.htm"
        page.write_text("<html><body><div class='new-template'>改版了</div></body></html>", encoding="utf-8")
        result = _run(env, "--once")
    assert result.returncode == 1
    run = runs(env["DATABASE_URL"])[-1]
    assert run.status == "failed" and "no entries" in (run.error or "")
    assert (tmp_path / "feeds" / "dxgzdt.xml").read_bytes() == before


def test_scrapy_crawl_command_needs_a_known_source(tmp_path: Path) -> None:
    env = _env(tmp_path, "http://127.0.0.1:9")
    result = scrapy_crawl("nosuchsource", env, 120)
    assert result.returncode != 0
    assert "nosuchsource" in result.stderr


@pytest.mark.slow
def test_installed_command_and_scrapy_crawl_of_all_sources(replica_build, tmp_path: Path) -> None:
    """`pip install` gives a `ghu-feeds` command doing what `python scheduler.py` does, from any folder;
    `scrapy crawl column -a sources=all` crawls every source in one process."""
    command = Path(sys.executable).with_name("ghu-feeds")
    assert command.is_file(), "pip install -e . puts ghu-feeds beside the interpreter"
    root, _ = replica_build
    with serve(root) as site:
        sources = write_sources(tmp_path / "sources.toml",
                                {"name": "one", "title": "一", "list_url": f"{site.base}/dxgz/dxgzdt.htm"},
                                {"name": "two", "title": "二", "seed_url": f"{site.base}/info/1015/2556.htm",
                                 "column": "党校工作动态"})
        env = project_env(f"sqlite:///{tmp_path / 'ghu.db'}", sources, tmp_path / "feeds")
        crawl = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "column", "-a", "sources=all"], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=180, check=False)
        assert crawl.returncode == 0, crawl.stderr[-3000:]
        assert [r.status for r in runs(env["DATABASE_URL"])] == ["ok", "ok"]
        env.pop("PYTHONPATH")
        status = subprocess.run([str(command), "status"], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=120, check=False)
    assert status.returncode == 0, status.stderr
    table = status.stdout.split("\n\n")[0]  # then a blank line and the crawl backend
    rows = {line.split()[0]: line.split()[1] for line in table.splitlines()[1:]}
    assert rows == {"one": "46", "two": "46"}
    help_text = subprocess.run([str(command), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert help_text.returncode == 0 and "usage: ghu-feeds" in help_text.stdout


@pytest.mark.parametrize(("var", "value"), [
    ("HTTP_PORT", "eighty"), ("HTTP_PORT", "70000"), ("FEED_MAX_ITEMS", "0"), ("CRAWL_DELAY", "-1"),
    ("LOG_LEVEL", "LOUD"), ("PUBLIC_URL", "ftp://x/"), ("CRAWL_INTERVAL", "1.5"), ("DATABASE_URL", "nonsense"),
])
def test_invalid_configuration_is_one_line_and_exit_2(tmp_path: Path, var: str, value: str) -> None:
    env = _env(tmp_path, "http://127.0.0.1:9", **{var: value})
    for args in ([], ["--once"], ["status"]):
        result = _run(env, *args, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and var in lines[0], result.stderr


@pytest.mark.parametrize(("content", "problem"), [
    (None, "not found"),
    ("[[source]\nname = 'x'", "invalid TOML"),
    ("title = 'no sources'", "no [[source]]"),
    ("[[source]]\nname = 'Bad Name'\nlist_url = 'http://x/'", "name must be"),
    ("[[source]]\nname = 'a'\nlist_url = 'not a url'", "list_url"),
    ("[[source]]\nname = 'a'\nlist_url = 'http://x/'\nschedule = 'often'", "schedule"),
    ("[[source]]\nname = 'a'\nlist_url = 'http://x/'\n[[source]]\nname = 'a'\nlist_url = 'http://y/'", "duplicate"),
])
def test_bad_sources_file_is_one_line_naming_the_file_and_exit_2(tmp_path: Path, content: str | None,
                                                                 problem: str) -> None:
    env = _env(tmp_path, "http://127.0.0.1:9")
    path = tmp_path / "bad-sources.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    env["SOURCES_FILE"] = str(path)
    result = _run(env, "--once", timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and problem in lines[0]
