"""AuditEntry is append-only: the database itself refuses UPDATE (and DELETE on PostgreSQL).

SQLite gets the UPDATE trigger only: Django's test flush empties tables with DELETE there,
while on PostgreSQL it uses TRUNCATE, which row triggers do not see.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION tradingstate_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tradingstate_auditentry is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tradingstate_audit_no_update BEFORE UPDATE ON tradingstate_auditentry
    FOR EACH ROW EXECUTE FUNCTION tradingstate_audit_append_only();
CREATE TRIGGER tradingstate_audit_no_delete BEFORE DELETE ON tradingstate_auditentry
    FOR EACH ROW EXECUTE FUNCTION tradingstate_audit_append_only();
"""
PG_REVERSE = """
DROP TRIGGER IF EXISTS tradingstate_audit_no_update ON tradingstate_auditentry;
DROP TRIGGER IF EXISTS tradingstate_audit_no_delete ON tradingstate_auditentry;
DROP FUNCTION IF EXISTS tradingstate_audit_append_only();
"""
SQLITE_FORWARD = """
CREATE TRIGGER tradingstate_audit_no_update BEFORE UPDATE ON tradingstate_auditentry
BEGIN
    SELECT RAISE(ABORT, 'tradingstate_auditentry is append-only: UPDATE refused');
END;
"""
SQLITE_REVERSE = "DROP TRIGGER IF EXISTS tradingstate_audit_no_update;"


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_REVERSE)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("tradingstate", "0001_initial")]
    operations = [migrations.RunPython(forward, reverse)]
