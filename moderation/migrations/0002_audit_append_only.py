"""On PostgreSQL, reject UPDATE and DELETE on the audit table: the log is append-only.

TRUNCATE (used by test isolation) is a different statement and is not affected. SQLite has no
such trigger here; ``verify_audit`` detects rewriting there.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION takedown_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'moderation_auditevent is append-only: % is not allowed', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER moderation_auditevent_append_only
    BEFORE UPDATE OR DELETE ON moderation_auditevent
    FOR EACH ROW EXECUTE FUNCTION takedown_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS moderation_auditevent_append_only ON moderation_auditevent;
DROP FUNCTION IF EXISTS takedown_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("moderation", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
