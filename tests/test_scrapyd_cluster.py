"""CRAWL_BACKEND=scrapyd end to end: two real nodes (`python scheduler.py node`), PostgreSQL, replica sites
on two loopback addresses (127.0.0.1 and 127.0.0.2).

- `--once` stores what the local backend stores (same articles and fields, same feed bytes but build times),
  and each host's requests come from one node only (the nodes' job logs name every request);
- a node stopped before the run: its shard runs on the other node; a node killed mid-job: the run is
  failed, nothing is lost or duplicated, the next run completes it;
- politeness across the cluster: the servers' own clocks see no two requests to one host closer than
  CRAWL_DELAY.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from crawler.hashing import home
from db.models import Article, CrawlRun
from tests.conftest import fresh_pg_database
from tests.fixtures.cluster import HostSite, Node
from tests.fixtures.project import ROOT, factory, project_env, write_sources
from tests.fixtures.service import free_port, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HOSTS = ("127.0.0.1", "127.0.0.2")
REQUEST_RE = re.compile(r"Crawled \(\d+\) <GET (http://[^/:]+)")


@pytest.fixture
def second_pg(postgres_admin: str) -> Iterator[str]:
    """One more empty database (the local backend's, to compare with)."""
    with fresh_pg_database(postgres_admin) as url:
        yield url


@pytest.fixture
def sites(replica_build) -> Iterator[dict[str, HostSite]]:
    """Three sources on two hosts: a and b on 127.0.0.1 (two ports, one host), c on 127.0.0.2."""
    root, _manifest = replica_build
    served = {"a": HostSite(root, "127.0.0.1"), "b": HostSite(root, "127.0.0.1"), "c": HostSite(root, "127.0.0.2")}
    try:
        yield served
    finally:
        for site in served.values():
            site.stop()


def _sources_file(path: Path, sites: dict[str, HostSite]) -> Path:
    return write_sources(path, *[{"name": name, "title": f"column {name}", "list_url": f"{site.base}/dxgz/dxgzdt.htm",
                                  "seed_url": f"{site.base}/info/1015/2556.htm", "column": "党校工作动态"}
                                 for name, site in sites.items()])


def _split_ports() -> tuple[int, int]:
    """Two free ports whose node URLs give the two hosts different home nodes (both nodes get work)."""
    for _ in range(200):
        ports = free_port(), free_port()
        urls = [f"http://127.0.0.1:{p}/" for p in ports]
        if ports[0] != ports[1] and home(urls, HOSTS[0]) == urls[0] and home(urls, HOSTS[1]) == urls[1]:
            return ports
    raise AssertionError("no port pair splits the hosts")


class Cluster:
    def __init__(self, tmp_path: Path, db_url: str, sources: Path, **node_env: Any) -> None:
        self.tmp = tmp_path
        self.db_url = db_url
        self.sources = sources
        env = project_env(db_url, sources, LOG_LEVEL="DEBUG", **node_env)  # DEBUG: job logs list each request
        ports = _split_ports()
        self.nodes = [Node(tmp_path / f"node{i}", env, port) for i, port in enumerate(ports)]

    def __enter__(self) -> Cluster:
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for node in self.nodes:
            node.stop()

    @property
    def urls(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def env(self, feeds: Path, **extra: Any) -> dict[str, str]:
        return project_env(self.db_url, self.sources, feeds, CRAWL_BACKEND="scrapyd", SCRAPYD_URLS=self.urls, **extra)

    def hosts_by_node(self) -> dict[str, set[str]]:
        """host -> nodes whose crawl jobs requested it (from the job logs)."""
        seen: dict[str, set[str]] = {}
        for node in self.nodes:
            for log in node.job_logs().values():
                for m in REQUEST_RE.finditer(log):
                    seen.setdefault(m.group(1).removeprefix("http://"), set()).add(node.url)
        return seen


def _once(env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "scheduler.py", "--once"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


ARTICLE_FIELDS = ("url", "newsid", "external", "status", "title", "list_title", "published_at", "author", "origin",
                  "editor", "body_html", "body_text", "images", "content_hash", "etag", "last_modified",
                  "fetch_error", "removed_at")


def _stored(db_url: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    from sqlalchemy.orm import selectinload

    with factory(db_url)() as s:
        rows = s.scalars(select(Article).options(selectinload(Article.attachments), selectinload(Article.source)))
        return {(a.source.name, a.url): (*(getattr(a, f) for f in ARTICLE_FIELDS),
                                         [(t.position, t.name, t.url, t.mime_type, t.in_body) for t in a.attachments])
                for a in rows}


BUILD_TIMES = [
    re.compile(rb"<lastBuildDate>[^<]*</lastBuildDate>"),
    re.compile(rb"(<feed[^>]*>(?:(?!<entry).)*?<updated>)[^<]*(</updated>)", re.S),
    re.compile(rb"<generator[^>]*>[^<]*</generator>"),
    re.compile(b"(Last crawl: )[0-9: -]+()"),  # index.html: when the last crawl ended
]


PAGE_LINK = re.compile(rb"\b([a-z0-9][a-z0-9_-]*)/([0-9]+)\.html")


def _feed_bytes(feeds: Path, db_url: str) -> dict[str, bytes]:
    """Published feeds and article pages, build times blanked; article pages (named by database id, which
    depends on the order pages arrived in) named by their article's URL instead."""
    with factory(db_url)() as s:
        urls = {(a.source.name.encode(), str(a.id).encode()): a.url.encode() for a in s.scalars(select(Article))}

    def by_url(m: re.Match[bytes]) -> bytes:
        url = urls.get((m.group(1), m.group(2)))
        return m.group(1) + b"/[" + url + b"].html" if url else m.group(0)

    out = {}
    for path in sorted(feeds.rglob("*")):
        if path.parent == feeds and path.suffix == ".html":
            continue  # pages for people chart each crawl run's time and duration, which differ between runs
        if path.is_file() and not path.name.startswith("."):
            data = PAGE_LINK.sub(by_url, path.read_bytes())
            for pattern in BUILD_TIMES:
                data = pattern.sub(lambda m: m.group(1) + m.group(2) if m.lastindex else b"", data)
            out[PAGE_LINK.sub(by_url, str(path.relative_to(feeds)).encode()).decode()] = data
    return out


def test_once_on_two_nodes_stores_what_local_stores(tmp_path: Path, pg_url: str, second_pg: str, sites) -> None:
    sources = _sources_file(tmp_path / "sources.toml", sites)
    local = _once(project_env(second_pg, sources, tmp_path / "feeds-local"))
    assert local.returncode == 0, local.stderr[-3000:]
    for site in sites.values():
        site.reset()

    with Cluster(tmp_path, pg_url, sources) as cluster:
        result = _once(cluster.env(tmp_path / "feeds-cluster"))
        assert result.returncode == 0, result.stderr[-3000:]
        by_host = cluster.hosts_by_node()

    stored = _stored(pg_url)
    assert len(stored) == 3 * 46
    assert stored == _stored(second_pg)
    local_feeds = _feed_bytes(tmp_path / "feeds-local", second_pg)
    cluster_feeds = _feed_bytes(tmp_path / "feeds-cluster", pg_url)
    assert sorted(local_feeds) == sorted(cluster_feeds)
    for name in local_feeds:
        assert local_feeds[name] == cluster_feeds[name], name
    # each host's requests came from one node, and the two hosts from different nodes
    assert set(by_host) == set(HOSTS), by_host
    assert all(len(nodes) == 1 for nodes in by_host.values()), by_host
    assert by_host[HOSTS[0]] != by_host[HOSTS[1]]
    assert {h.host for s in sites.values() for h in s.hits} == set(HOSTS)


def test_stopped_node_shard_runs_on_the_other(tmp_path: Path, pg_url: str, sites) -> None:
    sources = _sources_file(tmp_path / "sources.toml", sites)
    with Cluster(tmp_path, pg_url, sources) as cluster:
        down, up = cluster.nodes
        down.stop()
        result = _once(cluster.env(tmp_path / "feeds"))
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"node {down.url} did not take the job" in result.stderr
        by_host = cluster.hosts_by_node()
    assert by_host == {h: {up.url} for h in HOSTS}
    assert len(_stored(pg_url)) == 3 * 46


def _fetched(db_url: str, source: str) -> int:
    """Articles of ``source`` whose page has been fetched and stored (list entries start 'pending')."""
    return sum(1 for (name, _url), row in _stored(db_url).items() if name == source and row[3] == "ok")


def _runs(db_url: str) -> list[CrawlRun]:
    with factory(db_url)() as s:
        return list(s.scalars(select(CrawlRun).order_by(CrawlRun.id)))


def test_node_killed_mid_job_fails_the_run_and_the_next_run_completes(tmp_path: Path, pg_url: str,
                                                                      sites) -> None:
    sources = _sources_file(tmp_path / "sources.toml", {"c": sites["c"], "a": sites["a"]})
    with Cluster(tmp_path, pg_url, sources, CRAWL_DELAY="0.05") as cluster:
        victim = next(n for n in cluster.nodes if home([m.url for m in cluster.nodes], HOSTS[1]) == n.url)
        env = cluster.env(tmp_path / "feeds")
        with open(tmp_path / "once.log", "wb") as log:
            once = subprocess.Popen([sys.executable, "scheduler.py", "--once"], cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        try:
            # kill the node when its crawl of c has stored some articles but not all
            wait_for(lambda: 5 <= _fetched(pg_url, "c") < 40, 120, "c half crawled", interval=0.05)
            victim.stop(signal.SIGKILL)
            assert once.wait(120) == 1
        finally:
            if once.poll() is None:
                once.kill()
        out = (tmp_path / "once.log").read_text()
        runs = _runs(pg_url)
        # c's run failed: the crawl got SIGTERM with its node (PR_SET_PDEATHSIG) and recorded the shutdown, or
        # the scheduler recorded the job as vanished; a's run, on the other node, is unaffected
        assert sorted(r.status for r in runs) == ["failed", "ok"], [(r.status, r.error) for r in runs]
        assert "c: crawl failed" in out and "a: crawl failed" not in out
        assert f"{victim.url} unreachable" in out or "vanished" in out, out[-3000:]
        assert 5 <= _fetched(pg_url, "c") < 46

        # the next run (victim still down) goes to the other node and completes the work
        result = _once(env)
        assert result.returncode == 0, result.stderr[-3000:]
    stored = _stored(pg_url)
    assert len(stored) == 2 * 46 and _fetched(pg_url, "a") == _fetched(pg_url, "c") == 46
    with factory(pg_url)() as s:  # no article twice (by source and URL)
        assert s.execute(text("select count(*) from (select source_id, url from articles group by source_id, url "
                              "having count(*) > 1) d")).scalar() == 0
    assert not [r for r in _runs(pg_url) if r.status == "running"]


def test_politeness_across_the_cluster(tmp_path: Path, pg_url: str) -> None:
    """Two sources on 127.0.0.1 (two ports: one host for Scrapy) and one on 127.0.0.2, on two nodes.

    The slack covers when the servers' threads get to log a request on this shared 2-CPU machine (under
    load up to ~30 ms); a second node crawling the same host would show gaps near 0.
    """
    from tests.fixtures.site import BASE_ARTICLES, build_site

    delay, slack = 0.3, 0.05
    root = tmp_path / "small-site"
    build_site(root, articles=BASE_ARTICLES[:12])
    sites = {"a": HostSite(root, "127.0.0.1"), "b": HostSite(root, "127.0.0.1"), "c": HostSite(root, "127.0.0.2")}
    try:
        sources = _sources_file(tmp_path / "sources.toml", sites)
        with Cluster(tmp_path, pg_url, sources, CRAWL_DELAY=str(delay)) as cluster:
            result = _once(cluster.env(tmp_path / "feeds", CRAWL_DELAY=str(delay)))
            assert result.returncode == 0, result.stderr[-3000:]
            by_host = cluster.hosts_by_node()
        assert all(len(nodes) == 1 for nodes in by_host.values()) and len(by_host) == 2, by_host
        for host in HOSTS:
            times = sorted(h.at for s in sites.values() for h in s.hits if h.host == host)
            assert len(times) > 10
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            assert min(gaps) >= delay - slack, (host, sorted(gaps)[:5])
    finally:
        for site in sites.values():
            site.stop()


def test_status_auth_and_metrics(tmp_path: Path, pg_url: str, sites) -> None:
    from tests.fixtures.service import Service

    secret = "pw-Secret-9"
    auth = {"SCRAPYD_USERNAME": "crawl", "SCRAPYD_PASSWORD": secret}
    sources = _sources_file(tmp_path / "sources.toml", {"c": sites["c"]})
    with Cluster(tmp_path, pg_url, sources, **auth) as cluster:
        first, second = cluster.nodes
        env = cluster.env(tmp_path / "feeds", HTTP_PORT=free_port(), **auth)

        def status(**extra: str) -> str:
            proc = subprocess.run([sys.executable, "scheduler.py", "status"], cwd=ROOT, env={**env, **extra},
                                  capture_output=True, text=True, timeout=60, check=False)
            assert proc.returncode == 0, proc.stderr
            assert secret not in proc.stdout + proc.stderr
            return proc.stdout

        assert f"node {first.url}: DOWN ({first.url} answered HTTP 401" in status(SCRAPYD_PASSWORD="wrong")
        first.stop()
        out = status()
        assert "backend: scrapyd (project ghu-feeds, 2 nodes)" in out
        assert f"node {first.url}: DOWN" in out and f"node {second.url}: up" in out

        service = Service(env, tmp_path / "service.log")
        try:
            wanted = f'ghu_crawl_jobs_total{{node="{second.url}",result="ok"}} 1'
            wait_for(lambda: wanted in service.get("/metrics")[2].decode(), 120, "a crawl job in /metrics")
        finally:
            service.stop()
        assert secret not in service.log()
        assert all(secret not in node.log() for node in cluster.nodes)


@pytest.fixture
def slow_site(replica_build) -> Iterator[HostSite]:
    """The replica on 127.0.0.2, one second per response: a crawl that lasts."""
    site = HostSite(replica_build[0], "127.0.0.2", delay=1.0)
    try:
        yield site
    finally:
        site.stop()


def test_job_past_crawl_timeout_is_cancelled(tmp_path: Path, pg_url: str, replica_build) -> None:
    site = HostSite(replica_build[0], "127.0.0.2", delay=3.0)  # a crawl of a minute or more
    try:
        sources = _sources_file(tmp_path / "sources.toml", {"c": site})
        with Cluster(tmp_path, pg_url, sources) as cluster:
            result = _once(cluster.env(tmp_path / "feeds", CRAWL_TIMEOUT="8"), timeout=120)
            jobs = [node.api("listjobs.json?project=ghu-feeds") for node in cluster.nodes]
    finally:
        site.stop()
    assert result.returncode == 1, result.stderr[-3000:]
    assert "cancelling job" in result.stderr and "timed out after 8 s (CRAWL_TIMEOUT)" in result.stderr
    assert [r.status for r in _runs(pg_url)] == ["failed"]
    assert not [j for node in jobs for j in node["running"] + node["pending"]]


def test_job_vanished_when_its_node_restarts(tmp_path: Path, pg_url: str, slow_site: HostSite) -> None:
    sources = _sources_file(tmp_path / "sources.toml", {"c": slow_site})
    with Cluster(tmp_path, pg_url, sources) as cluster:
        node = next(n for n in cluster.nodes if home([m.url for m in cluster.nodes], HOSTS[1]) == n.url)
        with open(tmp_path / "once.log", "wb") as log:
            once = subprocess.Popen([sys.executable, "scheduler.py", "--once"], cwd=ROOT,
                                    env=cluster.env(tmp_path / "feeds"), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: node.api("listjobs.json?project=ghu-feeds")["running"], 60, "the job running")
            node.stop()
            node.start()  # same port and directory: the node forgot the job
            assert once.wait(120) == 1
        finally:
            if once.poll() is None:
                once.kill()
    out = (tmp_path / "once.log").read_text()
    assert "vanished from node" in out, out[-3000:]
    assert [r.status for r in _runs(pg_url)] == ["failed"]
