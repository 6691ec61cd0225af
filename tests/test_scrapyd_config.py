"""CRAWL_BACKEND / SCRAPYD_* validation (every command exits 2 with one line) and rendezvous hashing."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from crawler.hashing import home, rank
from crawler.shards import host_of
from crawler.sources import Source
from settings import ConfigError, load_config
from tests.fixtures.project import ROOT

PG = "postgresql+psycopg://postgres@127.0.0.1:54329/postgres"


def test_defaults_to_local() -> None:
    cfg = load_config({})
    assert cfg.CRAWL_BACKEND == "local" and cfg.SCRAPYD_URLS == () and cfg.SCRAPYD_PROJECT == "ghu-feeds"


def test_scrapyd_urls_normalized_and_password_not_in_repr() -> None:
    cfg = load_config({"CRAWL_BACKEND": "Scrapyd", "DATABASE_URL": PG, "SCRAPYD_URLS": " http://a:6800 ,http://b/x/ ",
                       "SCRAPYD_USERNAME": "ops", "SCRAPYD_PASSWORD": "s3cr3t-pw"})
    assert cfg.CRAWL_BACKEND == "scrapyd"
    assert cfg.SCRAPYD_URLS == ("http://a:6800/", "http://b/x/")
    assert "s3cr3t-pw" not in repr(cfg) and "ops" not in repr(cfg)


@pytest.mark.parametrize(("env", "needle"), [
    ({"CRAWL_BACKEND": "celery"}, "CRAWL_BACKEND must be one of"),
    ({"CRAWL_BACKEND": "scrapyd", "DATABASE_URL": PG}, "needs SCRAPYD_URLS"),
    ({"CRAWL_BACKEND": "scrapyd", "SCRAPYD_URLS": "http://127.0.0.1:6800"}, "SQLite"),
    ({"CRAWL_BACKEND": "scrapyd", "DATABASE_URL": PG, "SCRAPYD_URLS": "127.0.0.1:6800"}, "not an http"),
    ({"CRAWL_BACKEND": "scrapyd", "DATABASE_URL": PG, "SCRAPYD_URLS": "http://a/,http://a"}, "twice"),
    ({"CRAWL_BACKEND": "scrapyd", "DATABASE_URL": PG, "SCRAPYD_URLS": "http://u:p@a/"}, "credentials"),
    ({"SCRAPYD_USERNAME": "ops"}, "set together"),
    ({"SCRAPYD_PASSWORD": "pw"}, "set together"),
    ({"SCRAPYD_USERNAME": "a:b", "SCRAPYD_PASSWORD": "pw"}, "':'"),
    ({"SCRAPYD_PROJECT": "has space"}, "SCRAPYD_PROJECT"),
])
def test_invalid_combinations(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        load_config(env)
    assert needle in str(info.value)


@pytest.mark.parametrize("command", [[], ["--once"], ["status"], ["publish"], ["node", "--port", "0"]])
def test_every_command_exits_2_with_one_line(command: list[str], tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "CRAWL_BACKEND": "scrapyd", "SCRAPYD_URLS": "http://127.0.0.1:9/",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SCRAPYD_PASSWORD": "pw-never-shown",
           "SCRAPYD_USERNAME": "ops"}
    proc = subprocess.run([sys.executable, "scheduler.py", *command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "SQLite" in lines[0], proc.stderr
    assert "pw-never-shown" not in proc.stderr + proc.stdout
    assert not (tmp_path / "x.db").exists()


NODES = [f"http://10.0.0.{i}:6800/" for i in range(1, 6)]
HOSTS = [f"www{i}.example.edu.cn" for i in range(2000)]


def test_rank_is_stable_and_a_permutation() -> None:
    for host in HOSTS[:50]:
        order = rank(NODES, host)
        assert sorted(order) == sorted(NODES)
        assert order == rank(list(reversed(NODES)), host)  # independent of the configured order
    assert home(NODES, "zzb.ghu.edu.cn") == home(NODES[::-1], "zzb.ghu.edu.cn")
    with pytest.raises(ValueError):
        home([], "x")


def test_balanced_and_minimal_movement() -> None:
    counts = Counter(home(NODES, h) for h in HOSTS)
    assert len(counts) == 5 and min(counts.values()) > 2000 / 5 * 0.8
    # removing a node moves only its own hosts, each to its next node in hash order
    gone = NODES[2]
    rest = [n for n in NODES if n != gone]
    for h in HOSTS:
        before = rank(NODES, h)
        after = home(rest, h)
        assert after == (before[1] if before[0] == gone else before[0])
    # adding a node takes about 1/6 of the hosts, all of them to the new node
    more = [*NODES, "http://10.0.0.9:6800/"]
    moved = [h for h in HOSTS if home(more, h) != home(NODES, h)]
    assert all(home(more, h) == more[-1] for h in moved)
    assert 2000 / 6 * 0.7 < len(moved) < 2000 / 6 * 1.3


def _src(name: str, host: str) -> Source:
    return Source(name=name, title=name, list_url=f"http://{host}:8000/{name}/list.htm")


def test_backend_shards_by_home_node() -> None:
    from crawler.scrapyd_backend import ScrapydBackend

    cfg = load_config({"CRAWL_BACKEND": "scrapyd", "DATABASE_URL": PG, "SCRAPYD_URLS": ",".join(NODES)})
    backend = ScrapydBackend(cfg, factory=None)  # type: ignore[arg-type] - sharding touches no database
    sources = [_src(f"s{i}", f"h{i % 40}.example.edu.cn") for i in range(200)]
    for slots in (1, 5, 12):
        shards = backend.shards(sources, slots)
        assert sorted(s.name for shard in shards for s in shard) == sorted(s.name for s in sources)
        for shard in shards:  # one home node per shard, and it is the first node tried
            assert len({home(NODES, host_of(s)) for s in shard}) == 1
            assert backend.node_order(shard)[0] == home(NODES, host_of(shard[0]))
        hosts = [{host_of(s) for s in shard} for shard in shards]
        assert sum(len(h) for h in hosts) == len(set().union(*hosts)) == 40  # a host in one shard only
        assert len(shards) >= min(slots, 5)
    assert backend.shards([], 4) == []


def test_source_table_round_trip() -> None:
    from crawler.scrapyd_backend import source_table
    from crawler.sources import source_from_table

    table = {"name": "x", "title": "X 栏目", "list_url": "http://a/l.htm", "seed_url": "http://a/i/1.htm",
             "column": "党校工作动态", "selectors": {"body": "div.v_news_content"}, "domains": ["www.a.cn"]}
    src = source_from_table(table)
    assert source_from_table(source_table(src)) == src


def test_big_shards_split_to_fit_the_command_line() -> None:
    import json

    from crawler.scrapyd_backend import MAX_TABLES_BYTES, ScrapydBackend, source_table

    cfg = load_config({"CRAWL_BACKEND": "scrapyd", "DATABASE_URL": PG, "SCRAPYD_URLS": NODES[0]})
    sources = [Source(name=f"s{i}", title="党校工作动态" * 4, list_url=f"http://h{i % 300}.example.edu.cn/dxgz/{i}.htm",
                      column="党校工作动态") for i in range(3000)]
    shards = ScrapydBackend(cfg, factory=None).shards(sources, 1)  # type: ignore[arg-type]
    assert len(shards) > 1 and sum(len(s) for s in shards) == 3000
    for shard in shards:
        assert len(json.dumps([source_table(s) for s in shard], ensure_ascii=False).encode()) < MAX_TABLES_BYTES * 1.2
