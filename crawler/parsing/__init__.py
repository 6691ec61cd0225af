"""Page parsing for VSB (博达) sites as pure functions over HTML: no network, no Scrapy, no database.

Decode bytes with :func:`decode_html`, then parse list pages with :func:`parse_list_page` and article
pages with :func:`parse_article`; URL identity lives in :mod:`.urls`, feed-safe HTML in :mod:`.sanitize`.
"""

from crawler.vsb import looks_like_vsb

from .article import parse_article
from .dates import SHANGHAI, parse_date
from .discovery import find_column_list_url, nav_tier
from .encoding import decode_html, header_charset
from .listpage import parse_list_page
from .model import ArticlePage, AttachmentLink, ListEntry, ListPage, Selectors
from .sanitize import html_to_text, sanitize_html, strip_xml_illegal
from .urls import canonical_article_url, is_on_domains, newsid_of

__all__ = [
    "SHANGHAI",
    "ArticlePage",
    "AttachmentLink",
    "ListEntry",
    "ListPage",
    "Selectors",
    "canonical_article_url",
    "decode_html",
    "find_column_list_url",
    "header_charset",
    "html_to_text",
    "is_on_domains",
    "looks_like_vsb",
    "nav_tier",
    "newsid_of",
    "parse_article",
    "parse_date",
    "parse_list_page",
    "sanitize_html",
    "strip_xml_illegal",
]
