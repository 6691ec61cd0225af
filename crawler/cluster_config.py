"""Settings of the crawl backend (CRAWL_BACKEND, SCRAPYD_*), checked as a whole by ``settings.load_config``.

Kept apart from settings.py so the cluster's rules live in one place; no project imports (settings.py
imports this module). Errors are plain ``ValueError``s naming the variable; load_config turns them into its
one-line ConfigError (exit 2 at start of every command).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

BACKENDS = ("local", "scrapyd")
PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _raw(_name: str, raw: str) -> str:
    return raw


# name -> (default, parser, description), merged into settings.SPEC; validation is in check_cluster.
CLUSTER_SPEC: dict[str, tuple[str, Callable[[str, str], Any], str]] = {
    "CRAWL_BACKEND": ("local", _raw, "local (crawl processes on this machine) or scrapyd (crawl on Scrapyd nodes)"),
    "SCRAPYD_URLS": ("", _raw, "comma-separated base URLs of the Scrapyd nodes (CRAWL_BACKEND=scrapyd)"),
    "SCRAPYD_PROJECT": ("ghu-feeds", _raw, "Scrapyd project name the nodes run this project's spider under"),
    "SCRAPYD_USERNAME": ("", _raw, "basic-auth user of the nodes (with SCRAPYD_PASSWORD; never logged or shown)"),
    "SCRAPYD_PASSWORD": ("", _raw, "basic-auth password of the nodes (never logged or shown)"),
}


def node_urls(raw: str) -> tuple[str, ...]:
    """``SCRAPYD_URLS`` as normalized base URLs (trailing slash), in the given order, no duplicates."""
    urls: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        parts = urlsplit(part)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"SCRAPYD_URLS: {part!r} is not an http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError("SCRAPYD_URLS must not contain credentials: use SCRAPYD_USERNAME and SCRAPYD_PASSWORD")
        if parts.query or parts.fragment:
            raise ValueError(f"SCRAPYD_URLS: {part!r} must be a base URL without query or fragment")
        url = part if part.endswith("/") else part + "/"
        if url in urls:
            raise ValueError(f"SCRAPYD_URLS lists {url} twice")
        urls.append(url)
    return tuple(urls)


def check_cluster(values: dict[str, Any]) -> dict[str, Any]:
    """Validate the backend settings together (and with DATABASE_URL); return their normalized values."""
    backend = str(values.get("CRAWL_BACKEND", "local")).strip().lower()
    if backend not in BACKENDS:
        raise ValueError(f"CRAWL_BACKEND must be one of {', '.join(BACKENDS)}, got {values.get('CRAWL_BACKEND')!r}")
    project = str(values.get("SCRAPYD_PROJECT", "ghu-feeds")).strip()
    if not PROJECT_RE.match(project):
        raise ValueError(f"SCRAPYD_PROJECT must be a project name (letters, digits, . _ -), got {project!r}")
    username = str(values.get("SCRAPYD_USERNAME", ""))
    password = str(values.get("SCRAPYD_PASSWORD", ""))
    if bool(username) != bool(password):
        raise ValueError("SCRAPYD_USERNAME and SCRAPYD_PASSWORD must be set together")
    if ":" in username:
        raise ValueError("SCRAPYD_USERNAME must not contain ':'")
    urls = node_urls(str(values.get("SCRAPYD_URLS", "")))
    if backend == "scrapyd":
        if not urls:
            raise ValueError("CRAWL_BACKEND=scrapyd needs SCRAPYD_URLS (comma-separated base URLs of the nodes)")
        if str(values.get("DATABASE_URL", "")).strip().lower().startswith("sqlite"):
            raise ValueError("CRAWL_BACKEND=scrapyd needs a database all nodes reach (DATABASE_URL=postgresql://…); "
                             "nodes can't share an SQLite file")
    return {"CRAWL_BACKEND": backend, "SCRAPYD_URLS": urls, "SCRAPYD_PROJECT": project,
            "SCRAPYD_USERNAME": username, "SCRAPYD_PASSWORD": password}
