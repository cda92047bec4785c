"""PostgreSQL triggers on every clinical and study-configuration table (settings.AUDITED_APPS),
installed after each migrate, so a new model is covered without code of its own:

* changes made outside the audited services (QuerySet.update(), bulk_update, raw SQL, psql)
  are still written to the audit trail, attributed to the database role;
* DELETE is refused: clinical records are voided, never hard-deleted (a model that says
  `audit_deletable = True`, a site membership, may be deleted: the deletion is recorded with
  the old values instead);
* users' roles (the user-group table) are captured the same way;
* TRUNCATE (which skips row triggers) is refused on those tables and on the append-only ones
  (audit trail, auth events, signatures), unless the session says `edc.allow_truncate = on`:
  only the test settings do, because Django empties test databases with TRUNCATE.
"""

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model

CAPTURE_FUNCTION = """
CREATE OR REPLACE FUNCTION edc_capture_change() RETURNS trigger AS $$
DECLARE
    old_j jsonb := CASE WHEN TG_OP = 'INSERT' THEN '{}'::jsonb ELSE to_jsonb(OLD) END;
    new_j jsonb := CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb ELSE to_jsonb(NEW) END;
    row_id bigint := COALESCE((new_j->>'id')::bigint, (old_j->>'id')::bigint);
    ct integer;
    k text;
BEGIN
    IF COALESCE(current_setting('edc.audit_context', true), '') = 'app' THEN
        RETURN NULL;  -- written by an audited service, which records it itself
    END IF;
    IF COALESCE(current_setting('edc.audit_context', true), '') = 'app-row' THEN
        -- The one row an audited service announced (audit.services.audited_save), which
        -- records it itself: the announcement is used up here, so the next write in this
        -- transaction (a QuerySet.update(), raw SQL) is captured again, with no statement
        -- of the service's to reset it.
        PERFORM set_config('edc.audit_context', '', true);
        RETURN NULL;
    END IF;
    SELECT id INTO ct FROM django_content_type WHERE app_label = TG_ARGV[0] AND model = TG_ARGV[1];
    FOR k IN SELECT jsonb_object_keys(old_j || new_j) LOOP
        CONTINUE WHEN k IN ('id', 'uuid', 'created_at', 'created_by_id', 'updated_at',
                            'updated_by_id');
        CONTINUE WHEN (old_j->k) IS NOT DISTINCT FROM (new_j->k);
        INSERT INTO audit_auditentry (timestamp, user_id, user_name, action, content_type_id,
            object_id, object_repr, patient_id, form_code, field_name, old_value, new_value, reason,
            ip_address, channel)
        VALUES (now(), NULL, 'database:' || current_user,
            CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'DELETE' THEN 'delete' ELSE 'update' END,
            ct, row_id, TG_TABLE_NAME || ' #' || row_id, NULL, '', k,
            COALESCE(old_j->>k, ''), COALESCE(new_j->>k, ''),
            'Changed outside the application (recorded by the database)',
            inet_client_addr(),
            'database: ' || COALESCE(NULLIF(current_setting('application_name', true), ''),
                                     'unnamed client'));
    END LOOP;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- A role given or taken outside the application (raw SQL on the user-group table): one row on
-- the user, field "roles", the group's name as the old (removed) or new (given) value.
CREATE OR REPLACE FUNCTION edc_capture_role_change() RETURNS trigger AS $$
DECLARE
    member_id bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END;
    role_id bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.group_id ELSE NEW.group_id END;
    role_name text;
    ct integer;
BEGIN
    IF COALESCE(current_setting('edc.audit_context', true), '') = 'app' THEN
        RETURN NULL;  -- the application records role changes itself (audit.signals)
    END IF;
    SELECT id INTO ct FROM django_content_type WHERE app_label = TG_ARGV[0] AND model = TG_ARGV[1];
    SELECT name INTO role_name FROM auth_group WHERE id = role_id;
    INSERT INTO audit_auditentry (timestamp, user_id, user_name, action, content_type_id,
        object_id, object_repr, patient_id, form_code, field_name, old_value, new_value, reason,
        ip_address, channel)
    VALUES (now(), NULL, 'database:' || current_user, 'update', ct, member_id,
        TG_ARGV[1] || ' #' || member_id, NULL, '', 'roles',
        CASE WHEN TG_OP = 'DELETE' THEN COALESCE(role_name, '') ELSE '' END,
        CASE WHEN TG_OP = 'DELETE' THEN '' ELSE COALESCE(role_name, '') END,
        'Changed outside the application (recorded by the database)',
        inet_client_addr(),
        'database: ' || COALESCE(NULLIF(current_setting('application_name', true), ''),
                                 'unnamed client'));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION edc_refuse_delete() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is a clinical table: records are voided, never deleted', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION edc_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF COALESCE(current_setting('edc.allow_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% cannot be truncated: its records are kept', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
"""

# The append-only tables (their own migrations refuse UPDATE/DELETE row by row).
APPEND_ONLY_TABLES = (
    "audit_auditentry",
    "audit_chainhead",
    "audit_authevent",
    "monitoring_signature",
    "monitoring_signaturerevocation",
)


# Written only by the triggers, as the owner: the application's role may read them only.
TRIGGER_WRITTEN_TABLES = ("audit_chainhead",)


def clinical_models() -> list:
    """Every concrete model of the clinical apps: each must be audited. A model opts out
    only by saying why (`audit_exempt = True` with a comment: reminders, configuration)."""
    models = []
    for label in settings.AUDITED_APPS:
        if apps.is_installed(label):
            models += [
                m
                for m in apps.get_app_config(label).get_models()
                if not m._meta.auto_created and not getattr(m, "audit_exempt", False)
            ]
    return models


def install(connection) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(CAPTURE_FUNCTION)
        for model in clinical_models():
            table = connection.ops.quote_name(model._meta.db_table)
            deletable = getattr(model, "audit_deletable", False)
            events = "INSERT OR UPDATE OR DELETE" if deletable else "INSERT OR UPDATE"
            cursor.execute(f"DROP TRIGGER IF EXISTS edc_capture ON {table}")
            cursor.execute(
                f"CREATE TRIGGER edc_capture AFTER {events} ON {table} FOR EACH ROW "
                f"EXECUTE FUNCTION edc_capture_change('{model._meta.app_label}', "
                f"'{model._meta.model_name}')"
            )
            cursor.execute(f"DROP TRIGGER IF EXISTS edc_no_delete ON {table}")
            if not deletable:
                cursor.execute(
                    f"CREATE TRIGGER edc_no_delete BEFORE DELETE ON {table} FOR EACH ROW "
                    "EXECUTE FUNCTION edc_refuse_delete()"
                )
        _install_role_capture(connection, cursor)
        # Append-only records (signatures, reviews...): no UPDATE either, whoever asks. The
        # function is audit migration 0004's.
        for model in clinical_models():
            if getattr(model, "append_only", False):
                table = connection.ops.quote_name(model._meta.db_table)
                cursor.execute(f"DROP TRIGGER IF EXISTS edc_append_only ON {table}")
                cursor.execute(
                    f"CREATE TRIGGER edc_append_only BEFORE UPDATE ON {table} FOR EACH ROW "
                    "EXECUTE FUNCTION edc_append_only()"
                )
        existing = set(connection.introspection.table_names(cursor))
        kept = [m._meta.db_table for m in clinical_models()]
        kept += [t for t in APPEND_ONLY_TABLES if t in existing]
        for name in dict.fromkeys(kept):
            table = connection.ops.quote_name(name)
            cursor.execute(f"DROP TRIGGER IF EXISTS edc_no_truncate ON {table}")
            cursor.execute(
                f"CREATE TRIGGER edc_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION edc_refuse_truncate()"
            )


def _install_role_capture(connection, cursor) -> None:
    """Users' roles are study configuration too: a group given or taken by raw SQL is
    recorded on the user, like any other change made outside the application."""
    user_model = get_user_model()
    table = connection.ops.quote_name(user_model.groups.through._meta.db_table)
    cursor.execute(f"DROP TRIGGER IF EXISTS edc_capture_roles ON {table}")
    cursor.execute(
        f"CREATE TRIGGER edc_capture_roles AFTER INSERT OR DELETE ON {table} FOR EACH ROW "
        f"EXECUTE FUNCTION edc_capture_role_change('{user_model._meta.app_label}', "
        f"'{user_model._meta.model_name}')"
    )


def installed_tables(connection) -> set[str]:
    """Tables that carry both triggers (for the coverage test)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_object_table FROM information_schema.triggers "
            "WHERE trigger_name IN ('edc_capture', 'edc_no_delete') "
            "GROUP BY event_object_table HAVING COUNT(DISTINCT trigger_name) = 2"
        )
        return {row[0] for row in cursor.fetchall()}


def capture_events(connection, table: str) -> set[str]:
    """The row events the capture trigger of one table records (INSERT, UPDATE, DELETE)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_manipulation FROM information_schema.triggers "
            "WHERE trigger_name = 'edc_capture' AND event_object_table = %s",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}
