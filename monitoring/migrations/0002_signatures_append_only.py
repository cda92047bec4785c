from django.db import migrations

TABLES = ["monitoring_signature", "monitoring_signaturerevocation"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        # BEFORE UPDATE: a refused change never reaches the AFTER capture trigger.
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS edc_append_only ON {table}; "
            f"CREATE TRIGGER edc_append_only BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION edc_append_only();",
            params=None,
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS edc_append_only ON {table};", params=None)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial"), ("audit", "0004_append_only_function")]
    operations = [migrations.RunPython(forwards, backwards)]
