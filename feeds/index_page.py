"""``index.html``: the page for people — every feed with copyable URLs, the latest articles, crawl status.

Article titles and URLs come from a third-party site: everything is escaped, only http(s) URLs become
links, and a Content-Security-Policy allows nothing but this page's own style and script (by hash).
Nothing here reads the clock: every time shown comes from the database.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from html import escape

from feeds.plan import Entry, FeedPlan, Urls, local_time
from feeds.query import RunRec
from feeds.text import is_absolute_http, xml_safe
from settings import PROJECT_URL

FORMATS = (  # (extension, label, MIME type for autodiscovery)
    ("xml", "RSS 2.0", "application/rss+xml"),
    ("atom", "Atom 1.0", "application/atom+xml"),
    ("json", "JSON Feed 1.1", "application/feed+json"),
)
_STATUS = {"ok": "成功 OK", "failed": "失败 Failed", "running": "进行中 Running"}

STYLE = """
body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;max-width:56rem;margin:2rem auto;
padding:0 1rem;line-height:1.5;color:#222}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
.feed{display:flex;gap:.5rem;align-items:center;margin:.3rem 0}.feed span{width:8rem}
.feed input{flex:1;font-family:monospace;padding:.2rem}.muted{color:#666;font-size:.9rem}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.5rem}ol li{margin:.2rem 0}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.charts figure{margin:0}.charts svg{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#666}form[role=search]{margin:1rem 0}
form[role=search] input{width:60%;padding:.3rem}.error{color:#c0392b}
"""

SCRIPT = """
document.addEventListener("click", function (ev) {
  var button = ev.target.closest("button[data-copy]");
  if (!button) { return; }
  var input = document.getElementById(button.getAttribute("data-copy"));
  var done = function () {
    button.textContent = "已复制 Copied";
    setTimeout(function () { button.textContent = "复制 Copy"; }, 1500);
  };
  var fallback = function () {
    input.select();
    try { if (document.execCommand("copy")) { done(); } } catch (e) { /* the URL stays selected */ }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(done, fallback);
  } else {
    fallback();
  }
});
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


CSP = (f"default-src 'none'; style-src {_sha256(STYLE)}; script-src {_sha256(SCRIPT)}; img-src data:; "
       "base-uri 'none'; form-action 'self'")


def _e(text: str) -> str:
    return escape(text, quote=True)


def _link(url: str, text: str) -> str:
    """A link only for http(s) URLs: a stored ``javascript:`` URL must not become clickable."""
    return f'<a href="{_e(url)}">{_e(text)}</a>' if is_absolute_http(url) else _e(text)


def _when(moment: datetime | None) -> str:
    return local_time(moment).strftime("%Y-%m-%d %H:%M") if moment else "—"


def search_form(urls: Urls, source: str | None = None) -> str:
    """A plain GET form to /search: works without JavaScript."""
    hidden = f'<input type="hidden" name="source" value="{_e(source)}">' if source else ""
    return (f'<form action="{_e(urls.public)}search" method="get" role="search">'
            '<input type="search" name="q" required maxlength="200" placeholder="搜索全部存档 Search the archive" '
            f'aria-label="搜索 Search">{hidden} <button type="submit">搜索 Search</button></form>')


def index_document(plans: list[FeedPlan], latest: tuple[Entry, ...], runs: dict[str, RunRec | None],
                   urls: Urls, charts: dict[str, str] | None = None) -> bytes:
    """``plans``: the column feeds then the combined one; ``runs``: the latest crawl per column slug;
    ``charts``: the charts block per column slug (:func:`feeds.charts.charts_block`)."""
    charts = charts or {}
    columns = "、".join(p.title for p in plans if p.slug in runs)
    head_links = "\n".join(
        f'<link rel="alternate" type="{mime}" title="{_e(p.title)} ({label})" href="{_e(urls.feed(p.slug, ext))}">'
        for p in plans for ext, label, mime in FORMATS
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{_e(columns)} · 订阅源 Feeds</title>",
        '<link rel="icon" href="data:,">',  # no /favicon.ico request to the feed server
        head_links,
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(columns)} · 订阅源 Feeds</h1>",
        "<p>用 RSS 阅读器订阅下面任一地址即可收到新文章（全文）。"
        "Subscribe to any address below in a feed reader to get new articles in full text.</p>",
        f'<p>OPML（一次导入全部 · import all at once）：{_link(urls.opml, urls.opml)}</p>',
        search_form(urls),
    ]
    parts += [_feed_section(p, urls, runs.get(p.slug), p.slug in runs, charts.get(p.slug, "")) for p in plans]
    parts += ["<h2>最新文章 · Latest articles</h2>", "<ol>"]
    parts += [
        f'<li><time datetime="{local_time(e.published).isoformat()}">{local_time(e.published):%Y-%m-%d}</time> · '
        f'{_e(" / ".join(e.categories))} · {_link(e.url, e.title)}</li>'
        for e in latest
    ]
    parts += [
        "</ol>",
        f'<p class="muted">由 <a href="{_e(PROJECT_URL)}">ghu-feeds</a> 生成 · Generated by ghu-feeds. '
        "时间均为北京时间 · All times are China Standard Time (UTC+8).</p>",
        f"<script>{SCRIPT}</script>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts).encode("utf-8")


def _feed_section(plan: FeedPlan, urls: Urls, run: RunRec | None, is_column: bool, charts: str = "") -> str:
    rows = []
    for ext, label, _mime in FORMATS:
        url = urls.feed(plan.slug, ext)
        ident = f"u-{plan.slug}-{ext}"
        rows.append(
            f'<div class="feed"><span><a href="{_e(url)}">{label}</a></span>'
            f'<input id="{ident}" type="text" readonly value="{_e(url)}" aria-label="{label} URL">'
            f'<button type="button" data-copy="{ident}">复制 Copy</button></div>'
        )
    lines = [f'<section id="feed-{plan.slug}">',
             f"<h2>{_link(plan.home_url, plan.title)}</h2>", *rows,
             f'<p class="muted">共 {plan.total} 篇 articles · 更新于 updated {_when(plan.updated)}']
    if plan.newest_archive:
        first, newest = urls.archive(plan.slug, 1), urls.archive(plan.slug, plan.newest_archive)
        lines[-1] += (f' · 更早的文章 older articles: <a href="{_e(newest)}">归档 archive</a> '
                      f'({plan.newest_archive} 页 pages, <a href="{_e(first)}">第 1 页 page 1</a>)')
    lines[-1] += "</p>"
    if is_column:
        page = f"{urls.public}{plan.slug}.html"
        lines.append(f'<p><a href="{_e(page)}">栏目页 Column page: 最新文章与抓取记录 latest articles, crawls</a></p>')
        lines.append(_run_line(run))
        if charts:
            lines.append(charts)
    lines.append("</section>")
    return "\n".join(lines)


def _run_line(run: RunRec | None) -> str:
    if run is None:
        return '<p class="muted">最近抓取 Last crawl: 尚无 none yet</p>'
    status = _STATUS.get(run.status, run.status)
    text = (f'<p class="muted">最近抓取 Last crawl: {_when(run.finished_at or run.started_at)} · {_e(status)} · '
            f"新增 new {run.new} · 更新 updated {run.updated} · 未变 unchanged {run.unchanged} · "
            f"删除 removed {run.removed} · 失败 failed {run.failed} · 请求 requests {run.requests}</p>")
    if run.error:
        text += f"\n<pre>{_e(xml_safe(run.error).strip()[:2000])}</pre>"
    return text
