from django.db import migrations

# A generic "append-only" trigger function for Part 11 records (auth events here; signatures
# and unlocks in monitoring): PostgreSQL refuses UPDATE and DELETE whoever asks.
CREATE = """
CREATE OR REPLACE FUNCTION edc_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS edc_append_only ON audit_authevent;
CREATE TRIGGER edc_append_only BEFORE UPDATE OR DELETE ON audit_authevent
    FOR EACH ROW EXECUTE FUNCTION edc_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS edc_append_only ON audit_authevent;
DROP FUNCTION IF EXISTS edc_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_alter_auditentry_action_authevent")]
    operations = [migrations.RunPython(forwards, backwards)]
