"""Settings: the application's configuration (from the environment) and Scrapy's settings.

Scrapy reads this module through ``scrapy.cfg``; the service and the CLI call :func:`load_config`, which
validates every value so that a bad one fails at start with one clear line instead of mid-crawl.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from crawler.cluster_config import CLUSTER_SPEC, check_cluster

PROJECT_URL = "https://github.com/ghu-feeds/ghu-feeds"
VERSION = "0.1.0"
TIMEZONE = "Asia/Shanghai"


class ConfigError(ValueError):
    """A configuration value is missing or invalid (the message names the variable)."""


def _whole_number(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _positive_int(name: str, raw: str) -> int:
    return _whole_number(name, raw, 1)


def _non_negative_int(name: str, raw: str) -> int:
    return _whole_number(name, raw, 0)


def _non_negative_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number >= 0, got {raw!r}")
    return value


def _optional_positive_int(name: str, raw: str) -> int | None:
    return _positive_int(name, raw) if raw.strip() else None


def _processes(name: str, raw: str) -> int:
    return _positive_int(name, raw) if raw.strip() else max(1, os.cpu_count() or 1)


def _port(name: str, raw: str) -> int:
    value = _non_negative_int(name, raw)
    if value > 65535:
        raise ConfigError(f"{name} must be a TCP port (0-65535), got {value}")
    return value


def _text(name: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{name} must not be empty")
    return raw.strip()


def _log_level(name: str, raw: str) -> str:
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"{name} must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {raw!r}")
    return level


def _url(name: str, raw: str) -> str:
    raw = raw.strip()
    if not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return raw if raw.endswith("/") else raw + "/"


def _media_mode(name: str, raw: str) -> str:
    mode = raw.strip().lower()
    if mode not in MEDIA_MODES:
        raise ConfigError(f"{name} must be one of {', '.join(MEDIA_MODES)}, got {raw!r}")
    return mode


_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3}


def _size(name: str, raw: str) -> int:
    """Bytes, with an optional K/M/G (binary) unit: "52428800", "50MB", "2 G"."""
    text = raw.strip().upper().replace(" ", "")
    number = text.rstrip("KMGB")
    unit = text[len(number):]
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"{name} must be a size such as 50MB or 52428800, got {raw!r}") from None
    if unit not in _SIZE_UNITS or not value >= 1 or value == float("inf"):
        raise ConfigError(f"{name} must be a size of at least 1 byte such as 50MB, got {raw!r}")
    return int(value * _SIZE_UNITS[unit])


def _optional_size(name: str, raw: str) -> int | None:
    return _size(name, raw) if raw.strip() else None


MEDIA_MODES = ("link", "keep", "serve")


def _database_url(name: str, raw: str) -> str:
    raw = raw.strip()
    if "://" not in raw:
        raise ConfigError(f"{name} must be an SQLAlchemy URL such as sqlite:///data/ghu.db, got {raw!r}")
    return raw


# name -> (default, parser, description); the README's configuration table mirrors this.
SPEC: dict[str, tuple[str, Callable[[str, str], Any], str]] = {
    "DATABASE_URL": ("sqlite:///data/ghu.db", _database_url,
                     "SQLAlchemy URL of the database (SQLite in WAL mode, or postgresql+psycopg://…)"),
    "SOURCES_FILE": ("sources.toml", _text, "TOML file listing the columns to crawl"),
    "FEEDS_DIR": ("data/feeds", _text, "folder the feeds, archive pages, index.html and opml.xml are written to"),
    "FEED_MAX_ITEMS": ("50", _positive_int, "articles in each subscription feed (older ones: archive pages)"),
    "ARCHIVE_PAGE_SIZE": ("50", _positive_int, "articles per RFC 5005 archive page"),
    "HTTP_HOST": ("127.0.0.1", _text, "address the feed server listens on"),
    "HTTP_PORT": ("8080", _port, "port the feed server listens on (0: any free port)"),
    "PUBLIC_URL": ("", lambda _name, raw: raw.strip(), "public base URL where FEEDS_DIR is served (default http://HTTP_HOST:HTTP_PORT/)"),
    "CRAWL_INTERVAL": ("60", _positive_int, "minutes between crawls of a source without its own schedule"),
    "CRAWL_DELAY": ("1", _non_negative_float,
                    "seconds between requests to the source (0 turns every delay and AutoThrottle off)"),
    "CRAWL_TIMEOUT": ("1800", _positive_int, "seconds a crawl may run before it is killed and recorded failed"),
    "CRAWL_PROCESSES": ("", _processes,
                        "crawl processes at most at once (default: the number of CPUs); a host is in one at a time"),
    "RECHECK_DAYS": ("30", _non_negative_int, "re-check articles first seen or published within this many days"),
    "RECHECK_INTERVAL": ("24", _non_negative_float, "hours between re-checks of one article (0: every run)"),
    "HEALTH_MAX_AGE": ("1440", _positive_int,
                       "minutes without a successful crawl after which /healthz answers 503"),
    "HEALTH_MAX_AGE_SECONDS": ("", _optional_positive_int,
                               "overrides HEALTH_MAX_AGE in seconds when set (tests, fast local mirrors)"),
    "DOWNLOAD_TIMEOUT": ("30", _positive_int, "seconds one request to the source may take, connect to last byte"),
    "LOG_LEVEL": ("INFO", _log_level, "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    **CLUSTER_SPEC,
    "MEDIA": ("link", _media_mode, "link: feeds link the source's images and files; keep: also keep copies "
              "in MEDIA_DIR; serve: keep copies and point the feeds at them (PUBLIC_URL/media/…)"),
    "MEDIA_DIR": ("data/media", _text, "folder the kept images and attachments are stored in"),
    "MEDIA_MAX_BYTES": ("50MB", _size, "largest image or attachment kept (bigger ones are refused)"),
    "MEDIA_MAX_TOTAL": ("", _optional_size, "stop keeping new copies (with a warning) once MEDIA_DIR holds this much"),
}


@dataclass(frozen=True)
class AppConfig:
    DATABASE_URL: str
    SOURCES_FILE: str
    FEEDS_DIR: str
    FEED_MAX_ITEMS: int
    ARCHIVE_PAGE_SIZE: int
    HTTP_HOST: str
    HTTP_PORT: int
    PUBLIC_URL: str
    CRAWL_INTERVAL: int
    CRAWL_DELAY: float
    CRAWL_TIMEOUT: int
    RECHECK_DAYS: int
    RECHECK_INTERVAL: float
    HEALTH_MAX_AGE: int
    LOG_LEVEL: str
    # Added later: defaults keep AppConfig(...) calls that predate them working.
    HEALTH_MAX_AGE_SECONDS: int | None = None
    DOWNLOAD_TIMEOUT: int = 30
    CRAWL_PROCESSES: int = 1
    CRAWL_BACKEND: str = "local"
    SCRAPYD_URLS: tuple[str, ...] = ()
    SCRAPYD_PROJECT: str = "ghu-feeds"
    SCRAPYD_USERNAME: str = field(default="", repr=False)
    SCRAPYD_PASSWORD: str = field(default="", repr=False)
    MEDIA: str = "link"
    MEDIA_DIR: str = "data/media"
    MEDIA_MAX_BYTES: int = 50 * 1024 * 1024
    MEDIA_MAX_TOTAL: int | None = None

    @property
    def feeds_path(self) -> Path:
        return Path(self.FEEDS_DIR)

    @property
    def keeps_media(self) -> bool:
        return self.MEDIA in ("keep", "serve")

    @property
    def health_max_age_minutes(self) -> float:
        """HEALTH_MAX_AGE, or HEALTH_MAX_AGE_SECONDS converted, when that is set."""
        if self.HEALTH_MAX_AGE_SECONDS is not None:
            return self.HEALTH_MAX_AGE_SECONDS / 60
        return self.HEALTH_MAX_AGE


def load_config(environ: Mapping[str, str] | None = None) -> AppConfig:
    """Read and validate every setting; raise :class:`ConfigError` naming the first bad one."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, (default, parse, _doc) in SPEC.items():
        raw = env.get(name)
        values[name] = parse(name, default if raw is None or raw == "" else raw)
    if values["PUBLIC_URL"]:
        values["PUBLIC_URL"] = _url("PUBLIC_URL", values["PUBLIC_URL"])
    else:
        values["PUBLIC_URL"] = f"http://{values['HTTP_HOST']}:{values['HTTP_PORT']}/"
    try:
        values.update(check_cluster(values))  # CRAWL_BACKEND, SCRAPYD_*: one message for a bad combination
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return AppConfig(**{f.name: values[f.name] for f in fields(AppConfig)})


