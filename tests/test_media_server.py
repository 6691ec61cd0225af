"""/media/… over real HTTP (uvicorn on 127.0.0.1): type, Chinese file names, ETag/304, Range, refusals."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from db import store
from db.engine import open_database, transaction
from feeds.media_app import content_disposition, media_app
from tests.media_helpers import keep_copy, serve_app

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
NAME = "2024年秋季学期党校优秀学员名单.pdf"


def _get(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


@pytest.fixture
def served(db_url: str, tmp_path: Path):
    _engine, factory = open_database(db_url)
    with transaction(factory) as s:
        source_id = store.sync_source(s, "dxgzdt", "党校工作动态", "http://127.0.0.1:1/dxgz/dxgzdt.htm").id
    media = tmp_path / "media"
    rel = keep_copy(factory, media, source_id, "http://127.0.0.1:1/info/1015/1.htm",
                    "http://127.0.0.1:1/download.jsp?id=1", PDF, kind="attachment", name=NAME,
                    mime="application/pdf", ext="pdf")
    with serve_app(media_app(factory, media)) as base:
        yield base, rel
    _engine.dispose()


def test_file_has_type_original_name_and_validators(served) -> None:
    base, rel = served
    status, headers, body = _get(f"{base}/media/{rel}")
    assert status == 200 and body == PDF
    assert headers["content-type"] == "application/pdf"
    disposition = headers["content-disposition"]
    assert disposition.startswith("inline; filename=\"")
    assert f"filename*=UTF-8''{quote(NAME, safe='')}" in disposition
    assert headers["etag"] == f'"{rel.split("/")[1].split(".")[0]}"'
    assert headers["x-content-type-options"] == "nosniff"
    assert "last-modified" in headers and "immutable" in headers["cache-control"]

    status, headers304, body = _get(f"{base}/media/{rel}", **{"If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")
    assert headers304["etag"] == headers["etag"]

    status, head_headers, body = _get(f"{base}/media/{rel}", method="HEAD")
    assert (status, body) == (200, b"") and head_headers["content-length"] == str(len(PDF))


def test_range_requests(served) -> None:
    base, rel = served
    status, headers, body = _get(f"{base}/media/{rel}", Range="bytes=0-8")
    assert status == 206 and body == PDF[:9]
    assert headers["content-range"] == f"bytes 0-8/{len(PDF)}"
    status, headers, body = _get(f"{base}/media/{rel}", Range="bytes=-7")
    assert status == 206 and body == PDF[-7:]
    status, _headers, _body = _get(f"{base}/media/{rel}", Range=f"bytes={len(PDF) + 10}-")
    assert status == 416


@pytest.mark.parametrize("path", ["../ghu.db", "ab/../../ghu.db", "00/" + "0" * 64 + ".pdf", "x", "%2e%2e/ghu.db",
                                  "ab/" + "c" * 64 + ".pdf"])
def test_unknown_or_crafted_paths_are_404(served, path: str) -> None:
    base, _rel = served
    status, _headers, _body = _get(f"{base}/media/{path}")
    assert status == 404


def test_content_disposition_forms() -> None:
    assert content_disposition("名单.xlsx", "application/vnd.ms-excel", "ab12.xls") == (
        "attachment; filename=\"ab12.xlsx\"; filename*=UTF-8''%E5%90%8D%E5%8D%95.xlsx")
    assert content_disposition("report 2024.pdf", "application/pdf", "x.pdf") == (
        "inline; filename=\"report 2024.pdf\"; filename*=UTF-8''report%202024.pdf")
    assert content_disposition(None, "image/png", "ab.png") == 'inline; filename="ab.png"'
    assert content_disposition('a"b\\c.doc', "application/msword", "x.doc").startswith('attachment; filename="abc.doc"')
