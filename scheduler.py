"""ghu-feeds service entry point: schedule crawls, publish feeds, serve them.

    python scheduler.py                 run the service (scheduler + feed server)
    python scheduler.py --once          crawl every source once, publish, exit (1 if any crawl failed)
    python scheduler.py status          a table of sources: articles, last crawl, result, next run
    python scheduler.py publish         rebuild the feeds from the database
    python scheduler.py media --backfill  keep copies of the media of articles stored before MEDIA=keep
    python scheduler.py add URL [--name NAME] [--column NAME] [--dry-run]   add a VSB column to the sources file
    python scheduler.py add URL --all [--dry-run]   add every list column in the site's navigation
    python scheduler.py node [--bind ADDR] [--port N] [--dir DIR]  run a Scrapyd crawl node (CRAWL_BACKEND=scrapyd)

This module only orchestrates: crawling is in ``crawler/``, storage in ``db/``, feeds in ``feeds/``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from crawler import scrapyd_node
from crawler.backends import STOP_GRACE_SECONDS, make_backend
from crawler.runner import CrawlOutcome
from crawler.shards import host_of
from crawler.sources import Schedule, Source, SourcesError, load_sources
from db import store
from db.engine import open_database, transaction
from db.models import utcnow
from settings import AppConfig, ConfigError, load_config

logger = logging.getLogger("ghu-feeds")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def setup_logging(level: str) -> None:
    # the same line format as the crawl children (Scrapy's), so one log reads as one
    logging.basicConfig(level=level, format="%(asctime)s [%(name)s] %(levelname)s: %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S", force=True)
    logging.getLogger("apscheduler").setLevel(max(logging.getLevelName(level), logging.WARNING))


def schedule_of(source: Source, cfg: AppConfig) -> Schedule:
    return source.schedule or Schedule(seconds=cfg.CRAWL_INTERVAL * 60)


def make_trigger(schedule: Schedule) -> Any:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone=SHANGHAI)
    # No jitter: a random delay per job spread sources that fall due together over up to a minute, and the
    # dispatcher then started a crawl process (and fetched robots.txt again) for every straggler.
    return IntervalTrigger(seconds=schedule.interval(), timezone=SHANGHAI)


def next_run_time(schedule: Schedule, last_start: datetime | None, now: datetime) -> datetime:
    """Due now if never crawled or the last crawl is older than the interval; else keep its rhythm."""
    if last_start is None:
        return now
    if schedule.cron:
        due = make_trigger(schedule).get_next_fire_time(None, last_start.astimezone(SHANGHAI))
    else:
        due = last_start + timedelta(seconds=schedule.interval())
    return now if due is None or due <= now else due


class Service:
    """The running service's shared state: database, sources, crawl backend, publishing, the feed server."""

    def __init__(self, cfg: AppConfig, sources: dict[str, Source]) -> None:
        self.cfg = cfg
        self.sources = sources
        self.engine, self.factory = open_database(cfg.DATABASE_URL)
        self.source_ids: dict[str, int] = {}
        with transaction(self.factory) as s:
            for src in sources.values():
                self.source_ids[src.name] = store.sync_source(s, src.name, src.title, src.list_url).id
        self.backend = make_backend(cfg, self.factory)
        self.stop = threading.Event()
        self.publish_lock = threading.Lock()
        self.server: Any = None

    # -- work
    def crawl_shard(self, shard: list[Source], publish: bool = True) -> list[CrawlOutcome]:
        """One crawl process (or job) for these sources; publish when it changed something."""
        started = time.monotonic()
        outcomes = self.backend.run(shard, self.stop)
        published = publish and self.needs_publishing(shard, outcomes) and not self.stop.is_set()
        if published:
            self.publish()
        failed = sum(o.status != "ok" for o in outcomes)
        # the line a cycle ends with (also what bench/scale.py waits for)
        logger.info("crawled %d source%s in %.1f s: %d ok, %d failed, %d changed%s", len(shard),
                    "" if len(shard) == 1 else "s", time.monotonic() - started, len(outcomes) - failed, failed,
                    sum(o.changed for o in outcomes), "; feeds published" if published else "")
        return outcomes

    def needs_publishing(self, sources: list[Source], outcomes: list[CrawlOutcome]) -> bool:
        """After a crawl that changed something, or when a feed is missing (so an idle poll writes nothing)."""
        missing = any(not (self.cfg.feeds_path / f"{src.name}.xml").exists() for src in sources)
        return missing or any(o.changed for o in outcomes)

    def crawl_all(self) -> list[CrawlOutcome]:
        """Every source at once, in shards by host running side by side (``--once``)."""
        shards = self.backend.shards(list(self.sources.values()), self.cfg.CRAWL_PROCESSES)
        with ThreadPoolExecutor(max_workers=max(1, len(shards))) as pool:
            results = list(pool.map(lambda shard: self.crawl_shard(shard, publish=False), shards))
        return [o for outcomes in results for o in outcomes]

    def publish(self) -> Any:
        from feeds.publish import publish

        with self.publish_lock:
            result = publish(self.factory, self.cfg)
            if self.server is not None:
                self.server.reload()
        return result

    def last_start(self, name: str) -> datetime | None:
        with self.factory() as s:
            run = store.last_run(s, self.source_ids[name])
            return None if run is None else run.started_at

    # -- service
    def start_server(self) -> tuple[str, int]:
        from feeds.media_app import service_routes
        from feeds.server import FeedServer
        from feeds.status import health, metrics

        names = list(self.sources)
        shortest = min(schedule_of(s, self.cfg).typical_seconds for s in self.sources.values())
        self.server = FeedServer(
            self.cfg.FEEDS_DIR, self.cfg.HTTP_HOST, self.cfg.HTTP_PORT,
            cache_max_age=max(1, min(1800, shortest // 2)),  # half the crawl interval, at most 30 min
            health=lambda: health(self.factory, self.cfg.health_max_age_minutes, names),
            metrics=lambda: metrics(self.factory) + self.backend.metrics(),
            session_factory=self.factory, public_url=self.cfg.PUBLIC_URL,  # /search
            extra_routes=service_routes(self.cfg, self.factory),  # /media/… when MEDIA=keep or serve
        )
        return self.server.start_in_thread()

    def schedule(self, dispatcher: Dispatcher) -> Any:
        """One job per source, rebuilt at every start from sources.toml and the crawl history (memory store)."""
        from apscheduler.executors.pool import ThreadPoolExecutor as JobThreads
        from apscheduler.schedulers.background import BackgroundScheduler

        sched = BackgroundScheduler(executors={"default": JobThreads(max_workers=2)},
                                    job_defaults={"coalesce": True, "max_instances": 1}, timezone=SHANGHAI)
        now = utcnow()
        for name, src in self.sources.items():
            sch = schedule_of(src, self.cfg)
            when = next_run_time(sch, self.last_start(name), now)
            sched.add_job(dispatcher.submit, make_trigger(sch), args=[name], id=f"crawl:{name}",
                          name=f"crawl {name}", next_run_time=when,
                          misfire_grace_time=max(1, sch.typical_seconds // 2))
            logger.info("%s: %s; next crawl at %s", name, sch.describe(), when.astimezone(SHANGHAI).isoformat())
        sched.start()
        return sched


class Dispatcher:
    """Crawls what falls due: sources due together in one batch, a host never in two crawls at once.

    Due sources wait ``COALESCE_SECONDS`` after the last one fell due, so that jobs firing together share a
    crawl; then the sources whose hosts are idle are split into shards by the backend (at most the free
    ``CRAWL_PROCESSES`` slots) and each shard is crawled in its own thread. A source whose host is busy waits
    for that crawl to end.
    """

    COALESCE_SECONDS = 0.5

    def __init__(self, service: Service) -> None:
        self.service = service
        self.pending: dict[str, None] = {}  # due sources, in the order they fell due
        self.busy_hosts: set[str] = set()
        self.running = 0
        self.last_due = 0.0
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)
        self.crawls: list[threading.Thread] = []

    def submit(self, name: str) -> None:
        with self.changed:
            self.pending[name] = None
            self.last_due = time.monotonic()
            self.changed.notify_all()

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        """After ``service.stop`` is set: wait for the running crawls (each stops within its grace time)."""
        with self.changed:
            self.changed.notify_all()
        self.thread.join()
        for crawl in list(self.crawls):
            crawl.join()

    def _ready(self) -> list[Source]:
        sources = self.service.sources
        return [sources[n] for n in self.pending if host_of(sources[n]) not in self.busy_hosts]

    def _loop(self) -> None:
        stop = self.service.stop
        slots = self.service.cfg.CRAWL_PROCESSES
        while not stop.is_set():
            with self.changed:
                self.changed.wait_for(lambda: stop.is_set() or (self.running < slots and bool(self._ready())),
                                      timeout=1.0)
                if stop.is_set():
                    return
                settle = self.last_due + self.COALESCE_SECONDS - time.monotonic()
                if settle > 0:
                    self.changed.wait(settle)  # more jobs may fall due in the same instant
                    continue
                ready = self._ready()
                if not ready or self.running >= slots:
                    continue
                for shard in self.service.backend.shards(ready, slots - self.running):
                    for src in shard:
                        del self.pending[src.name]
                        self.busy_hosts.add(host_of(src))
                    self.running += 1
                    crawl = threading.Thread(target=self._crawl, args=(shard,), name="crawl", daemon=True)
                    self.crawls.append(crawl)
                    crawl.start()

    def _crawl(self, shard: list[Source]) -> None:
        try:
            self.service.crawl_shard(shard)
        except Exception:
            logger.exception("crawl %s: unexpected error", ", ".join(src.name for src in shard))
        finally:
            with self.changed:
                self.running -= 1
                for src in shard:
                    self.busy_hosts.discard(host_of(src))
                self.crawls.remove(threading.current_thread())
                self.changed.notify_all()


# ---------------------------------------------------------------- commands
def cmd_serve(cfg: AppConfig, sources: dict[str, Source]) -> int:
    service = Service(cfg, sources)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop.set())
    service.publish()
    host, port = service.start_server()
    logger.info("serving %s at http://%s:%d/ (public URL %s)", cfg.FEEDS_DIR, host, port, cfg.PUBLIC_URL)
    dispatcher = Dispatcher(service)
    dispatcher.start()
    sched = service.schedule(dispatcher)
    while not service.stop.wait(1.0):
        pass
    logger.info("stopping: no new crawls; a running crawl gets %.0f s to finish", STOP_GRACE_SECONDS)
    sched.shutdown(wait=False)
    dispatcher.join()
    service.server.stop()
    service.engine.dispose()
    logger.info("stopped")
    return 0


def cmd_once(cfg: AppConfig, sources: dict[str, Source]) -> int:
    service = Service(cfg, sources)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop.set())
    outcomes = service.crawl_all()
    service.publish()  # always: it also clears what a killed publish left behind
    failed = [o for o in outcomes if o.status != "ok"]
    for o in failed:
        print(f"{o.source}: crawl failed: {o.error}", file=sys.stderr)
    return 1 if failed or len(outcomes) < len(sources) else 0


def cmd_status(cfg: AppConfig, sources: dict[str, Source]) -> int:
    from crawler.scrapyd_client import node_report
    from feeds.status import source_statuses

    service = Service(cfg, sources)
    rows = [("SOURCE", "ARTICLES", "LAST CRAWL", "RESULT", "NEXT RUN")]
    now = utcnow()
    for st in source_statuses(service.factory, list(sources)):
        run = st.last_run
        result = "never crawled" if run is None else run.status
        if run is not None and run.status != "ok" and run.error:
            result += f": {run.error}"
        elif run is not None:
            result += f" (new {run.new}, updated {run.updated}, removed {run.removed}, failed {run.failed})"
        nxt = next_run_time(schedule_of(sources[st.name], cfg), service.last_start(st.name), now)
        rows.append((st.name, str(st.articles), _local(st.last_time), result,
                     "due now" if nxt <= now else _local(nxt)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    print("\n" + "\n".join(node_report(cfg)))  # the backend; with scrapyd each node's reachability and jobs
    if cfg.keeps_media:
        from feeds.status import media_lines

        print("\n" + "\n".join(media_lines(service.factory, list(sources))))
    return 0


def _local(when: datetime | None) -> str:
    return "-" if when is None else when.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S%z")


def cmd_publish(cfg: AppConfig, sources: dict[str, Source]) -> int:
    result = Service(cfg, sources).publish()
    print(result)
    return 0


def cmd_add(cfg: AppConfig, args: argparse.Namespace) -> int:
    from crawler.add_site import add_site
    from crawler.add_source import AddError, add_source

    if args.all and (args.name or args.column):
        print("error: --all adds every column with names from their paths; it takes no --name or --column",
              file=sys.stderr)
        return 2
    try:
        if args.all:
            add_site(cfg, args.url, dry_run=args.dry_run, out=sys.stdout)
        else:
            add_source(cfg, args.url, name=args.name, column=args.column, out=sys.stdout, dry_run=args.dry_run)
    except AddError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--once", action="store_true", help="crawl every source once, publish, exit")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("status", help="show each source's articles, last crawl and next run")
    sub.add_parser("publish", help="rebuild the feeds from the database")
    media = sub.add_parser("media", help="MEDIA=keep|serve: download media of stored articles, then publish")
    media.add_argument("--backfill", action="store_true",
                       help="also media never tried (articles stored before MEDIA=keep); default: failed ones")
    add = sub.add_parser("add", help="discover a VSB column from a URL and add it to the sources file")
    add.add_argument("url", help="a column list page, an article page or a home page")
    add.add_argument("--name", help="slug for feed file names (default: from the list URL)")
    add.add_argument("--column", help="the column's name as the site shows it")
    add.add_argument("--all", action="store_true", help="add every list column found in the site's navigation")
    add.add_argument("--dry-run", action="store_true", help="print what would be added; write nothing")
    scrapyd_node.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config()
    except ConfigError as exc:
        print(f"error: invalid configuration: {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg.LOG_LEVEL)
    if args.command == "add":
        return cmd_add(cfg, args)
    if args.command == "node":
        return scrapyd_node.run_node(cfg, args)
    try:
        sources = load_sources(cfg.SOURCES_FILE)
    except SourcesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "status":
        return cmd_status(cfg, sources)
    if args.command == "publish":
        return cmd_publish(cfg, sources)
    if args.command == "media":
        from crawler.media_backfill import backfill_media

        return backfill_media(cfg, list(sources), args.backfill) or cmd_publish(cfg, sources)
    if args.once:
        return cmd_once(cfg, sources)
    return cmd_serve(cfg, sources)


if __name__ == "__main__":
    sys.exit(main())
