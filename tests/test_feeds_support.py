"""Test data for the feeds tests: a temporary database filled through the models, like the crawler does.

Not a test module itself (it holds no tests); named test_feeds_* so that it belongs to the feeds tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import open_database, transaction
from db.models import Article, Attachment, CrawlRun, Source
from settings import AppConfig

SH = ZoneInfo("Asia/Shanghai")
PUBLIC = "https://feeds.example.org/ghu/"
SITE = "https://zzb.ghu.edu.cn"
COLUMN_URL = f"{SITE}/dxgzdt.htm"
WECHAT_URL = "https://mp.weixin.qq.com/s/Xy12AbCdEfGhIjKl"
DOWNLOAD = f"{SITE}/system/_content/download.jsp?urltype=news.DownloadAttachUrl&owner=1706542193&wbfileid="


def make_config(feeds_dir: Path, public_url: str = PUBLIC, max_items: int = 50, page_size: int = 50
                ) -> AppConfig:
    """AppConfig built directly: the tests need only the feed settings."""
    return AppConfig(
        DATABASE_URL="sqlite://", SOURCES_FILE="sources.toml", FEEDS_DIR=str(feeds_dir),
        FEED_MAX_ITEMS=max_items, ARCHIVE_PAGE_SIZE=page_size, HTTP_HOST="127.0.0.1", HTTP_PORT=8080,
        PUBLIC_URL=public_url, CRAWL_INTERVAL=60, CRAWL_DELAY=0.0, CRAWL_TIMEOUT=1800, RECHECK_DAYS=30,
        RECHECK_INTERVAL=24.0, HEALTH_MAX_AGE=1440, LOG_LEVEL="INFO",
    )


def new_database(tmp_path: Path) -> sessionmaker[Session]:
    return open_database(f"sqlite:///{tmp_path / 't.db'}")[1]


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A China Standard Time moment (VSB list dates are date-only: 00:00 +08:00)."""
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def info_url(newsid: int, tree: int = 1015) -> str:
    return f"{SITE}/info/{tree}/{newsid}.htm"


def add_source(session: Session, name: str = "dxgzdt", title: str = "党校工作动态",
               list_url: str | None = COLUMN_URL) -> Source:
    src = Source(name=name, title=title, list_url=list_url, created_at=datetime(2024, 1, 1, tzinfo=UTC))
    session.add(src)
    session.flush()
    return src


def add_article(session: Session, source: Source, newsid: int | None, published: datetime, title: str, *,
                url: str | None = None, body_html: str | None = None, body_text: str | None = None,
                external: bool = False, status: str = "ok", author: str | None = None,
                attachments: Iterable[tuple[str, str, str | None]] = (), removed_at: datetime | None = None,
                updated_at: datetime | None = None, first_seen_at: datetime | None = None) -> Article:
    if body_html is None and not external and status == "ok":
        body_html = f"<p>{title}。</p>"
        body_text = body_text or f"{title}。"
    art = Article(
        source_id=source.id, url=url or info_url(newsid or 0), newsid=newsid, external=external,
        status=status, title=title, list_title=title, published_at=published, author=author,
        body_html=body_html, body_text=body_text,
        first_seen_at=first_seen_at or published + timedelta(hours=2), updated_at=updated_at,
        removed_at=removed_at,
    )
    art.attachments = [Attachment(position=i, name=n, url=u, mime_type=m, in_body=False)
                       for i, (n, u, m) in enumerate(attachments)]
    session.add(art)
    session.flush()
    return art


LONG_TEXT = ("为深入学习贯彻党的二十大精神，进一步加强入党积极分子教育培养工作，经研究，"
             "党校决定举办2024年春季学期入党积极分子培训班。现将有关事项通知如下：一、培训对象。"
             "各二级党组织推荐的入党积极分子。二、培训时间。2024年3月9日至3月30日，每周六上午。"
             "三、培训方式。集中授课、专题研讨、实践教学与结业考试相结合。四、报名方式。"
             "请各二级党组织于3月6日前将报名表（附件1）电子版发送至党校办公室邮箱。五、其他事项。"
             "请学员按时参加培训，无故缺席两次及以上者取消本期培训资格。")


