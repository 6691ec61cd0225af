"""media copies: media_files (content-addressed) and article_media

Revision ID: 0003_media
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import db.models

revision = '0003_media'
down_revision = '0002_search'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('media_files',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('mime_type', sa.String(length=200), nullable=False),
    sa.Column('created_at', db.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )
    op.create_table('article_media',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('article_url', sa.Text(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('claimed_type', sa.String(length=200), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('etag', sa.Text(), nullable=True),
    sa.Column('last_modified', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('checked_at', db.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['sha256'], ['media_files.sha256'], ),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_id', 'article_url', 'url', name='uq_article_media')
    )
    with op.batch_alter_table('article_media', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_article_media_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_article_media_source_id'), ['source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_article_media_url'), ['url'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('article_media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_article_media_url'))
        batch_op.drop_index(batch_op.f('ix_article_media_source_id'))
        batch_op.drop_index(batch_op.f('ix_article_media_sha256'))
    op.drop_table('article_media')
    op.drop_table('media_files')
