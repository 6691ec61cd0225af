"""The media allowlist, checked against the bytes (pure function: no crawl)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from crawler.media_types import check, extension, sniff

ASSETS = Path(__file__).parent / "fixtures" / "replica" / "replica-src" / "assets"
JPEG = (ASSETS / "dxjx-1.jpg").read_bytes()
PNG = (ASSETS / "wmhg-1.png").read_bytes()
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512
EXE = b"MZ\x90\x00" + b"\x00" * 56 + b"\x80\x00\x00\x00" + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 100
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 100
HTML = b"\xef\xbb\xbf  <!DOCTYPE html><html><head><title>404</title></head><body>not found</body></html>"
RAR = b"Rar!\x1a\x07\x01\x00" + b"\x00" * 64
SEVEN_Z = b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 64
MB = 1024 * 1024


def _zip(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, "x")
    return buf.getvalue()


DOCX = _zip("word/document.xml")


@pytest.mark.parametrize(("body", "kind", "name", "header", "mime", "ext"), [
    (JPEG, "image", None, "image/jpeg", "image/jpeg", "jpg"),
    (PNG, "image", "photo.jpg", "image/jpeg", "image/png", "png"),  # a mislabelled picture is still a picture
    (JPEG, "image", None, "application/octet-stream", "image/jpeg", "jpg"),
    (PDF, "attachment", "名单.pdf", "application/octet-stream", "application/pdf", "pdf"),
    (OLE, "attachment", "课程安排.doc", "application/octet-stream", "application/msword", "doc"),
    (OLE, "attachment", "汇总表.et", None, "application/vnd.ms-excel", "et"),
    (OLE, "attachment", "文稿.wps", None, "application/vnd.ms-works", "wps"),
    (DOCX, "attachment", "日程.docx", "application/octet-stream",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    (_zip("a.txt"), "attachment", "材料.zip", None, "application/zip", "zip"),
    (RAR, "attachment", "材料.rar", None, "application/vnd.rar", "rar"),
    (SEVEN_Z, "attachment", "材料.7z", None, "application/x-7z-compressed", "7z"),
    ("通知：请于十月十日前报送。".encode("gb18030"), "attachment", "说明.txt", None, "text/plain", "txt"),
    (PDF, "attachment", "download", "application/octet-stream", "application/pdf", "pdf"),  # nothing claimed
])
def test_allowed(body: bytes, kind: str, name: str | None, header: str | None, mime: str, ext: str) -> None:
    verdict = check(body, kind, name, "http://127.0.0.1/f", header, 50 * MB)
    assert verdict.ok, verdict.reason
    assert (verdict.mime_type, verdict.ext) == (mime, ext)


@pytest.mark.parametrize(("body", "kind", "name", "url", "reason"), [
    (HTML, "image", None, "http://127.0.0.1/a.jpg", "bytes are HTML, not the claimed .jpg"),
    (HTML, "image", None, "http://127.0.0.1/pic", "bytes are HTML, not the claimed image"),
    (HTML, "attachment", "名单.xlsx", "http://127.0.0.1/d.jsp", "bytes are HTML"),
    (EXE, "attachment", "setup.exe", "http://127.0.0.1/d.jsp", "executable"),
    (EXE, "attachment", "名单.pdf", "http://127.0.0.1/d.jsp", "executable"),  # claims pdf, is a program
    (ELF, "attachment", "tool", "http://127.0.0.1/tool", "executable"),
    (b"#!/bin/sh\nrm -rf /\n", "attachment", "readme.txt", "http://127.0.0.1/r", "executable"),
    (PDF, "attachment", "install.bat", "http://127.0.0.1/i", "executable"),
    (PDF, "attachment", "名单.docx", "http://127.0.0.1/d", "bytes are pdf"),
    (JPEG, "attachment", "clip.mp4", "http://127.0.0.1/c", "not in the allowlist"),
    (b"\x00\x01\x02garbage", "attachment", "data", "http://127.0.0.1/x", "unknown type"),
])
def test_refused(body: bytes, kind: str, name: str | None, url: str, reason: str) -> None:
    verdict = check(body, kind, name, url, None, 50 * MB)
    assert not verdict.ok
    assert reason in verdict.reason


def test_size_limit() -> None:
    assert check(PDF, "attachment", "a.pdf", "http://h/a.pdf", None, len(PDF)).ok
    verdict = check(PDF, "attachment", "a.pdf", "http://h/a.pdf", None, len(PDF) - 1)
    assert not verdict.ok and "MEDIA_MAX_BYTES" in verdict.reason


def test_sniff_and_extension() -> None:
    assert sniff(HTML)[0] == "html" and sniff(EXE)[0] == "executable" and sniff(OLE)[0] == "ole"
    assert extension("http://h/__local/A/B.JPG?e=.jpg") == "jpg"
    assert extension("2024年名单.XLSX") == "xlsx" and extension(None) == "" and extension("noext") == ""