def seed_zzb(factory: sessionmaker[Session]) -> None:
    """The 党校工作动态 column as the crawler stores it, with the awkward cases the feeds must handle."""
    with transaction(factory) as s:
        src = add_source(s)
        add_article(
            s, src, 2530, sh(2024, 3, 1), "关于举办2024年春季学期入党积极分子培训班的通知",
            author="组织部",
            body_html=(f'<p>{LONG_TEXT}</p><p><img src="{SITE}/__local/9/A8/1B/3C5E0F.jpg" alt="培训"></p>'
                       f'<p><img src="{SITE}/__local/2/7C/44/91AB0D.png"></p>'),
            body_text=LONG_TEXT,
            attachments=[("附件1：入党积极分子培训班报名表.docx", DOWNLOAD + "33501", None),
                         ("附件2：培训日程安排.pdf", DOWNLOAD + "33502", "application/pdf")],
        )
        # Two items of the same day: the larger newsid is the newer one.
        add_article(s, src, 2541, sh(2024, 3, 15), "党校举行第十二期发展对象培训班开班仪式", author="党校办公室",
                    body_html=f'<p>3月15日上午，开班仪式在图书馆报告厅举行。</p><img src="{SITE}/__local/B/1.jpg">')
        add_article(s, src, 2542, sh(2024, 3, 15), "第十二期发展对象培训班开展分组研讨")
        # An off-site (WeChat) item: no article page, its URL is the external one.
        add_article(s, src, None, sh(2024, 3, 20), "【微信】党校组织学员赴红色教育基地开展实践教学",
                    url=WECHAT_URL, external=True, status="ok")
        # A title carrying a control character (XML-illegal) and a body with a relative image URL.
        add_article(s, src, 2550, sh(2024, 4, 2), "党校第十二期发展对象培训班\x08顺利结业",
                    body_html='<p>结业典礼现场。</p><p><img src="/__local/E/0F/12/ABCDEF.jpg"></p>',
                    body_text="结业典礼现场。")
        # Not visible: removed from the site, never fetched, fetch failed.
        add_article(s, src, 2545, sh(2024, 3, 18), "已删除的旧通知", removed_at=datetime(2024, 4, 1, tzinfo=UTC))
        add_article(s, src, 2551, sh(2024, 4, 3), "尚未抓取的文章", status="pending")
        add_article(s, src, 2552, sh(2024, 4, 3), "抓取失败的文章", status="failed")
        s.add(CrawlRun(source_id=src.id, started_at=datetime(2024, 4, 2, 1, 0, tzinfo=UTC),
                       finished_at=datetime(2024, 4, 2, 1, 3, tzinfo=UTC), status="ok", pages_fetched=3,
                       requests=9, new=5))
        s.add(CrawlRun(source_id=src.id, started_at=datetime(2024, 4, 3, 1, 0, tzinfo=UTC),
                       finished_at=datetime(2024, 4, 3, 1, 1, tzinfo=UTC), status="failed", requests=3,
                       error="HTTP 503 <Service Unavailable> on https://zzb.ghu.edu.cn/dxgzdt.htm"))


# Newest first: 2550 (04-02), WeChat (03-20), 2542 and 2541 (same day, newsid desc), 2530 (03-01).
ZZB_ORDER = [info_url(2550), WECHAT_URL, info_url(2542), info_url(2541), info_url(2530)]
ZZB_HIDDEN = [info_url(2545), info_url(2551), info_url(2552)]


def seed_column(factory: sessionmaker[Session], name: str, title: str, count: int, start: datetime,
                first_newsid: int = 1000) -> list[str]:
    """``count`` plain articles, one a day from ``start``; returns their URLs oldest first."""
    urls = []
    with transaction(factory) as s:
        src = s.scalars(select(Source).where(Source.name == name)).first() or add_source(
            s, name, title, f"{SITE}/{name}.htm")
        for i in range(count):
            art = add_article(s, src, first_newsid + i, start + timedelta(days=i), f"{title}第{i + 1}篇",
                              url=f"{SITE}/info/{first_newsid // 100}/{first_newsid + i}.htm")
            urls.append(art.url)
    return urls


def parse(data: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed
