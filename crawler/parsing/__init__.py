"""Page parsing for VSB (博达) sites as pure functions over HTML: no network, no Scrapy, no database.

Decode bytes with :func:`decode_html`, then parse list pages with :func:`parse_list_page` and article
pages with :func:`parse_article`; URL identity lives in :mod:`.urls`, feed-safe HTML in :mod:`.sanitize`.
"""

from .article import parse_article
from .dates import SHANGHAI, parse_date
from .discovery import find_column_list_url, looks_like_vsb
from .encoding import decode_html
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
    "html_to_text",
    "is_on_domains",
    "looks_like_vsb",
    "newsid_of",
    "parse_article",
    "parse_date",
    "parse_list_page",
    "sanitize_html",
    "strip_xml_illegal",
]
