"""Build every published file in memory from one database snapshot: ``{relative path: bytes}``.

Pure functions of (snapshot, config): the same database state gives byte-identical files, which is what
lets :mod:`feeds.publish` skip unchanged files and keep their mtimes (and HTTP validators) stable.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from feeds.atom import archive_files, subscription_atom
from feeds.charts import charts_block
from feeds.index_page import index_document
from feeds.jsonfeed import subscription_json
from feeds.media_links import with_links
from feeds.opml import opml_document
from feeds.plan import Entry, FeedPlan, Urls, column_entries, combined_plan, source_plan
from feeds.query import Snapshot, load_snapshot
from feeds.rss import subscription_rss
from feeds.source_page import source_document
from settings import AppConfig

LATEST_ON_INDEX = 20


def plans_for(snapshot: Snapshot, entries: dict[str, list[Entry]], config: AppConfig) -> list[FeedPlan]:
    """One plan per column (by name), then the combined "all" feed when there are two columns or more."""
    urls = Urls.of(config.PUBLIC_URL)
    plans = [source_plan(s, entries[s.name], urls, config.FEED_MAX_ITEMS, config.ARCHIVE_PAGE_SIZE)
             for s in snapshot.sources]
    if len(snapshot.sources) >= 2:
        plans.append(combined_plan(snapshot, entries, urls, config.FEED_MAX_ITEMS))
    return plans


def build_files(snapshot: Snapshot, config: AppConfig) -> dict[str, bytes]:
    """Every file under FEEDS_DIR, keyed by its POSIX path relative to FEEDS_DIR."""
    urls = Urls.of(config.PUBLIC_URL)
    entries = {s.name: with_links(s, column_entries(s), urls, config.MEDIA) for s in snapshot.sources}
    plans = plans_for(snapshot, entries, config)
    files: dict[str, bytes] = {}
    for plan in plans:
        files[f"{plan.slug}.xml"] = subscription_rss(plan, urls)
        files[f"{plan.slug}.atom"] = subscription_atom(plan, urls)
        files[f"{plan.slug}.json"] = subscription_json(plan, urls)
        files.update(archive_files(plan, urls))
    latest = combined_plan(snapshot, entries, urls, LATEST_ON_INDEX).entries if snapshot.sources else ()
    runs = {s.name: s.last_run for s in snapshot.sources}
    charts = {s.name: charts_block([a.published for a in s.articles], list(s.runs), s.created_at)
              for s in snapshot.sources}
    by_slug = {p.slug: p for p in plans}
    for src in snapshot.sources:
        files[f"{src.name}.html"] = source_document(src, by_slug[src.name], urls, charts[src.name])
    files["index.html"] = index_document(plans, latest, runs, urls, charts)
    files["opml.xml"] = opml_document(plans, urls, "订阅源 · Feeds")
    return files


def build_from_database(session_factory: sessionmaker[Session], config: AppConfig) -> dict[str, bytes]:
    """Read one snapshot and build every file without writing anything (tests, benchmarks, dry runs)."""
    with session_factory() as session:
        snapshot = load_snapshot(session)
        session.rollback()
    return build_files(snapshot, config)
