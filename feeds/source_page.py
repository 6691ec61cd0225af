"""``<slug>.html``: one column's page for people (中文 / English): its feeds, a search box, its charts, latest
articles and last crawl runs. Built at publish time like index.html, with the same escaping rules and a
Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

from urllib.parse import quote

from feeds.index_page import FORMATS, STYLE, _e, _link, _sha256, _when, search_form
from feeds.plan import FeedPlan, Urls, local_time
from feeds.query import RunRec, SourceRec
from feeds.text import xml_safe

LATEST = 20
CSP = f"default-src 'none'; style-src {_sha256(STYLE)}; img-src data:; base-uri 'none'; form-action 'self'"
_STATUS = {"ok": "成功 OK", "failed": "失败 Failed", "running": "进行中 Running"}


def source_document(src: SourceRec, plan: FeedPlan, urls: Urls, charts: str) -> bytes:
    feeds = "".join(
        f'<li><a href="{_e(urls.feed(plan.slug, ext))}">{label}</a> <code>{_e(urls.feed(plan.slug, ext))}</code></li>'
        for ext, label, _ in FORMATS)
    example = urls.feed(plan.slug, "atom") + "?filter_title=" + quote("培训") + "&limit=10"
    parts = [
        "<!DOCTYPE html>", '<html lang="zh-CN">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{_e(plan.title)} · 栏目 Column</title>", '<link rel="icon" href="data:,">',
        *(f'<link rel="alternate" type="{mime}" title="{_e(plan.title)} ({label})" '
          f'href="{_e(urls.feed(plan.slug, ext))}">' for ext, label, mime in FORMATS),
        f"<style>{STYLE}</style>", "</head>", "<body>",
        f'<p><a href="{_e(urls.index)}">← 全部订阅源 All feeds</a></p>',
        f"<h1>{_e(plan.title)}</h1>",
        f'<p class="muted">原网站栏目 Column on the site: {_link(plan.home_url, plan.home_url)} · '
        f"共 {plan.total} 篇 articles · 更新于 updated {_when(plan.updated)}</p>",
        "<h2>订阅 Subscribe</h2>", f"<ul>{feeds}</ul>",
        f'<p class="muted">可加过滤参数（与 RSSHub 相同）· Filter parameters as in RSSHub, e.g. '
        f'<a href="{_e(example)}"><code>{_e(example)}</code></a></p>',
        search_form(urls, plan.slug),
        "<h2>动态 Activity</h2>", charts,
        "<h2>最新文章 Latest articles</h2>", "<ol>",
        *(f'<li><time datetime="{local_time(e.published).isoformat()}">{local_time(e.published):%Y-%m-%d}</time> · '
          f"{_link(e.url, e.title)}</li>" for e in plan.entries[:LATEST]),
        "</ol>",
        "<h2>最近抓取 Recent crawls</h2>", _runs_table(list(src.runs)),
        '<p class="muted">时间均为北京时间 · All times are China Standard Time (UTC+8).</p>',
        "</body>", "</html>", "",
    ]
    return "\n".join(parts).encode("utf-8")


def _runs_table(runs: list[RunRec]) -> str:
    if not runs:
        return '<p class="muted">尚无 None yet.</p>'
    rows = []
    for run in reversed(runs):  # newest first
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
        error = f"<br><small>{_e(xml_safe(run.error).strip()[:300])}</small>" if run.error else ""
        rows.append(
            f"<tr><td>{_when(run.started_at)}</td><td>{_e(_STATUS.get(run.status, run.status))}{error}</td>"
            f"<td>{'—' if seconds is None else f'{seconds:.0f} s'}</td><td>{run.new}</td><td>{run.updated}</td>"
            f"<td>{run.failed}</td><td>{run.requests}</td></tr>")
    return ('<table class="runs"><thead><tr><th>开始 Started</th><th>结果 Result</th><th>用时 Duration</th>'
            "<th>新增 New</th><th>更新 Updated</th><th>失败 Failed</th><th>请求 Requests</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")
