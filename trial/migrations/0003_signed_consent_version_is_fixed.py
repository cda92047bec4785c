from django.db import migrations

# A consent version that patients have signed keeps its label, effective date and document
# (what they signed): PostgreSQL refuses an UPDATE of those columns whoever asks (raw SQL,
# QuerySet.update()), as trial.models.ConsentVersion.clean and trial.services refuse it in the
# application. A version nobody has signed yet stays editable.
CREATE = """
CREATE OR REPLACE FUNCTION edc_signed_consent_version_is_fixed() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM patients_consent WHERE consent_version_id = OLD.id) THEN
        RAISE EXCEPTION 'consent version % has signed consents: its version label, effective '
            'date and document cannot be changed (add a new version to supersede it)',
            OLD.version USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS edc_signed_consent_version ON trial_consentversion;
CREATE TRIGGER edc_signed_consent_version BEFORE UPDATE ON trial_consentversion
    FOR EACH ROW
    WHEN (OLD.version IS DISTINCT FROM NEW.version
          OR OLD.effective_date IS DISTINCT FROM NEW.effective_date
          OR OLD.document IS DISTINCT FROM NEW.document)
    EXECUTE FUNCTION edc_signed_consent_version_is_fixed();
"""
DROP = """
DROP TRIGGER IF EXISTS edc_signed_consent_version ON trial_consentversion;
DROP FUNCTION IF EXISTS edc_signed_consent_version_is_fixed();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("trial", "0002_protocol_eligibility_criteria"),
        # The function reads patients_consent.
        ("patients", "0001_initial"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
