"""What the service tells operators: /healthz, /metrics (Prometheus text) and the `status` table.

All of it is read from the database (crawl runs and articles), so every process sees the same truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db import media as media_db
from db import store
from db.models import CrawlRun, Source, utcnow


@dataclass(frozen=True)
class SourceStatus:
    name: str
    title: str
    articles: int
    last_run: CrawlRun | None
    last_success: CrawlRun | None
    created_at: datetime

    @property
    def last_time(self) -> datetime | None:
        run = self.last_run
        return None if run is None else (run.finished_at or run.started_at)


def source_statuses(factory: sessionmaker[Session], names: list[str] | None = None) -> list[SourceStatus]:
    with factory() as s:
        stmt = select(Source).order_by(Source.name)
        if names is not None:
            stmt = stmt.where(Source.name.in_(names))
        return [
            SourceStatus(src.name, src.title, store.count_articles(s, src.id), store.last_finished_run(s, src.id),
                         store.last_success(s, src.id), src.created_at)
            for src in s.scalars(stmt)
        ]


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def health(factory: sessionmaker[Session], max_age_minutes: float, names: list[str] | None = None,
           now: datetime | None = None) -> tuple[int, dict[str, object]]:
    """200 while every source has succeeded within ``max_age_minutes`` (or is younger than that), else 503."""
    now = now or utcnow()
    limit = timedelta(minutes=max_age_minutes)
    report: dict[str, object] = {}
    healthy = True
    for st in source_statuses(factory, names):
        since = st.last_success.finished_at if st.last_success and st.last_success.finished_at else st.created_at
        stale = now - since > limit
        healthy = healthy and not stale
        run = st.last_run
        report[st.name] = {
            "articles": st.articles,
            "last_crawl": _iso(st.last_time),
            "last_result": run.status if run else None,
            "last_error": run.error if run else None,
            "last_success": _iso(st.last_success.finished_at) if st.last_success else None,
            "healthy": not stale,
        }
    body = {"status": "ok" if healthy else "stale", "max_age_minutes": max_age_minutes, "sources": report}
    return (200 if healthy else 503), body


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(factory: sessionmaker[Session]) -> str:
    lines = [
        "# HELP ghu_crawls_total Crawl runs by source and result.",
        "# TYPE ghu_crawls_total counter",
    ]
    with factory() as s:
        counts = s.execute(
            select(Source.name, CrawlRun.status, func.count())
            .join(CrawlRun, CrawlRun.source_id == Source.id)
            .group_by(Source.name, CrawlRun.status).order_by(Source.name, CrawlRun.status)
        ).all()
    for name, status, n in counts:
        lines.append(f'ghu_crawls_total{{source="{_label(name)}",result="{_label(status)}"}} {n}')
    statuses = source_statuses(factory)
    lines += ["# HELP ghu_crawl_duration_seconds Duration of the last finished crawl.",
              "# TYPE ghu_crawl_duration_seconds gauge"]
    for st in statuses:
        run = st.last_run
        if run and run.finished_at:
            seconds = (run.finished_at - run.started_at).total_seconds()
            lines.append(f'ghu_crawl_duration_seconds{{source="{_label(st.name)}"}} {seconds:g}')
    lines += ["# HELP ghu_articles_stored Articles stored and not removed.", "# TYPE ghu_articles_stored gauge"]
    lines += [f'ghu_articles_stored{{source="{_label(st.name)}"}} {st.articles}' for st in statuses]
    lines += ["# HELP ghu_last_success_timestamp_seconds End of the last successful crawl (Unix time).",
              "# TYPE ghu_last_success_timestamp_seconds gauge"]
    for st in statuses:
        if st.last_success and st.last_success.finished_at:
            ts = st.last_success.finished_at.timestamp()
            lines.append(f'ghu_last_success_timestamp_seconds{{source="{_label(st.name)}"}} {ts:.0f}')
    lines += media_metrics(factory)
    return "\n".join(lines) + "\n"


def media_metrics(factory: sessionmaker[Session]) -> list[str]:
    """Kept media per source (MEDIA=keep|serve): distinct files, their bytes, downloads to retry, refusals."""
    with factory() as s:
        stats = media_db.media_stats(s)
    lines: list[str] = []
    for metric, what, attr in (("ghu_media_files", "Distinct media files kept.", "files"),
                               ("ghu_media_bytes", "Bytes of the media files kept.", "bytes"),
                               ("ghu_media_failures", "Media downloads that failed (tried again next run).",
                                "failures"),
                               ("ghu_media_refused", "Media refused (type, size, executable).", "refused")):
        lines += [f"# HELP {metric} {what}", f"# TYPE {metric} gauge"]
        lines += [f'{metric}{{source="{_label(name)}"}} {getattr(st, attr)}' for name, st in stats.items()]
    return lines


def media_lines(factory: sessionmaker[Session], names: list[str]) -> list[str]:
    """The `status` command's media table: files, bytes, failures per source."""
    with factory() as s:
        stats = media_db.media_stats(s)
    rows = [("SOURCE", "MEDIA FILES", "BYTES", "FAILED", "REFUSED")]
    rows += [(n, str(stats[n].files), str(stats[n].bytes), str(stats[n].failures), str(stats[n].refused))
             for n in names if n in stats]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
