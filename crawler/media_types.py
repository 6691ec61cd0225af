"""Which downloaded files may be kept: an allowlist of types, checked against the bytes themselves.

A pure function of (bytes, what the page and the server claimed). Sites mislabel files all the time
(``application/octet-stream`` for everything, ``.jpg`` that is a PNG), so the claim is matched by family
(an image is an image; .doc/.xls/.ppt/.wps/.et/.dps are OLE2 compound files; .docx/.xlsx/.pptx are ZIPs),
but an "image" that is an HTML error page, or anything executable, is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

import filetype

IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
               "image/bmp": "bmp", "image/tiff": "tif"}
# extension -> (family the bytes must have, MIME type served)
DOCUMENTS = {
    "pdf": ("pdf", "application/pdf"),
    "doc": ("ole", "application/msword"),
    "xls": ("ole", "application/vnd.ms-excel"),
    "ppt": ("ole", "application/vnd.ms-powerpoint"),
    "wps": ("ole", "application/vnd.ms-works"),  # WPS Office: OLE2 like .doc
    "et": ("ole", "application/vnd.ms-excel"),
    "dps": ("ole", "application/vnd.ms-powerpoint"),
    "docx": ("zip", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xlsx": ("zip", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "pptx": ("zip", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    "zip": ("zip", "application/zip"),
    "rar": ("rar", "application/vnd.rar"),
    "7z": ("7z", "application/x-7z-compressed"),
    "txt": ("text", "text/plain"),
}
IMAGE_EXTS = {"jpg", "jpeg", "jpe", "png", "gif", "webp", "bmp", "tif", "tiff"}
EXECUTABLE_EXTS = {"exe", "dll", "com", "bat", "cmd", "msi", "scr", "pif", "cpl", "vbs", "vbe", "js", "jse", "wsf",
                   "ps1", "sh", "jar", "apk", "app", "dmg", "deb", "rpm", "elf", "bin", "lnk", "hta", "reg"}
_EXECUTABLE_MIMES = {"application/x-msdownload", "application/x-executable", "application/x-mach-binary",
                     "application/x-elf", "application/x-dosexec", "application/vnd.microsoft.portable-executable",
                     "application/x-sharedlib", "application/java-archive", "application/x-deb",
                     "application/x-rpm"}
_MIME_FAMILY = {"application/pdf": "pdf", "application/zip": "zip", "application/x-rar-compressed": "rar",
                "application/vnd.rar": "rar", "application/x-7z-compressed": "7z", "text/plain": "text"}
_GENERIC = {"", "application/octet-stream", "binary/octet-stream", "application/x-download",
            "application/force-download", "application/download"}
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HTML_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<script", b"<?xml", b"<!--", b"<meta", b"<title",
                b"<div", b"<p>", b"<br")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    mime_type: str = ""  # what the bytes are (served as Content-Type)
    ext: str = ""  # extension of the kept file
    reason: str = ""  # why it was refused


def sniff(body: bytes) -> tuple[str, str]:
    """(family, MIME type) of the bytes: image, pdf, ole, zip, rar, 7z, executable, html, text or unknown."""
    head = body[:8192]
    if head.startswith(b"#!"):
        return "executable", "text/x-shellscript"
    if head.startswith(_OLE):
        return "ole", "application/x-ole-storage"
    kind = filetype.guess(head)
    if kind is not None:
        mime = kind.mime
        if mime in IMAGE_TYPES:
            return "image", mime
        if mime in _EXECUTABLE_MIMES:
            return "executable", mime
        if mime in _MIME_FAMILY:
            return _MIME_FAMILY[mime], mime
        if mime.startswith("application/vnd.openxmlformats") or mime.endswith("+zip"):
            return "zip", mime
        return "unknown", mime
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith(_HTML_STARTS) or b"<html" in stripped[:1024]:
        return "html", "text/html"
    if b"\x00" not in head and _decodes(head):
        return "text", "text/plain"
    return "unknown", "application/octet-stream"


def _decodes(head: bytes) -> bool:
    for codec in ("utf-8", "gb18030"):
        try:
            head.decode(codec)
            return True
        except UnicodeDecodeError:
            # a multi-byte character may be cut at the end of the sniffed head
            try:
                head[:-4].decode(codec)
                return True
            except UnicodeDecodeError:
                continue
    return False


def extension(name: str | None) -> str:
    """Lower-case extension of a file name or URL path ("" when none)."""
    if not name:
        return ""
    if "://" in name:
        name = unquote(urlsplit(name).path)
    return PurePosixPath(name.strip()).suffix.lower().lstrip(".")


def check(body: bytes, kind: str, name: str | None, url: str, header_type: str | None, max_bytes: int) -> Verdict:
    """May these bytes be kept as the ``kind`` (image/attachment) the article links under ``name``/``url``?"""
    if len(body) > max_bytes:
        return Verdict(False, reason=f"{len(body)} bytes, over MEDIA_MAX_BYTES ({max_bytes})")
    ext = extension(name) or extension(url)
    family, mime = sniff(body)
    if ext in EXECUTABLE_EXTS or family == "executable":
        return Verdict(False, reason=f"executable ({mime if family == 'executable' else '.' + ext})")
    claimed = _claimed_family(ext, kind, header_type)
    if claimed is None:
        if ext and ext not in IMAGE_EXTS and ext not in DOCUMENTS:
            return Verdict(False, reason=f"type .{ext} is not in the allowlist")
        if family in ("image", "pdf", "ole", "zip", "rar", "7z"):
            return _kept(family, mime, ext)
        return Verdict(False, reason=f"unknown type ({mime}), nothing claimed")
    if family == "html" and claimed != "html":
        return Verdict(False, reason=f"bytes are HTML, not the claimed {_describe(claimed, ext)}")
    if family != claimed:
        return Verdict(False, reason=f"bytes are {family} ({mime}), not the claimed {_describe(claimed, ext)}")
    return _kept(family, mime, ext)


def _claimed_family(ext: str, kind: str, header_type: str | None) -> str | None:
    if ext in IMAGE_EXTS:
        return "image"
    if ext in DOCUMENTS:
        return DOCUMENTS[ext][0]
    header = (header_type or "").split(";")[0].strip().lower()
    if header.startswith("image/"):
        return "image"
    if header in _MIME_FAMILY:
        return _MIME_FAMILY[header]
    if kind == "image" and (not ext or header in _GENERIC or header == "text/html"):
        return "image"
    return None


def _describe(family: str, ext: str) -> str:
    return f".{ext}" if ext else family


def _kept(family: str, mime: str, ext: str) -> Verdict:
    if family == "image":
        return Verdict(True, mime, IMAGE_TYPES[mime])
    if ext in DOCUMENTS and DOCUMENTS[ext][0] == family:
        return Verdict(True, DOCUMENTS[ext][1], ext)
    default = {"pdf": "pdf", "ole": "doc", "zip": "zip", "rar": "rar", "7z": "7z", "text": "txt"}[family]
    return Verdict(True, DOCUMENTS[default][1] if family != "zip" or mime == "application/zip" else mime,
                   default if family != "zip" or mime == "application/zip" else ext or "zip")
