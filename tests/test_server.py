"""feeds.server (uvicorn) over real loopback sockets: content negotiation, validators, routing, endpoints.

Robustness (malformed input, traversal, timeouts, pipelining, shutdown) is in
tests/test_server_robustness.py.  Shared helpers live in tests/test_server_support.py.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import os
import time
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import pytest

from feeds.server import FeedServer, accepts_gzip
from tests.test_server_support import RSS, make_feeds_dir, raw_exchange, read_responses, request


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("srv")
    feeds = make_feeds_dir(base)
    calls = {"health": 0}

    def health() -> tuple[int, dict[str, object]]:
        calls["health"] += 1
        return 200, {"status": "ok", "db": "up", "名称": "党校"}

    server = FeedServer(feeds, "127.0.0.1", 0, cache_max_age=900, health=health,
                        metrics=lambda: "# TYPE ghu_items gauge\nghu_items 42")
    host, port = server.start_in_thread()
    yield {"server": server, "port": port, "feeds": feeds, "calls": calls}
    server.stop()


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/ghu.xml", "application/rss+xml; charset=utf-8"),
        ("/ghu.atom", "application/atom+xml; charset=utf-8"),
        ("/ghu.json", "application/feed+json; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
        ("/opml.xml", "text/x-opml; charset=utf-8"),
        ("/ghu/archive/1.atom", "application/atom+xml; charset=utf-8"),
    ],
)
def test_content_types_and_bodies(site, path: str, ctype: str) -> None:
    status, headers, body = request(site["port"], "GET", path)
    assert status == 200
    assert headers["content-type"] == ctype
    rel = "index.html" if path == "/" else path.lstrip("/")
    assert body == (site["feeds"] / rel).read_bytes()
    assert int(headers["content-length"]) == len(body)


def test_validators_and_cache_headers(site) -> None:
    status, headers, body = request(site["port"], "GET", "/ghu.xml")
    assert status == 200
    etag = headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    mtime = int((site["feeds"] / "ghu.xml").stat().st_mtime)
    assert parsedate_to_datetime(headers["last-modified"]).timestamp() == mtime
    assert headers["cache-control"] == "public, max-age=900"
    assert headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in headers
    assert parsedate_to_datetime(headers["date"]).timestamp() == pytest.approx(time.time(), abs=5)
    # Deterministic: same bytes, same ETag.
    assert request(site["port"], "GET", "/ghu.xml")[1]["etag"] == etag


@pytest.mark.parametrize("template", ["{etag}", "W/{etag}", '"nope", {etag}', '"a",W/{etag} , "b"', "*"])
def test_if_none_match_gives_304_without_body(site, template: str) -> None:
    etag = request(site["port"], "GET", "/ghu.xml")[1]["etag"]
    status, headers, body = request(site["port"], "GET", "/ghu.xml", {"If-None-Match": template.format(etag=etag)})
    assert status == 304
    assert body == b""
    assert headers["etag"] == etag
    assert headers["cache-control"] == "public, max-age=900"
    assert "content-length" not in headers


def test_if_none_match_mismatch_is_200_and_overrides_ims(site) -> None:
    lm = request(site["port"], "GET", "/ghu.xml")[1]["last-modified"]
    status, _, body = request(site["port"], "GET", "/ghu.xml", {"If-None-Match": '"other"', "If-Modified-Since": lm})
    assert status == 200 and body == (site["feeds"] / "ghu.xml").read_bytes()


def test_if_modified_since(site) -> None:
    lm = request(site["port"], "GET", "/ghu.xml")[1]["last-modified"]
    assert request(site["port"], "GET", "/ghu.xml", {"If-Modified-Since": lm})[0] == 304
    later = formatdate(time.time() + 3600, usegmt=True)
    assert request(site["port"], "GET", "/ghu.xml", {"If-Modified-Since": later})[0] == 304
    earlier = formatdate(parsedate_to_datetime(lm).timestamp() - 10, usegmt=True)
    assert request(site["port"], "GET", "/ghu.xml", {"If-Modified-Since": earlier})[0] == 200
    assert request(site["port"], "GET", "/ghu.xml", {"If-Modified-Since": "yesterday-ish"})[0] == 200


def test_head_has_headers_and_no_body(site) -> None:
    full = (site["feeds"] / "ghu.xml").read_bytes()
    status, headers, body = request(site["port"], "HEAD", "/ghu.xml")
    assert status == 200 and body == b""
    assert int(headers["content-length"]) == len(full)
    assert headers["etag"] == request(site["port"], "GET", "/ghu.xml")[1]["etag"]
    # On the wire: a HEAD followed by a GET on one connection must parse cleanly,
    # proving no body bytes were sent after the HEAD headers.
    data = raw_exchange(site["port"], b"HEAD /ghu.xml HTTP/1.1\r\nHost: x\r\n\r\n"
                                      b"GET /ghu.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    responses = read_responses(data, head_flags=[True, False])
    assert [r[0] for r in responses] == [200, 200]
    assert responses[0][2] == b""
    assert responses[1][2] == (site["feeds"] / "ghu.json").read_bytes()


def test_gzip_variant(site) -> None:
    full = (site["feeds"] / "ghu.xml").read_bytes()
    plain_etag = request(site["port"], "GET", "/ghu.xml")[1]["etag"]
    status, headers, body = request(site["port"], "GET", "/ghu.xml", {"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    assert int(headers["content-length"]) == len(body) < len(full)
    assert gzip.decompress(body) == full
    gz_etag = headers["etag"]
    assert gz_etag != plain_etag and gz_etag.endswith('-gz"')
    # The gzip variant revalidates with its own tag ...
    assert request(site["port"], "GET", "/ghu.xml", {"Accept-Encoding": "gzip", "If-None-Match": gz_etag})[0] == 304
    # ... a client that dropped gzip support gets the identity body, not a 304 for gzip bytes ...
    status, headers, body = request(site["port"], "GET", "/ghu.xml", {"If-None-Match": gz_etag})
    assert status == 200 and body == full and "content-encoding" not in headers
    # ... and a cached identity copy is confirmed even when gzip is now accepted.
    status, headers, _ = request(site["port"], "GET", "/ghu.xml",
                                 {"Accept-Encoding": "gzip", "If-None-Match": plain_etag})
    assert status == 304 and headers["etag"] == plain_etag
    # HEAD with gzip reports the gzip length.
    status, headers, body = request(site["port"], "HEAD", "/ghu.xml", {"Accept-Encoding": "gzip"})
    assert body == b"" and headers["content-encoding"] == "gzip"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip", True), ("GZIP;q=0.5", True), ("x-gzip", True), ("deflate, gzip;q=1.0", True),
        ("gzip;q=0", False), ("gzip; q=0.000", False), ("identity", False), ("br, deflate", False),
        ("*", True), ("*;q=0", False), ("gzip;q=0, *", False), ("br, *;q=0.1", True), ("", False),
        ("gzip;q=bogus", False),
    ],
)
def test_accepts_gzip(value: str, expected: bool) -> None:
    assert accepts_gzip(value.encode()) is expected


@pytest.mark.parametrize("value", ["gzip;q=0", "identity", "*;q=0"])
def test_gzip_refused_when_q_zero(site, value: str) -> None:
    status, headers, body = request(site["port"], "GET", "/ghu.xml", {"Accept-Encoding": value})
    assert status == 200 and "content-encoding" not in headers
    assert body == (site["feeds"] / "ghu.xml").read_bytes()


def test_query_string_and_absolute_form(site) -> None:
    assert request(site["port"], "GET", "/ghu.xml?utm_source=reader&t=1")[0] == 200
    data = raw_exchange(site["port"], b"GET http://127.0.0.1/ghu.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      b"Connection: close\r\n\r\n")
    (status, _, body), = read_responses(data)
    assert status == 200 and body == (site["feeds"] / "ghu.json").read_bytes()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_405(site, method: str) -> None:
    status, headers, _ = request(site["port"], method, "/ghu.xml", body=b"x=1" if method != "OPTIONS" else None)
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


def test_405_with_body_keeps_connection_usable(site) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site["port"], timeout=5)
    try:
        conn.request("POST", "/ghu.xml", body=b"a" * 5000, headers={"Content-Type": "text/plain"})
        resp = conn.getresponse()
        assert resp.status == 405
        resp.read()
        sock = conn.sock
        conn.request("GET", "/ghu.json")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == (site["feeds"] / "ghu.json").read_bytes()
        assert conn.sock is sock
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/ghu", "/ghu/", "/ghu/archive", "/ghu/archive/", "/nope.xml", "/favicon.ico",
                                  "/index.htm", "/GHU.XML"])
def test_directories_and_unknown_paths_404(site, path: str) -> None:
    status, headers, body = request(site["port"], "GET", path)
    assert status == 404
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body == b"404 Not Found\n"


def test_hidden_temp_and_unknown_extensions_are_not_served(site) -> None:
    for path in ["/.hidden.xml", "/.ghu.xml.abcd1234.tmp", "/ghu.xml.tmp", "/notes.md", "/script.sh"]:
        assert request(site["port"], "GET", path)[0] == 404, path


def test_keep_alive_reuses_one_connection(site) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site["port"], timeout=5)
    try:
        socks = set()
        for path in ["/ghu.xml", "/ghu.atom", "/missing", "/ghu.json", "/", "/healthz", "/metrics", "/ghu.xml"]:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            assert resp.status in (200, 404)
            assert resp.getheader("Connection") != "close"
            socks.add(id(conn.sock))
        assert len(socks) == 1
    finally:
        conn.close()


def test_http10_closes(site) -> None:
    """uvicorn answers HTTP/1.0 and then closes, even when asked to keep the connection alive."""
    data = raw_exchange(site["port"], b"GET /ghu.json HTTP/1.0\r\n\r\n")  # no Host needed in 1.0
    (status, headers, body), = read_responses(data)
    assert status == 200 and headers["connection"] == "close"
    assert body == (site["feeds"] / "ghu.json").read_bytes()
    data = raw_exchange(site["port"], b"GET /ghu.json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                      b"GET /ghu.atom HTTP/1.0\r\n\r\n")
    assert [(r[0], r[1]["connection"]) for r in read_responses(data)] == [(200, "close")]


def test_healthz_json_and_cache(site) -> None:
    before = site["calls"]["health"]
    status, headers, body = request(site["port"], "GET", "/healthz")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    assert json.loads(body) == {"status": "ok", "db": "up", "名称": "党校"}
    for _ in range(5):
        assert request(site["port"], "GET", "/healthz")[0] == 200
    # Cached for ~1 s: at most one more call happened.
    assert site["calls"]["health"] - before <= 2
    status, headers, body = request(site["port"], "HEAD", "/healthz")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def test_metrics_text(site) -> None:
    status, headers, body = request(site["port"], "GET", "/metrics")
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    assert "ghu_items 42\n" in text
    assert "feed_server_requests_total " in text
    assert "feed_server_files 7\n" in text


def test_healthz_passes_503_and_survives_errors(tmp_path: Path) -> None:
    feeds = make_feeds_dir(tmp_path)
    state = {"mode": "down"}

    def health() -> tuple[int, dict[str, object]]:
        if state["mode"] == "boom":
            raise RuntimeError("db exploded")
        return 503, {"status": "degraded", "db": "down"}

    def metrics() -> str:
        raise ValueError("no metrics")

    server = FeedServer(feeds, "127.0.0.1", 0, health=health, metrics=metrics)
    _, port = server.start_in_thread()
    try:
        status, headers, body = request(port, "GET", "/healthz")
        assert status == 503 and headers["content-type"] == "application/json"
        assert b'"degraded"' in body
        state["mode"] = "boom"
        time.sleep(1.1)  # past the result cache
        status, _, body = request(port, "GET", "/healthz")
        assert status == 500 and b"RuntimeError" in body and b"exploded" not in body
        status, _, body = request(port, "GET", "/metrics")
        assert status == 500 and b"feed_server_requests_total" in body
        assert request(port, "GET", "/ghu.xml")[0] == 200
    finally:
        server.stop()


def test_default_healthz_without_callable(tmp_path: Path) -> None:
    server = FeedServer(make_feeds_dir(tmp_path), "127.0.0.1", 0)
    _, port = server.start_in_thread()
    try:
        status, _, body = request(port, "GET", "/healthz")
        assert status == 200 and b'"ok"' in body
        status, _, body = request(port, "GET", "/metrics")
        assert status == 200 and b"feed_server_open_connections" in body
    finally:
        server.stop()


def test_reload_picks_up_changes(tmp_path: Path) -> None:
    feeds = make_feeds_dir(tmp_path)
    server = FeedServer(feeds, "127.0.0.1", 0, poll_interval=0)  # explicit reload() only
    _, port = server.start_in_thread()
    try:
        _, headers, old = request(port, "GET", "/ghu.xml")
        new = RSS.replace(b"<title>", b"<title>new ", 1)
        tmp = feeds / ".ghu.xml.12345678.tmp"
        tmp.write_bytes(new)
        os.replace(tmp, feeds / "ghu.xml")
        (feeds / "extra.atom").write_bytes(b"<feed/>")
        (feeds / "ghu.json").unlink()
        assert request(port, "GET", "/ghu.xml")[2] == old  # not yet: no poll
        assert server.reload() is True
        assert server.reload() is False  # nothing changed since
        status, headers2, body = request(port, "GET", "/ghu.xml")
        assert body == new and headers2["etag"] != headers["etag"]
        assert request(port, "GET", "/extra.atom")[0] == 200
        assert request(port, "GET", "/ghu.json")[0] == 404
    finally:
        server.stop()


def test_poll_picks_up_changes_and_keeps_last_modified_for_same_bytes(tmp_path: Path) -> None:
    feeds = make_feeds_dir(tmp_path)
    server = FeedServer(feeds, "127.0.0.1", 0, poll_interval=0.2)
    _, port = server.start_in_thread()
    try:
        _, h1, _ = request(port, "GET", "/ghu.atom")
        # Rewrite identical bytes with a newer mtime: validators must not change.
        path = feeds / "ghu.atom"
        path.write_bytes(path.read_bytes())
        os.utime(path, (time.time() + 60, time.time() + 60))
        (feeds / "later.json").write_bytes(b'{"version": "https://jsonfeed.org/version/1.1"}')
        deadline = time.monotonic() + 5
        while request(port, "GET", "/later.json")[0] != 200:
            assert time.monotonic() < deadline, "poll did not pick up the new file"
            time.sleep(0.1)
        _, h2, _ = request(port, "GET", "/ghu.atom")
        assert (h2["etag"], h2["last-modified"]) == (h1["etag"], h1["last-modified"])
    finally:
        server.stop()


def test_access_log_only_at_debug(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    feeds = make_feeds_dir(tmp_path)
    for level, expect in ((logging.INFO, False), (logging.DEBUG, True)):
        caplog.clear()
        with caplog.at_level(level, logger="feeds.server"):
            server = FeedServer(feeds, "127.0.0.1", 0)
            _, port = server.start_in_thread()
            try:
                request(port, "GET", "/ghu.xml")
                request(port, "GET", "/missing")
            finally:
                server.stop()
        lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
        assert any("GET /ghu.xml 200" in m for m in lines) is expect
        assert any("GET /missing 404" in m for m in lines) is expect
        assert not [r for r in caplog.records if r.levelno >= logging.INFO and "GET" in r.getMessage()]


def test_extra_routes_are_mounted_after_published_files(tmp_path: Path) -> None:
    """Other modules mount dynamic routes (e.g. /media/...): they answer what no published file does."""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def media(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse(f"media {request.path_params['path']}")

    async def shadowed(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("route")

    feeds = make_feeds_dir(tmp_path)
    server = FeedServer(feeds, "127.0.0.1", 0, extra_routes=[
        Mount("/media", routes=[Route("/{path:path}", media)]), Route("/ghu.xml", shadowed)])
    _, port = server.start_in_thread()
    try:
        status, _, body = request(port, "GET", "/media/1/a.jpg")
        assert (status, body) == (200, b"media 1/a.jpg")
        assert request(port, "GET", "/ghu.xml")[2] == (feeds / "ghu.xml").read_bytes()
        assert request(port, "GET", "/nothing")[0] == 404
    finally:
        server.stop()
