"""URL identity for VSB articles.

One article is reachable as ``/info/<treeid>/<newsid>.htm`` and as dynamic ``*.jsp?...wbtreeid=&wbnewsid=``
forms; dedupe and storage need one spelling, and the static one is what the site links publicly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qs, urldefrag, urlsplit

from w3lib.url import canonicalize_url

_INFO_PATH = re.compile(r"/info/(\d+)/(\d+)\.htm$", re.I | re.A)
_DIGITS = re.compile(r"^\d+$", re.A)


def _dynamic_to_static(url: str) -> str | None:
    """``/content.jsp?urltype=news.NewsContentUrl&wbtreeid=T&wbnewsid=N`` (or any template ``.jsp``
    carrying both ids) -> ``<scheme>://<host>/info/T/N.htm``."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname or not parts.path.lower().endswith(".jsp"):
        return None
    query = {k.lower(): v for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    tree, news = query.get("wbtreeid", [""])[0].strip(), query.get("wbnewsid", [""])[0].strip()
    urltype = query.get("urltype", [""])[0].lower()
    if not (_DIGITS.match(tree) and _DIGITS.match(news)):
        return None
    if urltype and "newscontenturl" not in urltype:
        return None  # e.g. news.DownloadAttachUrl: a file, not the article
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme.lower()}://{host}/info/{int(tree)}/{int(news)}.htm"


# Static article URLs in the spelling canonical_article_url produces for them (lower-case ASCII host
# without a port's leading zeros, nothing to quote, no dot segment, query or fragment): w3lib's
# canonicalize_url returns them unchanged, so list pages skip it for every entry (and newsid_of again).
_HOST_LABEL = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_ALREADY_CANONICAL = re.compile(
    rf"https?://{_HOST_LABEL}(?:\.{_HOST_LABEL})*(?::[1-9][0-9]{{0,4}})?/info/[0-9]+/(?P<news>[0-9]+)\.htm\Z")


def canonical_article_url(url: str) -> str:
    """One spelling per page: dynamic VSB article URLs mapped to ``/info/T/N.htm``, fragments dropped,
    other URLs through w3lib's canonicalisation (a no-op for ordinary ``/info/`` links). Never raises."""
    if not isinstance(url, str):
        return ""
    url = url.strip()
    if _ALREADY_CANONICAL.match(url):
        return url
    try:
        static = _dynamic_to_static(url)
        if static:
            return static
        parts = urlsplit(url)
        if not (parts.scheme and parts.netloc):
            return urldefrag(url)[0]  # w3lib would invent a "/" path for relative input
        return canonicalize_url(url, keep_fragments=False)
    except (ValueError, TypeError, UnicodeError):
        return url.split("#", 1)[0]  # urldefrag raises on the same malformed hosts (e.g. "[%")


def newsid_of(url: str) -> int | None:
    """The VSB wbnewsid of an article URL (static or dynamic form), else None."""
    try:
        canonical = canonical_article_url(url)
        fast = _ALREADY_CANONICAL.match(canonical)
        if fast:
            return int(fast.group("news"))
        path = urlsplit(canonical).path
    except ValueError:
        return None
    match = _INFO_PATH.search(path)
    return int(match.group(2)) if match else None


def is_on_domains(url: str, domains: Iterable[str]) -> bool:
    """True when the URL's host is one of ``domains`` or a subdomain of one (``ghu.edu.cn`` covers
    ``zzb.ghu.edu.cn``); never matches on a mere suffix like ``evilghu.edu.cn``."""
    try:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    except (ValueError, AttributeError):
        return False
    if not host:
        return False
    for domain in domains:
        domain = (domain or "").strip().strip(".").lower()
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False
