"""Robustness: login limits shared by every worker, kept in PostgreSQL.

Each login attempt leaves rows in ``login_attempt``: an ``attempt`` for the client address, a
``pending`` reservation for the account (turned into a ``failure`` or cleared by a success).
Subjects are keyed hashes (HMAC), never an e-mail or an address in clear.

Why PostgreSQL rather than Redis: the service must run with Python and its database and
nothing else; the limit must hold across every worker and survive a restart, and a login
already costs an argon2 verification (tens of milliseconds) next to which two short
statements are noise.

The table is internal: the runtime role is granted only the three ``SECURITY DEFINER``
functions below, which take a per-subject advisory lock so that a burst of parallel attempts
is counted one at a time (each admission holds a reservation until it resolves).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.migrations.helpers import app_role

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_ADMIT = """
CREATE FUNCTION guichet_login_admit(
  p_account bytea, p_ip bytea,
  p_max_account integer, p_account_window_s integer,
  p_max_ip integer, p_ip_window_s integer, p_pending_s integer
) RETURNS TABLE (pending_id bigint, retry_after integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_now timestamptz := clock_timestamp();
  v_account_window interval := make_interval(secs => p_account_window_s);
  v_ip_window interval := make_interval(secs => p_ip_window_s);
  v_pending interval := make_interval(secs => p_pending_s);
  v_count integer;
  v_wait double precision := 0;
  v_until timestamptz;
  v_id bigint;
BEGIN
  -- one admission at a time per subject, locks taken in a fixed order
  PERFORM pg_advisory_xact_lock(hashtextextended(encode(s, 'hex'), 18))
    FROM (SELECT s FROM unnest(ARRAY[p_account, p_ip]) AS s ORDER BY s) AS ordered;
  DELETE FROM login_attempt a
   WHERE a.subject IN (p_account, p_ip)
     AND ((a.kind = 'failure' AND a.at <= v_now - v_account_window)
       OR (a.kind = 'pending' AND a.at <= v_now - v_pending)
       OR (a.kind = 'attempt' AND a.at <= v_now - v_ip_window));
  IF random() < 0.01 THEN  -- now and then, forget subjects nobody came back for
    DELETE FROM login_attempt a
     WHERE a.at <= v_now - GREATEST(v_account_window, v_ip_window, v_pending);
  END IF;

  SELECT count(*) INTO v_count FROM login_attempt a
   WHERE a.subject = p_account AND a.kind IN ('failure', 'pending');
  IF v_count >= p_max_account THEN
    SELECT e INTO v_until FROM (
      SELECT CASE a.kind WHEN 'failure' THEN a.at + v_account_window ELSE a.at + v_pending END
             AS e
        FROM login_attempt a
       WHERE a.subject = p_account AND a.kind IN ('failure', 'pending')
       ORDER BY 1) AS expiries
     OFFSET v_count - p_max_account LIMIT 1;
    v_wait := GREATEST(v_wait, extract(epoch FROM v_until - v_now));
  END IF;

  SELECT count(*) INTO v_count FROM login_attempt a
   WHERE a.subject = p_ip AND a.kind = 'attempt';
  IF v_count >= p_max_ip THEN
    SELECT a.at + v_ip_window INTO v_until FROM login_attempt a
     WHERE a.subject = p_ip AND a.kind = 'attempt'
     ORDER BY a.at OFFSET v_count - p_max_ip LIMIT 1;
    v_wait := GREATEST(v_wait, extract(epoch FROM v_until - v_now), 0.001);
  END IF;

  IF v_wait > 0 THEN
    RETURN QUERY SELECT NULL::bigint, GREATEST(1, ceil(v_wait))::integer;
    RETURN;
  END IF;
  INSERT INTO login_attempt (subject, kind, at) VALUES (p_ip, 'attempt', v_now);
  INSERT INTO login_attempt (subject, kind, at) VALUES (p_account, 'pending', v_now)
    RETURNING id INTO v_id;
  RETURN QUERY SELECT v_id, 0;
END
$$
"""

_FAILED = """
CREATE FUNCTION guichet_login_failed(p_pending bigint, p_account bytea) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  UPDATE login_attempt SET kind = 'failure', at = clock_timestamp()
   WHERE id = p_pending AND subject = p_account;
  IF NOT FOUND THEN  -- the reservation expired meanwhile: the failure still counts
    INSERT INTO login_attempt (subject, kind, at)
    VALUES (p_account, 'failure', clock_timestamp());
  END IF;
END
$$
"""

_SUCCEEDED = """
CREATE FUNCTION guichet_login_succeeded(p_account bytea) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  DELETE FROM login_attempt WHERE subject = p_account AND kind IN ('failure', 'pending');
$$
"""


def upgrade() -> None:
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("subject", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempt")),
        sa.CheckConstraint(
            "kind IN ('attempt', 'pending', 'failure')", name=op.f("ck_login_attempt_kind")
        ),
    )
    op.create_index("ix_login_attempt_subject_at", "login_attempt", ["subject", "at"])
    op.create_index("ix_login_attempt_at", "login_attempt", ["at"])
    role = app_role()
    for sql, signature in (
        (
            _ADMIT,
            "guichet_login_admit(bytea, bytea, integer, integer, integer, integer, integer)",
        ),
        (_FAILED, "guichet_login_failed(bigint, bytea)"),
        (_SUCCEEDED, "guichet_login_succeeded(bytea)"),
    ):
        op.execute(sql)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
