"""Feeds: RSS 2.0, Atom 1.0 and JSON Feed 1.1 per column, RFC 5005 archives, index.html and OPML.

Built from the database only (this package imports ``db``, never ``crawler``). Entry points:
:func:`feeds.publish.publish` writes FEEDS_DIR; :func:`feeds.build.build_from_database` builds the same
files in memory without writing.
"""

from feeds.build import build_files, build_from_database
from feeds.publish import PublishResult, publish, write_files

__all__ = ["PublishResult", "build_files", "build_from_database", "publish", "write_files"]