def _lenient(name: str) -> Any:
    """Scrapy imports this module directly: fall back to the default rather than crash on import."""
    default, parse, _doc = SPEC[name]
    try:
        return parse(name, os.environ.get(name) or default)
    except ConfigError:
        return parse(name, default)


# ---------------------------------------------------------------- Scrapy settings
BOT_NAME = "ghu-feeds"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

USER_AGENT = f"ghu-feeds/{VERSION} (+{PROJECT_URL})"
ROBOTSTXT_OBEY = True

_delay = _lenient("CRAWL_DELAY")
DOWNLOAD_DELAY = _delay
DOWNLOAD_DELAY_JITTER = 0  # the delay is a floor we promise the source, not an average
CONCURRENT_REQUESTS = 32  # across hosts: one crawl process serves many hosts, each in its own slot
CONCURRENT_REQUESTS_PER_DOMAIN = 1 if _delay else 16
AUTOTHROTTLE_ENABLED = bool(_delay)
AUTOTHROTTLE_START_DELAY = _delay
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

DOWNLOAD_TIMEOUT = _lenient("DOWNLOAD_TIMEOUT")
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
REDIRECT_MAX_TIMES = 5
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # Scrapy 2.14+: no local code-execution endpoint during crawls
HTTPCACHE_ENABLED = False  # conditional requests use validators stored in the database instead
RETRY_BACKOFF_BASE = _delay  # seconds before the first retry, doubling after (0 with CRAWL_DELAY=0)
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "crawler.middlewares.OffsiteErrbackMiddleware": 50,  # Scrapy's, with reasons for the errbacks
    "crawler.middlewares.BackoffRetryMiddleware": 550,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
}
EXTENSIONS = {"crawler.middlewares.DelayAfterResponse": 0}  # the delay counts from a host's last response
ITEM_PIPELINES = {
    "crawler.media.MediaFilesPipeline": 200,  # MEDIA=keep|serve only (NotConfigured otherwise)
    "crawler.pipelines.StorePipeline": 300,
}
# MEDIA=keep|serve: failed media of earlier runs are tried again after the crawl's own start requests
SPIDER_MIDDLEWARES = {"crawler.media.MediaBacklogMiddleware": 900}
MEDIA_ALLOW_REDIRECTS = True  # download.jsp links may redirect to the file
# The pipeline is synchronous, so items of one response gain nothing from running "in parallel"; Scrapy's
# default (100) starts 100 asyncio tasks for every response (bench/crawl.py: 0.1-0.5 ms per page).
CONCURRENT_ITEMS = 1
# The check re-reads and re-parses a callback's source (inspect + ast) on every response, since its cache is
# keyed by the request's short-lived bound method (bench/crawl.py: 0.3-0.7 ms per page).
WARN_ON_GENERATOR_RETURN_VALUE = False
LOG_LEVEL = _lenient("LOG_LEVEL")
REQUEST_FINGERPRINTER_CLASS = "crawler.middlewares.SourceRequestFingerprinter"
FEED_EXPORT_ENCODING = "utf-8"
