"""File types by extension, shared by the crawler (attachment links, stored types) and the feeds (enclosures).

A leaf module (standard library only) so that ``crawler`` and ``feeds`` can both use it without importing
each other. Office and archive types common on Chinese university sites come first; Python's built-in
table (not the host's /etc/mime.types, which differs between machines) covers the rest.
"""

from __future__ import annotations

import mimetypes
from urllib.parse import urlsplit

OCTET_STREAM = "application/octet-stream"
MIME_BY_EXT = {
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "zip": "application/zip",
    "rar": "application/vnd.rar",
    "7z": "application/x-7z-compressed",
    "txt": "text/plain",
    "wps": "application/vnd.ms-works",
    "ofd": "application/ofd",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "mp4": "video/mp4",
}
# Types servers send for any download: they say nothing about the file.
GENERIC_MIME = frozenset({"", OCTET_STREAM, "binary/octet-stream", "application/x-download",
                          "application/force-download", "text/html"})
# Extensions of documents and archives a site offers for download (links to them are attachments).
DOCUMENT_EXTENSIONS = frozenset({"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "zip", "rar", "7z", "txt",
                                 "wps", "et", "dps", "ofd", "csv", "rtf", "odt", "ods", "odp", "tar", "gz"})
MEDIA_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif", "bmp", "webp", "mp3", "mp4", "avi", "flv", "wmv"})

_BUILTIN = mimetypes.MimeTypes()  # built-in table only: the same answer on every host


def extension(name: str) -> str:
    """Lower-case extension of a file name (``报名表.DOCX`` -> ``docx``), "" without one."""
    base = (name or "").strip().rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def url_extension(url: str) -> str:
    """Extension of the last segment of a URL's path (query and fragment ignored)."""
    try:
        return extension(urlsplit(url).path)
    except ValueError:
        return ""


def mime_type(name: str) -> str:
    """The type of a file by its name's extension; ``application/octet-stream`` when unknown."""
    ext = extension(name)
    if not ext:
        return OCTET_STREAM
    return MIME_BY_EXT.get(ext) or _BUILTIN.guess_type("f." + ext)[0] or OCTET_STREAM


def is_generic(mime: str | None) -> bool:
    """A stored or served type that should be replaced by one guessed from the file name."""
    return (mime or "").split(";")[0].strip().lower() in GENERIC_MIME
