"""The sources file (sources.toml): which VSB columns to crawl, and how.

A bad file is reported as one line naming the file and the problem (:class:`SourcesError`); the CLI turns
that into exit code 2.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.parsing.model import Selectors

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
RESERVED_NAMES = {"all", "index", "opml", "healthz", "metrics", "search"}
INTERVAL_RE = re.compile(r"^\s*(\d+)\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)?\s*$", re.IGNORECASE)


class SourcesError(ValueError):
    """The sources file is missing or invalid; the message names the file and the problem."""


@dataclass(frozen=True)
class Schedule:
    """Either every ``seconds`` seconds or a five-field cron expression (Asia/Shanghai)."""

    seconds: int | None = None
    cron: str | None = None

    def describe(self) -> str:
        if self.cron:
            return f"cron {self.cron}"
        seconds = self.interval()
        return f"every {seconds // 60} min" if seconds % 60 == 0 else f"every {seconds} s"

    def interval(self) -> int:
        """Seconds between runs of an interval schedule (a cron schedule has none)."""
        if self.seconds is None:
            raise ValueError(f"schedule {self.cron!r} is a cron line, not an interval")
        return self.seconds

    @property
    def typical_seconds(self) -> int:
        """The interval, or an hour for cron schedules (used for cache lifetimes and grace times)."""
        return self.seconds or 3600


@dataclass(frozen=True)
class Source:
    name: str
    title: str
    list_url: str | None = None
    seed_url: str | None = None
    column: str | None = None
    schedule: Schedule | None = None
    selectors: Selectors = field(default_factory=Selectors)
    extra_domains: tuple[str, ...] = ()

    @property
    def domains(self) -> tuple[str, ...]:
        """Hosts the crawler may request: those of list_url and seed_url, plus ``domains``."""
        hosts: list[str] = []
        for url in (self.list_url, self.seed_url):
            host = urlsplit(url).hostname if url else None
            if host and host not in hosts:
                hosts.append(host)
        return tuple(hosts + [d for d in self.extra_domains if d not in hosts])

    @property
    def home_url(self) -> str:
        parts = urlsplit(self.list_url or self.seed_url or "")
        return f"{parts.scheme}://{parts.netloc}/"


def parse_schedule(raw: Any) -> Schedule:
    """``"30m"``, ``"2h"``, ``"45s"``, ``90`` (minutes) or a cron line such as ``"0 8-20 * * *"``."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 1:
            raise ValueError("schedule must be at least 1 minute")
        return Schedule(seconds=raw * 60)
    if not isinstance(raw, str):
        raise ValueError("schedule must be an interval like \"30m\" or a cron expression")
    m = INTERVAL_RE.match(raw)
    if m:
        n = int(m.group(1))
        unit = (m.group(2) or "m")[0].lower()
        seconds = n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        if seconds < 1:
            raise ValueError("schedule must be at least 1 second")
        return Schedule(seconds=seconds)
    if len(raw.split()) == 5:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(raw)
        except ValueError as exc:
            raise ValueError(f"bad cron expression {raw!r}: {exc}") from None
        return Schedule(cron=" ".join(raw.split()))
    raise ValueError(f"schedule {raw!r} is neither an interval (\"30m\", \"2h\") nor a 5-field cron expression")


def _http_url(value: Any, key: str) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
        raise ValueError(f"{key} must be an http(s) URL, got {value!r}")
    return value


SELECTOR_KEYS = {f.name for f in fields(Selectors)}
SOURCE_KEYS = {"name", "title", "list_url", "seed_url", "column", "schedule", "selectors", "domains"}


def source_from_table(table: dict[str, Any]) -> Source:
    unknown = set(table) - SOURCE_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
    name = table.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or name in RESERVED_NAMES:
        raise ValueError(f"name must be a lowercase slug (a-z, 0-9, -, _) and not reserved, got {name!r}")
    title = table.get("title", name)
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"source {name}: title must be a non-empty string")
    list_url = table.get("list_url")
    seed_url = table.get("seed_url")
    if list_url is None and seed_url is None:
        raise ValueError(f"source {name}: give list_url, or seed_url with column")
    try:
        list_url = _http_url(list_url, "list_url") if list_url is not None else None
        seed_url = _http_url(seed_url, "seed_url") if seed_url is not None else None
        schedule = parse_schedule(table["schedule"]) if "schedule" in table else None
    except ValueError as exc:
        raise ValueError(f"source {name}: {exc}") from None
    column = table.get("column")
    if column is not None and (not isinstance(column, str) or not column.strip()):
        raise ValueError(f"source {name}: column must be a non-empty string")
    sel = table.get("selectors", {})
    if not isinstance(sel, dict) or set(sel) - SELECTOR_KEYS or not all(isinstance(v, str) for v in sel.values()):
        raise ValueError(f"source {name}: selectors must map {', '.join(sorted(SELECTOR_KEYS))} to CSS strings")
    domains = table.get("domains", [])
    if not isinstance(domains, list) or not all(isinstance(d, str) and d for d in domains):
        raise ValueError(f"source {name}: domains must be a list of host names")
    return Source(name=name, title=title.strip(), list_url=list_url, seed_url=seed_url,
                  column=column.strip() if column else None, schedule=schedule,
                  selectors=Selectors(**sel), extra_domains=tuple(d.lower() for d in domains))


def load_sources(path: str | Path) -> dict[str, Source]:
    """All sources by name, in file order."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourcesError(f"{path}: sources file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesError(f"{path}: cannot read sources file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SourcesError(f"{path}: invalid TOML: {exc}") from None
    tables = data.get("source")
    if not isinstance(tables, list) or not tables:
        raise SourcesError(f"{path}: no [[source]] tables")
    sources: dict[str, Source] = {}
    for i, table in enumerate(tables, 1):
        try:
            src = source_from_table(table)
        except ValueError as exc:
            raise SourcesError(f"{path}: [[source]] #{i}: {exc}") from None
        if src.name in sources:
            raise SourcesError(f"{path}: [[source]] #{i}: duplicate name {src.name!r}")
        sources[src.name] = src
    return sources
