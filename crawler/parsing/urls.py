"""URL identity for VSB articles.

One article is reachable as ``/info/<treeid>/<newsid>.htm`` and as dynamic ``*.jsp?...wbtreeid=&wbnewsid=``
forms, and each of those through many spellings (a fragment, a query on the static page, ``./`` and ``../``
segments, an upper-case host, the default port). Dedupe and storage need one spelling, and the static one
is what the site links publicly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qs, urldefrag, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

from crawler import vsb

_DIGITS = re.compile(r"^\d+$", re.A)
DEFAULT_PORTS = {"http": 80, "https": 443}


def _host(scheme: str, hostname: str, port: int | None) -> str:
    """``host[:port]`` for a URL: lower-case (as urlsplit gives it), IPv6 in brackets, no default port."""
    host = f"[{hostname}]" if ":" in hostname else hostname
    return host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"


def _dynamic_to_static(url: str) -> str | None:
    """``/content.jsp?urltype=news.NewsContentUrl&wbtreeid=T&wbnewsid=N`` (or any template ``.jsp``
    carrying both ids) -> ``<scheme>://<host>/info/T/N.htm``."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname or not parts.path.lower().endswith(".jsp"):
        return None
    query = {k.lower(): v for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    tree, news = query.get(vsb.TREE_PARAM, [""])[0].strip(), query.get(vsb.NEWS_PARAM, [""])[0].strip()
    urltype = query.get(vsb.URLTYPE_PARAM, [""])[0].lower()
    if not (_DIGITS.match(tree) and _DIGITS.match(news)):
        return None
    if urltype and vsb.ARTICLE_URLTYPE not in urltype:
        return None  # e.g. news.DownloadAttachUrl: a file, not the article
    scheme = parts.scheme.lower()
    return vsb.static_article_url(scheme, _host(scheme, parts.hostname, parts.port), tree, news)


# Static article URLs in the spelling canonical_article_url produces for them (lower-case ASCII host
# without a default port or a port's leading zeros, nothing to quote, no dot segment, query or fragment):
# w3lib's canonicalize_url returns them unchanged, so list pages skip it for every entry (and newsid_of
# again). The default port is checked on the match.
_HOST_LABEL = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_ALREADY_CANONICAL = re.compile(
    rf"(?P<scheme>https?)://{_HOST_LABEL}(?:\.{_HOST_LABEL})*(?::(?P<port>[1-9][0-9]{{0,4}}))?"
    r"/info/[0-9]+/(?P<news>[0-9]+)\.htm\Z")


_DEFAULT_PORT_TEXT = {scheme: str(port) for scheme, port in DEFAULT_PORTS.items()}


def _fast(url: str) -> re.Match[str] | None:
    match = _ALREADY_CANONICAL.match(url)
    if match is None:
        return None
    port = match["port"]  # no leading zero (the regex): comparing the text is exact
    return None if port and port == _DEFAULT_PORT_TEXT[match["scheme"]] else match


def canonical_article_url(url: str) -> str:
    """One spelling per page: dynamic VSB article URLs mapped to ``/info/T/N.htm``; other URLs through
    w3lib's canonicalisation (lower-case scheme and host, dot segments resolved, fragment dropped, query
    sorted), without the default port, and without any query on a static ``/info/T/N.htm`` page (a static
    file ignores it). Relative input only loses its fragment. Never raises."""
    if not isinstance(url, str):
        return ""
    url = url.strip()
    if _fast(url):
        return url
    try:
        static = _dynamic_to_static(url)
        if static:
            return static
        parts = urlsplit(url)
        if not (parts.scheme and parts.netloc):
            return urldefrag(url)[0]  # w3lib would invent a "/" path for relative input
        return _tidy(canonicalize_url(url, keep_fragments=False))
    except (ValueError, TypeError, UnicodeError):
        return url.split("#", 1)[0]  # urldefrag raises on the same malformed hosts (e.g. "[%")


def _tidy(url: str) -> str:
    """What canonicalize_url leaves: the default port, and a query on a static article page."""
    parts = urlsplit(url)
    scheme, netloc, query = parts.scheme, parts.netloc, parts.query
    try:
        port = parts.port
    except ValueError:  # out of range: not a URL anything can fetch; keep it as it is
        port = None
    if port is not None and DEFAULT_PORTS.get(scheme) == port:
        netloc = netloc.rsplit(":", 1)[0]
    if query and vsb.ARTICLE_PATH.search(parts.path):
        query = ""
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((scheme, netloc, parts.path, query, ""))


def newsid_of(url: str) -> int | None:
    """The VSB wbnewsid of an article URL (static or dynamic form), else None."""
    try:
        canonical = canonical_article_url(url)
        fast = _fast(canonical)
        if fast:
            return int(fast.group("news"))
        path = urlsplit(canonical).path
    except ValueError:
        return None
    match = vsb.ARTICLE_PATH.search(path)
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
