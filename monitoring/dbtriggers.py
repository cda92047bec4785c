"""PostgreSQL triggers that keep the stored SDV status (SdvFormStatus) honest when a form or a
verification is written outside the application (raw SQL, psql, QuerySet.update()): the row
is queued in SdvRecheck, and the worklist hashes its values again before it counts
(monitoring.services.sdv_recheck). The application's own writes (`edc.audit_context = 'app'`,
audit.services.app_write) update the stored status themselves in their transaction and are
not queued. Installed after each migrate, on every registered CRF table, so a new CRF is
covered without code of its own. SQLite (the demo) has no capture of raw writes at all (no
audit trigger either): nothing to queue there."""

from core import crf

RECHECK_FUNCTION = """
CREATE OR REPLACE FUNCTION edc_sdv_recheck() RETURNS trigger AS $$
BEGIN
    IF COALESCE(current_setting('edc.audit_context', true), '') IN ('app', 'app-row') THEN
        RETURN NULL;  -- an application write: its status was stored in its own transaction
    END IF;
    IF TG_ARGV[0] = '' THEN  -- a source verification: the form it names
        INSERT INTO monitoring_sdvrecheck (form_code, record_id)
        VALUES (NEW.form_code, NEW.record_id);
    ELSE
        INSERT INTO monitoring_sdvrecheck (form_code, record_id) VALUES (TG_ARGV[0], NEW.id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


# Triggers on one table fire in the alphabetical order of their names: this one must run before
# the audit capture trigger (`edc_capture`), which uses up an 'app-row' announcement
# (audit.services.audited_save) by clearing it.
TRIGGER = "edc_before_capture_sdv_recheck"


def install(connection) -> None:
    if connection.vendor != "postgresql":
        return
    from .models import SourceVerification

    targets = [(d.model._meta.db_table, d.code) for d in crf.all_definitions()]
    targets.append((SourceVerification._meta.db_table, ""))
    with connection.cursor() as cursor:
        cursor.execute(RECHECK_FUNCTION)
        existing = set(connection.introspection.table_names(cursor))
        for table, code in targets:
            if table not in existing:
                continue
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"DROP TRIGGER IF EXISTS edc_sdv_recheck ON {quoted}")  # old name
            cursor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {quoted}")
            cursor.execute(
                f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE ON {quoted} "
                f"FOR EACH ROW EXECUTE FUNCTION edc_sdv_recheck('{code}')"
            )
