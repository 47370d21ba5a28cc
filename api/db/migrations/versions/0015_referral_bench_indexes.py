"""Indexes for referrals at scale (bench/referrals.py, 1 000 000 referrals).

* ``ix_referral_parent_referral_id``: the chain of a referral (the referrals it was redirected
  to, read with every referral, after sending and after every action) follows
  ``parent_referral_id``, which had no index: a sequential scan of the whole table for each
  read (about 1 s at 1 000 000 referrals; 0.1 ms with the index). Partial: only redirected
  referrals have a parent.
* ``ix_referral_inbox_status``, ``ix_referral_outbox_status``: a box filtered on a status
  (``GET /v1/referrals?box=inbox&status=sent``, what is left to answer) walked the box's
  index and dropped the other statuses: 20–30 ms for a recipient of ~100 000 referrals, and
  more the rarer the status; with the status after the organisation, the page is read in
  order directly (under 1 ms).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_referral_parent_referral_id",
        "referral",
        ["parent_referral_id"],
        postgresql_where=sa.text("parent_referral_id IS NOT NULL"),
    )
    op.create_index(
        "ix_referral_inbox_status",
        "referral",
        ["recipient_organisation_id", "status", "created_at", "id"],
    )
    op.create_index(
        "ix_referral_outbox_status",
        "referral",
        ["sender_organisation_id", "status", "created_at", "id"],
    )


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
