"""Many sources on few hosts (issue 10): politeness per host, crawls side by side, one cheap idle poll.

Three columns on one replica host (127.0.0.1) and one on a second host (127.0.0.2), each host with its own
server logging arrival and completion of every request (tests/fixtures/hosts.py). The two hosts carry about
the same number of requests, so a run that crawls the hosts side by side ends near one host's bound
(requests × delay), and one that crawls the sources one after another near the sum of both.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.hosts import (
    ColumnSpec,
    HostServer,
    TimedHit,
    build_columns,
    by_host,
    politeness_violations,
    serve_hosts,
    span,
)
from tests.fixtures.project import ROOT, articles, project_env, write_sources
from tests.fixtures.service import Service, free_port, wait_for
from tests.fixtures.site import BASE_ARTICLES

pytestmark = pytest.mark.slow

DELAY = 0.3
HOST_A, HOST_B = "127.0.0.1", "127.0.0.2"
# 12 articles on 2 list pages each on host A; 36 articles on 5 list pages on host B: ~41 requests per host
COLUMNS = {
    HOST_A: [ColumnSpec("dxgzdt", "党校工作动态", 1015, BASE_ARTICLES[0:12]),
             ColumnSpec("tzgg", "通知公告", 1016, BASE_ARTICLES[12:24], list_dir="tzgg"),
             ColumnSpec("xxyd", "学习园地", 1017, BASE_ARTICLES[24:36], list_dir="xxyd")],
    HOST_B: [ColumnSpec("djdt", "党建动态", 1020, BASE_ARTICLES[0:36], list_dir="djgz")],
}


@dataclass
class Sites:
    servers: dict[str, HostServer]  # by host
    sources: Path
    manifests: dict[str, dict[str, Any]]  # by source name
    host_of: dict[str, str]  # source name -> host

    def hits(self) -> list[TimedHit]:
        return [hit for server in self.servers.values() for hit in server.take()]


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[Sites]:
    roots: dict[str, Path] = {}
    manifests: dict[str, dict[str, Any]] = {}
    for host, specs in COLUMNS.items():
        roots[host] = tmp_path / f"site-{host}"
        manifests.update(build_columns(roots[host], specs, page_size=8))
    with serve_hosts((root, host) for host, root in roots.items()) as servers:
        by_name = {s.host: s for s in servers}
        host_of = {spec.slug: host for host, specs in COLUMNS.items() for spec in specs}
        sources = write_sources(tmp_path / "sources.toml", *(
            {"name": spec.slug, "title": spec.column, "list_url": by_name[host].base + spec.list_path,
             "column": spec.column}
            for host, specs in COLUMNS.items() for spec in specs))
        yield Sites(by_name, sources, manifests, host_of)


def _env(tmp_path: Path, sites: Sites, **extra: object) -> dict[str, str]:
    return project_env(f"sqlite:///{tmp_path / 'ghu.db'}", sites.sources, tmp_path / "feeds", **extra)


def _all_ok(service: Service, names: list[str]) -> bool:
    code, health = service.health()
    return all((health["sources"].get(name) or {}).get("last_result") == "ok" for name in names)


def test_service_crawls_hosts_side_by_side_and_each_politely(sites: Sites, tmp_path: Path) -> None:
    env = _env(tmp_path, sites, CRAWL_DELAY=DELAY, HTTP_PORT=free_port())
    names = list(sites.host_of)
    service = Service(env, tmp_path / "service.log")
    try:
        wait_for(lambda: _all_ok(service, names), 180, "all four columns crawled ok", interval=0.5)
    finally:
        code, _ = service.stop()
    log = service.log()
    assert code == 0, log[-3000:]
    for name in names:  # every column complete
        stored = [a for a in articles(env["DATABASE_URL"], name) if a.status == "ok" and not a.external]
        assert len(stored) == sites.manifests[name]["column"]["local_articles"], (name, log[-3000:])

    hits = sites.hits()
    # slack: Scrapy spaces the requests it dispatches; a busy reactor writing one late shortens the next gap
    # as the server sees it by a few ms
    assert politeness_violations(hits, DELAY, slack=0.01) == []
    per_host = {host: len(seq) for host, seq in by_host(hits).items()}
    assert set(per_host) == {HOST_A, HOST_B}
    total, busiest, serial = span(hits), max(per_host.values()) * DELAY, len(hits) * DELAY
    # side by side: close to the busiest host's bound (AutoThrottle starts at 1 s and eases down to the
    # delay), not the sum of all requests × delay
    assert total < 0.8 * serial, f"run took {total:.1f} s; busiest host {busiest:.1f} s, all {serial:.1f} s"


def test_idle_once_costs_one_conditional_request_per_source_and_one_robots_per_host(
        sites: Sites, tmp_path: Path) -> None:
    env = _env(tmp_path, sites, CRAWL_DELAY=0)

    def once() -> None:
        done = subprocess.run([sys.executable, "scheduler.py", "--once"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    once()
    first = sites.hits()
    assert sum(h.status == 200 for h in first) > 50  # the backfill
    once()
    hits = sites.hits()

    assert [h for h in hits if h.status == 200] == []
    robots = Counter(h.host for h in hits if h.path == "/robots.txt")
    assert robots == {HOST_A: 1, HOST_B: 1}
    polls = [h for h in hits if h.path != "/robots.txt"]
    expected = sorted((sites.host_of[spec.slug], spec.list_path) for specs in COLUMNS.values() for spec in specs)
    assert sorted((h.host, h.path) for h in polls) == expected
    assert all(h.conditional and h.status == 304 for h in polls), polls
