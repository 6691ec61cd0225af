"""search indexes: SQLite FTS5 trigram table kept by triggers; PostgreSQL pg_trgm GIN indexes

Revision ID: 0002_search
Revises: 0001

Why in the database: articles are indexed the moment any writer stores them (crawl pipeline, article
worker, tests) without the crawler knowing search exists. Trigrams because Chinese has no spaces to split
words on: any 3-character substring is found. Existing rows are indexed here too.
"""

from alembic import op

revision = "0002_search"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_UP = [
    "CREATE VIRTUAL TABLE articles_fts USING fts5(title, body_text, content='articles', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER articles_fts_ai AFTER INSERT ON articles BEGIN "
    "INSERT INTO articles_fts(rowid, title, body_text) VALUES (new.id, new.title, new.body_text); END",
    "CREATE TRIGGER articles_fts_ad AFTER DELETE ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, title, body_text) "
    "VALUES ('delete', old.id, old.title, old.body_text); END",
    # Only a change of the indexed text re-indexes (re-checks update other columns all the time).
    "CREATE TRIGGER articles_fts_au AFTER UPDATE OF title, body_text ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, title, body_text) "
    "VALUES ('delete', old.id, old.title, old.body_text); "
    "INSERT INTO articles_fts(rowid, title, body_text) VALUES (new.id, new.title, new.body_text); END",
    "INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')",
    # Search results newest first without reading article rows (whose bodies span overflow pages): the
    # query walks this covering index in feed order and probes the FTS matches, stopping after one page.
    # The title is in it for the title-only search of short words.
    "CREATE INDEX ix_articles_search_order ON articles (coalesce(published_at, first_seen_at), "
    "coalesce(newsid, -1), id, source_id, status, external, title) WHERE removed_at IS NULL",
]
SQLITE_DOWN = [
    "DROP INDEX IF EXISTS ix_articles_search_order",
    "DROP TRIGGER IF EXISTS articles_fts_au",
    "DROP TRIGGER IF EXISTS articles_fts_ad",
    "DROP TRIGGER IF EXISTS articles_fts_ai",
    "DROP TABLE IF EXISTS articles_fts",
]
POSTGRES_UP = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_articles_title_trgm ON articles USING gin (title gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_articles_body_text_trgm ON articles USING gin (body_text gin_trgm_ops)",
]
POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_articles_body_text_trgm",
    "DROP INDEX IF EXISTS ix_articles_title_trgm",
]


def _run(statements: list[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(SQLITE_UP)
    elif dialect == "postgresql":
        _run(POSTGRES_UP)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(SQLITE_DOWN)
    elif dialect == "postgresql":
        _run(POSTGRES_DOWN)
