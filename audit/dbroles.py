"""The database role the application connects as in production (settings.DATABASE_APP_ROLE).

A table's owner can `ALTER TABLE ... DISABLE TRIGGER` or `DROP TRIGGER`, and so switch off the
audit capture and the no-delete rule of dbtriggers.py (21 CFR 11.10(e), ICH E6(R3) 4.2: an
audit trail users cannot disable). So migrations run as the owner, and the web, the worker and
beat connect as a role that owns nothing: it reads and writes data, and the privilege system
itself refuses it anything that would undo a record or the triggers that guard them.

Granted after every migrate (audit.apps), so a table added by a later migration is covered
without anyone remembering to run a command."""

from django.core.exceptions import ImproperlyConfigured

from .dbtriggers import APPEND_ONLY_TABLES, TRIGGER_WRITTEN_TABLES, clinical_models


def kept_tables(existing: set[str]) -> tuple[list[str], list[str]]:
    """(tables whose rows are never deleted, tables whose rows are never changed)."""
    append_only = [m._meta.db_table for m in clinical_models() if getattr(m, "append_only", False)]
    append_only += [t for t in APPEND_ONLY_TABLES if t in existing]
    never_deleted = [m._meta.db_table for m in clinical_models()] + append_only
    return list(dict.fromkeys(never_deleted)), list(dict.fromkeys(append_only))


def app_role_grant(connection, role: str) -> None:
    """Give `role` what the application needs and nothing more. Idempotent."""
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
        found = cursor.fetchone()
        if found is None:
            raise ImproperlyConfigured(
                f"DATABASE_APP_ROLE is {role!r} but the database has no such role: create it "
                "first (docker-compose does, in deploy/postgres/create-app-role.sh)."
            )
        if found[0]:
            raise ImproperlyConfigured(
                f"DATABASE_APP_ROLE {role!r} is a superuser: it could disable every trigger."
            )
        name = quote(role)
        # No TRUNCATE, REFERENCES or TRIGGER privilege; no ownership, so no ALTER/DROP.
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {name}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}"
        )
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name}")
        existing = set(connection.introspection.table_names(cursor))
        never_deleted, never_changed = kept_tables(existing)
        # The triggers refuse these too; taking the privilege away says it before them, to
        # anyone connected as the application, whatever a future trigger change does.
        for table in never_deleted:
            cursor.execute(f"REVOKE DELETE ON {quote(table)} FROM {name}")
        for table in never_changed:
            cursor.execute(f"REVOKE UPDATE ON {quote(table)} FROM {name}")
        # The audit chain's heads move only with an audit row (a SECURITY DEFINER trigger).
        for table in TRIGGER_WRITTEN_TABLES:
            if table in existing:
                cursor.execute(f"REVOKE INSERT, UPDATE, DELETE ON {quote(table)} FROM {name}")


def connected_as_table_owner(connection) -> str:
    """Why this connection could switch the audit triggers off ("" when it cannot)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolsuper, pg_has_role(current_user, c.relowner, 'USAGE') "
            "FROM pg_roles r, pg_class c "
            "WHERE r.rolname = current_user AND c.oid = to_regclass('audit_auditentry')"
        )
        row = cursor.fetchone()
    if row is None:
        return ""
    superuser, owner = row
    if superuser:
        return "the application connects as a superuser"
    if owner:
        return "the application connects as the owner of the audit tables"
    return ""
