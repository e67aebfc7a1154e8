"""Issue 13 (guards): consistent balances (D8) and a TRUNCATE-proof audit trail (D9).

- Balance: free, used and total are never negative (both backends); on PostgreSQL also
  ``total = free + used`` (amounts are sortable text on SQLite, so no arithmetic in its
  CHECKs: the rule in ``tradingstate.rules.balances`` holds it there). Existing rows that
  break it are reported (WARNING) and the constraint stays NOT VALID until they are fixed
  and ``ALTER TABLE tradingstate_balance VALIDATE CONSTRAINT balance_free_plus_used_is_total``
  is run; every new write is checked either way.
- AuditEntry: a statement trigger refuses TRUNCATE (row triggers, migration 0002, never see
  it). Only the table owner can ``ALTER TABLE ... DISABLE TRIGGER``: production runs the app
  as a role that does not own the tables (README "Security model"); ``check --deploy`` warns
  when it does. Django's own ``flush`` (tests) runs as a superuser with
  ``session_replication_role = replica``, under which ordinary triggers do not fire.
"""

from django.db import migrations, models

PG_FORWARD = """
ALTER TABLE tradingstate_balance ADD CONSTRAINT balance_free_plus_used_is_total
    CHECK (total = free + used) NOT VALID;
DO $$
BEGIN
    ALTER TABLE tradingstate_balance VALIDATE CONSTRAINT balance_free_plus_used_is_total;
EXCEPTION WHEN check_violation THEN
    RAISE WARNING 'tradingstate_balance has rows where total <> free + used: fix them, then '
        'VALIDATE CONSTRAINT balance_free_plus_used_is_total';
END $$;
CREATE OR REPLACE FUNCTION tradingstate_audit_no_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tradingstate_auditentry is append-only: TRUNCATE refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tradingstate_audit_no_truncate BEFORE TRUNCATE ON tradingstate_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION tradingstate_audit_no_truncate();
"""
PG_REVERSE = """
DROP TRIGGER IF EXISTS tradingstate_audit_no_truncate ON tradingstate_auditentry;
DROP FUNCTION IF EXISTS tradingstate_audit_no_truncate();
ALTER TABLE tradingstate_balance DROP CONSTRAINT IF EXISTS balance_free_plus_used_is_total;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("tradingstate", "0008_paper_venue_matching")]

    operations = [
        migrations.AddConstraint(
            model_name="balance",
            constraint=models.CheckConstraint(
                condition=models.Q(("free__gte", 0)), name="balance_free_gte_0"
            ),
        ),
        migrations.AddConstraint(
            model_name="balance",
            constraint=models.CheckConstraint(
                condition=models.Q(("total__gte", 0)), name="balance_total_gte_0"
            ),
        ),
        migrations.RunPython(forward, reverse),
    ]
