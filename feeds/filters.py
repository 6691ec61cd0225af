"""RSSHub's filter query parameters on published feeds: ``?filter=…&limit=…`` and friends.

Why RSSHub's names and meanings: subscribers already know them. Why filter the published bytes rather than
query the database: a feed URL's answer stays a function of the file the publisher wrote (archive pages and
the combined feed included), so the server needs no database for it and a filtered answer can be cached per
(file version, normalized query). Patterns run on google-re2, a linear-time engine: no pattern can stall
the server, and constructs that need backtracking (backreferences, look-around) are refused with 400.

Semantics (as RSSHub): ``filter`` keeps items whose title or description matches; ``filter_title``,
``filter_description``, ``filter_author`` must each match their field; ``filter_time`` keeps items published
within that many seconds; ``filterout`` drops items whose title or description matches, ``filterout_*``
drop on their field; ``filter_case_sensitive`` (default true) applies to every pattern; ``limit`` keeps the
first N items left. The description is the item's summary and full text together.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

import re2
from lxml import etree

PATTERN_PARAMS = ("filter", "filter_title", "filter_description", "filter_author",
                  "filterout", "filterout_title", "filterout_description", "filterout_author")
PARAMS = frozenset((*PATTERN_PARAMS, "limit", "filter_time", "filter_case_sensitive"))
MAX_PATTERN = 1000
MAX_LIMIT = 10_000
MAX_TIME = 100 * 366 * 86400
#: Results with filter_time depend on the clock: their cache key changes every this many seconds.
TIME_BUCKET = 60

_NS = {"atom": "http://www.w3.org/2005/Atom", "content": "http://purl.org/rss/1.0/modules/content/",
       "dc": "http://purl.org/dc/elements/1.1/"}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


class FilterError(ValueError):
    """A bad parameter value; ``str()`` is the one-line reason sent with the 400."""


@dataclass(frozen=True)
class FilterSpec:
    key: tuple[tuple[str, str], ...]  # the normalized query: known, non-empty parameters, sorted
    patterns: dict[str, Any]  # parameter name -> compiled re2 pattern
    limit: int | None
    window: int | None  # filter_time seconds

    def cache_key(self, now: float) -> tuple[Any, ...]:
        return self.key if self.window is None else (*self.key, int(now // TIME_BUCKET))


def feed_kind(path: str) -> str | None:
    """'rss', 'atom' or 'json' for a URL path the filters apply to, else None."""
    if path.endswith(".atom"):
        return "atom"
    if path.endswith(".json"):
        return "json"
    if path.endswith(".xml") and path != "/opml.xml":
        return "rss"
    return None


def mentions_filters(query_string: bytes) -> bool:
    """Cheap test before parsing: most feed requests carry no query or only tracking parameters."""
    return b"filter" in query_string or b"limit" in query_string


def parse_query(query_string: bytes) -> FilterSpec | None:
    """The filters a query asks for, None when it asks for none; FilterError for a bad value."""
    try:
        text = query_string.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise FilterError("the query string is not valid UTF-8") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in PARAMS and value != "":  # an empty value means "not set", as in RSSHub
            values[name] = value  # the last one wins
    case = values.get("filter_case_sensitive", "true").lower()
    if case not in ("true", "false", "1", "0"):
        raise FilterError("filter_case_sensitive must be true or false")
    case_sensitive = case in ("true", "1")
    limit = _int(values, "limit", 1, MAX_LIMIT)
    window = _int(values, "filter_time", 1, MAX_TIME)
    patterns = {name: _compile(name, values[name], case_sensitive) for name in PATTERN_PARAMS if name in values}
    if not patterns and limit is None and window is None:
        return None
    if patterns and not case_sensitive:
        values["filter_case_sensitive"] = "false"
    else:
        values.pop("filter_case_sensitive", None)
    return FilterSpec(tuple(sorted(values.items())), patterns, limit, window)


def _int(values: dict[str, str], name: str, low: int, high: int) -> int | None:
    raw = values.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise FilterError(f"{name} must be a whole number from {low} to {high}")
    values[name] = str(int(raw))  # "007" and "7" are one cache entry
    return int(raw)


def _compile(name: str, pattern: str, case_sensitive: bool) -> Any:
    if len(pattern) > MAX_PATTERN:
        raise FilterError(f"{name} is longer than {MAX_PATTERN} characters")
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise FilterError(f"{name} is not a valid RE2 regular expression: {detail}") from None


@dataclass
class _Item:
    title: str
    description: str
    authors: list[str]
    date: datetime | None


def _matches(spec: FilterSpec, item: _Item, now: float) -> bool:
    p = spec.patterns
    both = (item.title, item.description)
    if "filter" in p and not any(p["filter"].search(t) for t in both):
        return False
    if "filter_title" in p and not p["filter_title"].search(item.title):
        return False
    if "filter_description" in p and not p["filter_description"].search(item.description):
        return False
    if "filter_author" in p and not any(p["filter_author"].search(a) for a in item.authors):
        return False
    if spec.window is not None and item.date is not None and now - item.date.timestamp() > spec.window:
        return False
    if "filterout" in p and any(p["filterout"].search(t) for t in both):
        return False
    if "filterout_title" in p and p["filterout_title"].search(item.title):
        return False
    if "filterout_description" in p and p["filterout_description"].search(item.description):
        return False
    return not ("filterout_author" in p and any(p["filterout_author"].search(a) for a in item.authors))


def _keep(spec: FilterSpec, items: list[Any], view: Callable[[Any], _Item], now: float) -> set[int]:
    """Indexes of the items that stay, in feed order, at most ``limit`` of them."""
    kept: set[int] = set()
    for i, item in enumerate(items):
        if spec.limit is not None and len(kept) >= spec.limit:
            break
        if _matches(spec, view(item), now):
            kept.add(i)
    return kept


def apply(spec: FilterSpec, kind: str, raw: bytes, now: float | None = None) -> bytes:
    """The feed ``raw`` (as published) with only the items ``spec`` keeps; FilterError if it is not a feed."""
    now = time.time() if now is None else now
    try:
        if kind == "json":
            return _apply_json(spec, raw, now)
        return _apply_xml(spec, kind, raw, now)
    except (ValueError, etree.XMLSyntaxError) as exc:
        if isinstance(exc, FilterError):
            raise
        raise FilterError("this file is not a feed that can be filtered") from None


def _date(text: str | None, rfc822: bool) -> datetime | None:
    if not text:
        return None
    try:
        return parsedate_to_datetime(text.strip()) if rfc822 else datetime.fromisoformat(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _text(el: Any, path: str) -> str:
    return "\n".join(x.text or "" for x in el.iterfind(path, _NS))


def _rss_item(el: Any) -> _Item:
    return _Item(
        title=_text(el, "title"),
        description=_text(el, "description") + "\n" + _text(el, "content:encoded"),
        authors=[x.text or "" for x in (*el.iterfind("dc:creator", _NS), *el.iterfind("author"))],
        date=_date(el.findtext("pubDate"), rfc822=True),
    )


def _atom_item(el: Any) -> _Item:
    return _Item(
        title=_text(el, "atom:title"),
        description=_text(el, "atom:summary") + "\n" + _text(el, "atom:content"),
        authors=[x.text or "" for x in el.iterfind("atom:author/atom:name", _NS)],
        date=_date(el.findtext("atom:published", namespaces=_NS) or el.findtext("atom:updated", namespaces=_NS),
                   rfc822=False),
    )


def _apply_xml(spec: FilterSpec, kind: str, raw: bytes, now: float) -> bytes:
    root = etree.fromstring(raw, _PARSER)
    if kind == "rss":
        channel = root.find("channel")
        if root.tag != "rss" or channel is None:
            raise FilterError("this file is not a feed that can be filtered")
        items, view = channel.findall("item"), _rss_item
    else:
        if root.tag != "{http://www.w3.org/2005/Atom}feed":
            raise FilterError("this file is not a feed that can be filtered")
        items, view = root.findall("atom:entry", _NS), _atom_item
    kept = _keep(spec, items, view, now)
    for i, el in enumerate(items):
        if i not in kept:
            _remove(el)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return out + b"\n"


def _remove(el: Any) -> None:
    """Drop an element; lxml drops its tail (the whitespace after it) with it."""
    el.getparent().remove(el)


def _json_authors(item: dict[str, Any]) -> Iterator[str]:
    for author in item.get("authors") or []:
        if isinstance(author, dict) and isinstance(author.get("name"), str):
            yield author["name"]
    author = item.get("author")
    if isinstance(author, dict) and isinstance(author.get("name"), str):
        yield author["name"]


def _json_item(item: Any) -> _Item:
    if not isinstance(item, dict):
        return _Item("", "", [], None)
    texts = [item.get(k) for k in ("summary", "content_html", "content_text")]
    return _Item(
        title=item.get("title") if isinstance(item.get("title"), str) else "",
        description="\n".join(t for t in texts if isinstance(t, str)),
        authors=list(_json_authors(item)),
        date=_date(item.get("date_published") if isinstance(item.get("date_published"), str) else None,
                   rfc822=False),
    )


def _apply_json(spec: FilterSpec, raw: bytes, now: float) -> bytes:
    doc = json.loads(raw)
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise FilterError("this file is not a feed that can be filtered")
    items = doc["items"]
    kept = _keep(spec, items, _json_item, now)
    doc["items"] = [item for i, item in enumerate(items) if i in kept]
    return (json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")
