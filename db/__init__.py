"""Storage: SQLAlchemy models, the engine (SQLite WAL or PostgreSQL) and Alembic migrations.

This package imports neither ``crawler`` nor ``feeds``: data flows into it and out of it.
"""
