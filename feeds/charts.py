"""Inline SVG charts for the pages for people: articles per month, recent crawl runs.

Why hand-made SVG: two bar charts drawn at publish time need no JavaScript library, read without JavaScript,
pass the pages' strict Content-Security-Policy (presentation attributes only, no ``style``), and come out
byte-identical for the same database, like every other published file. Each bar has a ``<title>`` (a
tooltip and what screen readers read).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from html import escape

from feeds.plan import local_time
from feeds.query import RunRec

MONTHS = 24
RUNS = 30
WIDTH, HEIGHT, BASE = 480, 120, 100  # BASE: y of the bars' foot; labels below it
_STATUS = {"ok": "成功 OK", "failed": "失败 Failed", "running": "进行中 Running"}
_COLOR = {"ok": "#2e8b57", "failed": "#c0392b"}


def month_keys(end: datetime, months: int = MONTHS) -> list[str]:
    """``months`` 'YYYY-MM' keys (China Standard Time) ending with ``end``'s month, oldest first."""
    local = local_time(end)
    index = local.year * 12 + local.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - months + 1, index + 1)]


def monthly_counts(published: Iterable[datetime], end: datetime) -> list[tuple[str, int]]:
    keys = month_keys(end)
    counts = Counter(local_time(p).strftime("%Y-%m") for p in published)
    return [(k, counts.get(k, 0)) for k in keys]


def _svg(label: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{escape(label)}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">'
            f"<title>{escape(label)}</title>"
            f'<line x1="0" y1="{BASE}" x2="{WIDTH}" y2="{BASE}" stroke="#999" stroke-width="1"/>'
            + "".join(body) + "</svg>")


def _text(x: float, y: float, value: str, anchor: str = "start") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="10" fill="#555" text-anchor="{anchor}">'
            f"{escape(value)}</text>")


def activity_chart(counts: list[tuple[str, int]]) -> str:
    """Bars of articles per month (24 months, oldest left)."""
    top = max((n for _, n in counts), default=0)
    step = WIDTH / max(len(counts), 1)
    body = []
    for i, (month, n) in enumerate(counts):
        h = 0.0 if top == 0 else (BASE - 14) * n / top
        body.append(f'<rect class="bar" x="{i * step + 1:.1f}" y="{BASE - h:.1f}" width="{step - 2:.1f}" '
                    f'height="{h:.1f}" fill="#4a78b5"><title>{month}: {n} 篇 articles</title></rect>')
        if i == len(counts) - 1:
            body.append(_text(WIDTH - 2, BASE + 12, month, "end"))
        elif i % 6 == 0 and i < len(counts) - 3:
            body.append(_text(i * step + 1, BASE + 12, month))
    body.append(_text(WIDTH - 2, 10, f"最多 max {top}", "end"))
    first, last = (counts[0][0], counts[-1][0]) if counts else ("", "")
    total = sum(n for _, n in counts)
    return _svg(f"每月文章数 Articles per month, {first} – {last}: {total}", body)


def _duration(run: RunRec) -> float:
    if run.finished_at is None:
        return 0.0
    return max(0.0, (run.finished_at - run.started_at).total_seconds())


def runs_chart(runs: list[RunRec]) -> str:
    """Bars for the last crawl runs (oldest left): height = duration, colour = result."""
    runs = runs[-RUNS:]
    top = max((_duration(r) for r in runs), default=0.0)
    step = WIDTH / RUNS
    body = []
    for i, run in enumerate(runs):
        seconds = _duration(run)
        h = 3.0 if top == 0 else max(3.0, (BASE - 14) * seconds / top)  # a failed instant run stays visible
        status = _STATUS.get(run.status, run.status)
        tip = (f"{local_time(run.started_at):%Y-%m-%d %H:%M} · {status} · {seconds:.0f} s · "
               f"新增 new {run.new} · 更新 updated {run.updated} · 失败 failed {run.failed}")
        body.append(f'<rect class="run run-{escape(run.status)}" x="{i * step + 1:.1f}" y="{BASE - h:.1f}" '
                    f'width="{step - 2:.1f}" height="{h:.1f}" fill="{_COLOR.get(run.status, "#999")}">'
                    f"<title>{escape(tip)}</title></rect>")
    body.append(_text(WIDTH - 2, 10, f"最长 longest {top:.0f} s", "end"))
    ok = sum(r.status == "ok" for r in runs)
    failed = sum(r.status == "failed" for r in runs)
    if not runs:
        body.append(_text(WIDTH / 2, BASE / 2, "尚无抓取 No crawls yet", "middle"))
    else:
        body.append(_text(0, BASE + 12, f"{local_time(runs[0].started_at):%Y-%m-%d}"))
        body.append(_text(WIDTH - 2, BASE + 12, f"{local_time(runs[-1].started_at):%Y-%m-%d}", "end"))
    return _svg(f"最近 {len(runs)} 次抓取 Last {len(runs)} crawls: {ok} 成功 ok, {failed} 失败 failed", body)


def chart_end(published: Iterable[datetime], runs: list[RunRec], created: datetime) -> datetime:
    """The chart's last month: the newest thing the data knows about (never the clock)."""
    times = [*published, *(r.started_at for r in runs)]
    return max(times, default=created)


def charts_block(published: list[datetime], runs: list[RunRec], created: datetime) -> str:
    """Both charts of one column as an HTML fragment (figures with bilingual captions)."""
    end = chart_end(published, runs, created)
    return (
        '<div class="charts">'
        f"<figure>{activity_chart(monthly_counts(published, end))}"
        f"<figcaption>每月文章数（近 {MONTHS} 个月）Articles per month, last {MONTHS} months</figcaption></figure>"
        f"<figure>{runs_chart(runs)}"
        f"<figcaption>最近 {RUNS} 次抓取：高度为用时，绿色成功、红色失败 · Last {RUNS} crawls: height = duration, "
        "green ok, red failed</figcaption></figure>"
        "</div>"
    )
