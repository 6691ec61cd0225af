"""Imported by the forkserver (crawler.runner.PRELOAD): the modules a crawl would import lazily.

Scrapy loads its download handlers, middlewares and extensions by dotted path when a crawler starts, and
db.engine imports Alembic when the spider opens the database; importing them once here saves every crawl
child that work. Only imports: no crawler, no reactor (a reactor installed here would break every crawl).
"""

from __future__ import annotations

import contextlib
import sys

from scrapy.settings import Settings
from scrapy.utils.misc import load_object
from scrapy.utils.project import get_project_settings


def _paths(settings: Settings) -> set[str]:
    paths: set[str] = set()
    paths.update(p for p in settings.getwithbase("DOWNLOAD_HANDLERS").values() if isinstance(p, str))
    for name in ("DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES", "EXTENSIONS", "ITEM_PIPELINES"):
        paths.update(p for p, order in settings.getwithbase(name).items() if isinstance(p, str) and order is not None)
    for name in ("SCHEDULER", "DUPEFILTER_CLASS", "STATS_CLASS", "LOG_FORMATTER", "TWISTED_DNS_RESOLVER",
                 "ROBOTSTXT_PARSER", "SCHEDULER_PRIORITY_QUEUE", "SCHEDULER_MEMORY_QUEUE",
                 "SCHEDULER_DISK_QUEUE", "DOWNLOADER", "REQUEST_FINGERPRINTER_CLASS"):
        value = settings.get(name)
        if isinstance(value, str):
            paths.add(value)
    return paths


def preload() -> None:
    for path in sorted(_paths(get_project_settings())):
        with contextlib.suppress(Exception):  # an optional component whose dependency is missing
            load_object(path)
    import alembic.command  # noqa: F401 - db.engine.upgrade() at every crawl start
    import alembic.config  # noqa: F401

    if "twisted.internet.reactor" in sys.modules:  # would make every forked crawl fail to start
        raise RuntimeError("preloading installed a Twisted reactor; remove the module that did it")


preload()
