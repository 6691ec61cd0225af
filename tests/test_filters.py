"""RSSHub filter parameters (feeds.filters) on real published feeds, directly and through the server."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from feeds import publish
from feeds.filters import FilterError, apply, feed_kind, parse_query
from feeds.server import FeedServer
from tests.test_feeds_support import WECHAT_URL, info_url, make_config, new_database, parse, seed_zzb
from tests.test_server_support import request

# seed_zzb's visible articles, newest first (titles abbreviated in comments).
ALL = [info_url(2550), WECHAT_URL, info_url(2542), info_url(2541), info_url(2530)]


@pytest.fixture(scope="module")
def feeds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("filters")
    factory = new_database(base)
    seed_zzb(factory)
    root = base / "feeds"
    publish(factory, make_config(root))
    return root


def links(kind: str, data: bytes) -> list[str]:
    if kind == "json":
        return [item["url"] for item in json.loads(data)["items"]]
    return [e.link for e in parse(data).entries]


def run(feeds_dir: Path, name: str, query: str, now: float | None = None) -> list[str]:
    kind = feed_kind("/" + name)
    assert kind is not None
    spec = parse_query(query.encode())
    assert spec is not None
    return links(kind, apply(spec, kind, (feeds_dir / name).read_bytes(), now))


@pytest.mark.parametrize("name", ["dxgzdt.xml", "dxgzdt.atom", "dxgzdt.json"])
def test_every_parameter_in_every_format(feeds_dir: Path, name: str) -> None:
    q = quote
    assert run(feeds_dir, name, "limit=2") == ALL[:2]
    assert run(feeds_dir, name, "limit=99") == ALL
    assert run(feeds_dir, name, f"filter={q('开班|分组')}") == [info_url(2542), info_url(2541)]
    assert run(feeds_dir, name, f"filter={q('报告厅')}") == [info_url(2541)]  # only in the description
    assert run(feeds_dir, name, f"filter_title={q('报告厅')}") == []
    assert run(feeds_dir, name, f"filter_title={q('^【微信】')}") == [WECHAT_URL]
    assert run(feeds_dir, name, f"filter_description={q('积极分子')}") == [info_url(2530)]
    assert run(feeds_dir, name, f"filter_author={q('办公室$')}") == [info_url(2541)]
    assert run(feeds_dir, name, f"filterout={q('培训班')}") == [WECHAT_URL]
    assert run(feeds_dir, name, f"filterout_title={q('第十二期')}") == [WECHAT_URL, info_url(2530)]
    assert run(feeds_dir, name, f"filterout_description={q('报告厅|积极分子')}") == [
        info_url(2550), WECHAT_URL, info_url(2542)]
    assert run(feeds_dir, name, f"filterout_author={q('组织部')}") == ALL[:4]
    # Combined: kept by filter, then dropped by filterout, then limited.
    assert run(feeds_dir, name, f"filter={q('培训班')}&filterout_title={q('结业')}&limit=2") == [
        info_url(2542), info_url(2541)]


@pytest.mark.parametrize("name", ["dxgzdt.xml", "dxgzdt.json"])
def test_case_sensitivity(feeds_dir: Path, name: str) -> None:
    # The WeChat item's body mentions "Published on an external site".
    assert run(feeds_dir, name, "filter=published") == []  # case-sensitive by default
    assert run(feeds_dir, name, "filter=published&filter_case_sensitive=false") == [WECHAT_URL]
    assert run(feeds_dir, name, "filter=Published&filter_case_sensitive=true") == [WECHAT_URL]
    assert run(feeds_dir, name, "filterout=PUBLISHED&filter_case_sensitive=false") == [
        u for u in ALL if u != WECHAT_URL]


@pytest.mark.parametrize("name", ["dxgzdt.xml", "dxgzdt.atom", "dxgzdt.json"])
def test_time_window(feeds_dir: Path, name: str) -> None:
    # 2550 was published 2024-04-02 00:00 +08:00, the WeChat item 2024-03-20.
    now = datetime(2024, 4, 3, tzinfo=UTC).timestamp()
    assert run(feeds_dir, name, "filter_time=86400", now) == []  # 1 day: 2024-04-02T00:00+08 is 32 h before
    assert run(feeds_dir, name, f"filter_time={2 * 86400}", now) == [info_url(2550)]
    assert run(feeds_dir, name, f"filter_time={20 * 86400}", now) == ALL[:4]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("filter=%28unclosed", "filter is not a valid RE2 regular expression"),
        ("filter_title=(a)%5C1", "filter_title is not a valid RE2"),  # a backreference: RE2 refuses
        ("filterout=(%3F%3Dlook)", "filterout is not a valid RE2"),  # look-ahead
        ("limit=0", "limit must be a whole number from 1 to 10000"),
        ("limit=-1", "limit must be a whole number"),
        ("limit=1.5", "limit must be a whole number"),
        ("limit=10001", "limit must be a whole number"),
        ("limit=%EF%BC%93", "limit must be a whole number"),  # a full-width digit
        ("filter_time=abc", "filter_time must be a whole number"),
        ("filter=a&filter_case_sensitive=maybe", "filter_case_sensitive must be true or false"),
        ("filter=" + "a" * 1001, "filter is longer than 1000 characters"),
        ("filter=%FF", "not valid UTF-8"),
    ],
)
def test_bad_values_are_refused_with_a_reason(query: str, reason: str) -> None:
    with pytest.raises(FilterError, match=reason.replace("(", r"\(")):
        parse_query(query.encode())


def test_queries_without_filters_and_normalization() -> None:
    assert parse_query(b"utm_source=reader&t=1") is None
    assert parse_query(b"filter=&limit=") is None  # empty means unset, as in RSSHub
    assert parse_query(b"filter_case_sensitive=false") is None
    a = parse_query(b"limit=007&filter=x&utm=1")
    b = parse_query(b"filter=x&limit=7")
    assert a is not None and b is not None and a.key == b.key
    assert feed_kind("/opml.xml") is None and feed_kind("/index.html") is None
    assert feed_kind("/dxgzdt/archive/1.atom") == "atom"


def test_catastrophic_pattern_is_fast(tmp_path: Path) -> None:
    """(a+)+$ takes a backtracking engine exponential time on 'aaa…b': RE2 is linear."""
    title = "a" * 5000 + "b"
    rss = ('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
           + f"<item><title>{title}</title><link>https://x.example/1</link></item>" * 50
           + "</channel></rss>").encode()
    spec = parse_query(b"filter=%28a%2B%29%2B%24&filter_title=%28a%7Caa%29%2Bc")
    assert spec is not None
    start = time.perf_counter()
    out = apply(spec, "rss", rss)
    assert time.perf_counter() - start < 1.0
    assert b"<item>" not in out


@pytest.fixture(scope="module")
def served(feeds_dir: Path):
    server = FeedServer(feeds_dir, "127.0.0.1", 0, cache_max_age=600)
    _, port = server.start_in_thread()
    yield port
    server.stop()


def test_over_http_filtered_answers_have_their_own_validators(served: int, feeds_dir: Path) -> None:
    port = served
    _, plain, _ = request(port, "GET", "/dxgzdt.xml")
    path = "/dxgzdt.xml?filter=" + quote("开班|分组") + "&utm_source=x"
    status, headers, body = request(port, "GET", path)
    assert status == 200 and links("rss", body) == [info_url(2542), info_url(2541)]
    assert headers["etag"] != plain["etag"] and headers["content-type"] == plain["content-type"]
    assert headers["cache-control"] == "public, max-age=600" and headers["last-modified"] == plain["last-modified"]
    # Same filter, other parameter order and junk: same cached answer and ETag; 304 with it.
    same = "/dxgzdt.xml?utm_source=y&filter=" + quote("开班|分组")
    assert request(port, "GET", same)[1]["etag"] == headers["etag"]
    status, h304, body304 = request(port, "GET", same, {"If-None-Match": headers["etag"]})
    assert (status, body304, h304["etag"]) == (304, b"", headers["etag"])
    assert request(port, "GET", path, {"If-None-Match": plain["etag"]})[0] == 200  # the plain tag doesn't match
    # gzip variant of a filtered answer.
    status, hgz, gz = request(port, "GET", path, {"Accept-Encoding": "gzip"})
    assert status == 200 and hgz["content-encoding"] == "gzip" and gzip.decompress(gz) == body
    # HEAD, JSON and archive-free Atom too.
    status, hh, bh = request(port, "HEAD", path)
    assert status == 200 and bh == b"" and int(hh["content-length"]) == len(body)
    status, _, body = request(port, "GET", "/dxgzdt.json?limit=1")
    assert status == 200 and links("json", body) == [info_url(2550)]
    # Unknown parameters alone: the published file as is.
    assert request(port, "GET", "/dxgzdt.atom?utm_source=reader")[2] == (feeds_dir / "dxgzdt.atom").read_bytes()
    # Non-feed files ignore filters.
    assert request(port, "GET", "/opml.xml?limit=1")[2] == (feeds_dir / "opml.xml").read_bytes()


def test_over_http_bad_values_get_400_with_one_line(served: int) -> None:
    status, headers, body = request(served, "GET", "/dxgzdt.xml?filter=%28")
    assert status == 400 and headers["content-type"] == "text/plain; charset=utf-8"
    assert body.startswith(b"400 Bad Request: filter is not a valid RE2") and body.count(b"\n") == 1
    status, _, body = request(served, "GET", "/dxgzdt.atom?limit=0")
    assert status == 400 and b"limit must be a whole number" in body
    assert request(served, "GET", "/dxgzdt.xml")[0] == 200


def test_over_http_catastrophic_pattern_returns_fast(served: int) -> None:
    start = time.perf_counter()
    status, _, _ = request(served, "GET", "/dxgzdt.xml?filter=" + quote("(.*)*(x+x+)+y$"))
    assert status == 200 and time.perf_counter() - start < 2.0
