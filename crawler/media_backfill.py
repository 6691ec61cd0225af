"""``python scheduler.py media --backfill``: keep copies of the media of articles stored before MEDIA=keep.

Runs the media spider (crawler/spiders/media.py) in this process, then prints per source what is kept.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from db import media as media_db
from db.engine import open_database
from settings import AppConfig


def backfill_media(cfg: AppConfig, names: list[str], all_missing: bool = True, out: TextIO = sys.stdout) -> int:
    """0 when the run finished (single files may have failed: they are retried later), 2 when MEDIA=link."""
    if not cfg.keeps_media:
        print("error: MEDIA=link keeps no copies; set MEDIA=keep or MEDIA=serve", file=sys.stderr)
        return 2
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "settings")
    from scrapy.crawler import CrawlerProcess
    from scrapy.utils.project import get_project_settings

    from crawler.spiders.media import MediaSpider

    open_database(cfg.DATABASE_URL)[0].dispose()  # the schema is up to date before the crawl starts
    process = CrawlerProcess(get_project_settings())
    process.crawl(MediaSpider, sources=",".join(names), backfill="1" if all_missing else "0")
    process.start()
    engine, factory = open_database(cfg.DATABASE_URL)
    with factory() as s:
        stats = media_db.media_stats(s)
    engine.dispose()
    for name in names:
        st = stats.get(name)
        if st is not None:
            print(f"{name}: {st.files} files kept ({st.bytes} bytes), {st.failures} failed (retried later), "
                  f"{st.refused} refused", file=out)
    return 0
