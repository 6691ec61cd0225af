"""`python scheduler.py node` starts a real Scrapyd that can run this project's spider, and stops cleanly."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.fixtures.cluster import Node
from tests.fixtures.project import project_env, write_sources

pytestmark = pytest.mark.postgres


def test_node_starts_lists_the_spider_and_stops_on_sigterm(tmp_path: Path, pg_url: str) -> None:
    env = project_env(pg_url, write_sources(tmp_path / "sources.toml", {"name": "x", "list_url": "http://127.0.0.1:9/"}))
    node = Node(tmp_path / "node", env)
    try:
        node.start()
        assert node.api("daemonstatus.json")["running"] == 0
        assert node.api("listprojects.json")["projects"] == ["ghu-feeds"]
        assert "column" in node.api("listspiders.json?project=ghu-feeds")["spiders"]  # runs `scrapy list` there
        code = node.stop(signal.SIGTERM)
    finally:
        node.stop(signal.SIGKILL)
    # twistd shuts down cleanly, then re-raises the signal that stopped it (systemd counts that as a clean exit)
    assert code in (0, -signal.SIGTERM), node.log()[-2000:]
    assert "Server Shut Down." in node.log()
    cfg = (tmp_path / "node" / "scrapy.cfg").read_text()
    assert "runner = crawler.scrapyd_runner" in cfg and "ghu-feeds = settings" in cfg
    assert (tmp_path / "node" / "dbs" / "ghu-feeds.db").exists()  # the job queue lives under --dir
    assert not list(tmp_path.glob("node/*.pid")) and not Path("twistd.pid").exists()


def test_node_restarts_after_sigkill_on_the_same_dir(tmp_path: Path, pg_url: str) -> None:
    env = project_env(pg_url, tmp_path / "none.toml")
    node = Node(tmp_path / "node", env)
    try:
        node.start()
        assert node.stop(signal.SIGKILL) != 0
        node.start()  # no stale pid file, no leftover lock
        assert node.api("listprojects.json")["projects"] == ["ghu-feeds"]
    finally:
        assert node.stop() in (0, -signal.SIGTERM)


def test_node_refuses_sqlite(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.fixtures.project import ROOT

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    proc = subprocess.run([sys.executable, "scheduler.py", "node", "--dir", str(tmp_path / "n")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "PostgreSQL" in proc.stderr.upper() \
        or "postgresql" in proc.stderr
    assert not (tmp_path / "n").exists()
