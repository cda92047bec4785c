"""Does a restored copy of the database hold what was backed up? (`manage.py verify_restore`,
run by deploy/backup/restore-drill.sh; README: Backups and restore.)

The backup writes manifest.json next to the dump, taken in pg_dump's own snapshot by
deploy/backup/manifest.sql: per table the row count and a SHA-256 of the rows' content, the
triggers, the audit trail's extent. `restore_verify` runs the same SQL on the restored copy and
compares, then checks what only the application can: the audit trail's hash chains recompute
(audit/chain.py), the sequences are ahead of the ids (new rows can be added), every file the
database names is in the restored media folder, and what the apps above register
(`register_check`: monitoring's, that every e-signature still verifies against the data it
covers).

Read only: the checks run in one READ ONLY transaction, so verifying changes nothing, not even
the audit trail."""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import connections, models, transaction

from .models import AuditEntry

MANIFEST_SQL = settings.BASE_DIR / "deploy" / "backup" / "manifest.sql"
MANIFEST_FORMAT = 1
AUDIT_TABLE = AuditEntry._meta.db_table
# Enough to find a problem; the rest is counted.
SHOWN = 20


@dataclass
class Check:
    name: str
    summary: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class RestoreReport:
    database: str
    backup: dict
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def lines(self) -> list[str]:
        out = [
            f"Restore verification of database {self.database!r} against the backup of "
            f"{self.backup.get('database')!r} taken at {self.backup.get('taken_at')}"
        ]
        for check in self.checks:
            out.append(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: {check.summary}")
            shown = check.problems[:SHOWN]
            out += [f"          - {p}" for p in shown]
            if len(check.problems) > SHOWN:
                out.append(f"          ... and {len(check.problems) - SHOWN} more")
            out += [f"          note: {n}" for n in check.notes[:SHOWN]]
        out.append(f"RESULT: {'PASS' if self.passed else 'FAIL'}")
        return out


def database_manifest(connection) -> dict:
    """deploy/backup/manifest.sql run on `connection`: the same document backup.sh saves."""
    text = "\n".join(
        line for line in MANIFEST_SQL.read_text().splitlines() if not line.startswith("--")
    )
    statements = [s for s in re.split(r";\s*$", text, flags=re.MULTILINE) if s.strip()]
    with connection.cursor() as cursor:
        for statement in statements[:-1]:
            cursor.execute(statement)
        cursor.execute(statements[-1])
        return json.loads(cursor.fetchone()[0])


def _table_check(expected: dict, actual: dict) -> Check:
    want, got = expected["tables"], actual["tables"]
    check = Check("tables")
    for name in sorted(want.keys() - got.keys()):
        check.problems.append(f"{name}: missing from the restored database")
    for name in sorted(got.keys() - want.keys()):
        check.problems.append(
            f"{name}: in the restored database but not in the backup (restored into a "
            "database that was not empty?)"
        )
    for name in sorted(want.keys() & got.keys()):
        w, g = want[name], got[name]
        if w["rows"] != g["rows"]:
            check.problems.append(f"{name}: {w['rows']} rows at backup, {g['rows']} restored")
        elif w["sha256"] != g["sha256"]:
            check.problems.append(
                f"{name}: {w['rows']} rows as at backup, but their contents differ"
            )
    rows = sum(t["rows"] for t in want.values())
    check.summary = (
        f"{len(want)} tables, {rows} rows: same row counts and contents as at backup"
        if check.passed
        else f"{len(check.problems)} of {len(want)} tables differ from the backup"
    )
    return check


def _audit_check(expected: dict, actual: dict) -> Check:
    """The audit trail on its own: every row present and identical, none added by the restore
    (pg_restore creates the triggers after loading the data, so COPY fires none)."""
    check = Check("audit trail")
    want, got = expected.get("audit_trail"), actual.get("audit_trail")
    if want is None:
        check.problems.append("the backup manifest has no audit trail")
        return check
    if got is None:
        check.problems.append(f"{AUDIT_TABLE} is missing from the restored database")
        return check
    w_table, g_table = expected["tables"][AUDIT_TABLE], actual["tables"][AUDIT_TABLE]
    if got["rows"] > want["rows"] or (got["last_id"] or 0) > (want["last_id"] or 0):
        check.problems.append(
            f"rows were added: {got['rows']} rows up to #{got['last_id']} restored, "
            f"{want['rows']} up to #{want['last_id']} at backup"
        )
    elif got["rows"] < want["rows"]:
        check.problems.append(f"rows are missing: {got['rows']} restored, {want['rows']} at backup")
    if w_table["sha256"] != g_table["sha256"]:
        check.problems.append(
            "the rows differ from those backed up (SHA-256 over every row: "
            f"{g_table['sha256'][:16]}... restored, {w_table['sha256'][:16]}... at backup)"
        )
    check.summary = (
        f"{want['rows']} rows up to #{want['last_id']} ({want['last_at']}): every row present "
        "and identical, none added"
        if check.passed
        else "differs from the backup"
    )
    return check


def _trigger_check(expected: dict, actual: dict) -> Check:
    """The triggers that keep the trail (capture, no delete, no truncate, append-only) must
    come back with the data, enabled as they were: a restore without them is unguarded."""
    check = Check("triggers")
    want, got = set(expected["triggers"]), set(actual["triggers"])
    check.problems += [f"missing or not as at backup: {t}" for t in sorted(want - got)]
    check.problems += [f"not in the backup: {t}" for t in sorted(got - want)]
    check.summary = (
        f"{len(want)} present and enabled as at backup"
        if check.passed
        else "differ from the backup (table trigger state; O = enabled)"
    )
    return check


def _sequence_check(connection) -> Check:
    """Every identity or serial column's sequence is at or past the column's largest value, so
    the restored database can take new rows without duplicate keys."""
    check = Check("sequences")
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, a.attname, "
            "pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
            "a.attname) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = current_schema() AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY 1, 2"
        )
        columns = [row for row in cursor.fetchall() if row[2]]
        for table, column, sequence in columns:
            cursor.execute(f"SELECT max({quote(column)}) FROM {quote(table)}")
            largest = cursor.fetchone()[0]
            cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
            last_value, is_called = cursor.fetchone()
            next_value = last_value + 1 if is_called else last_value
            if largest is not None and next_value <= largest:
                check.problems.append(
                    f"{table}.{column}: next value {next_value}, but the column holds {largest}"
                )
    check.summary = (
        f"{len(columns)} ahead of their columns' values"
        if check.passed
        else "behind their tables: inserts would collide"
    )
    return check


# ---- checks the apps above register ----------------------------------------------------------

# What only an app above `audit` can check (monitoring: every e-signature still verifies),
# registered from that app's AppConfig.ready(); each returns a Check. Run after the audit chain,
# before the media files, in the order registered.
_registered_checks: list[Callable[[], Check]] = []


def register_check(check: Callable[[], Check]) -> None:
    if check not in _registered_checks:
        _registered_checks.append(check)


# ---- media -----------------------------------------------------------------------------------


def _file_fields(model) -> list[models.FileField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, models.FileField)]


def media_files_named() -> list[tuple[str, str]]:
    """(what, file name) for every file the database names: each non-empty FileField of every
    installed model (signed consent scans, approved consent forms, the PDFs and ZIPs of jobs
    that are ready to download: a job's row names its file only once it is done). A model
    says what its file is with `stored_file_label(field_name)`; otherwise the record's type
    and id are shown."""
    named = []
    for model in apps.get_models():
        for file_field in _file_fields(model):
            rows = model._base_manager.exclude(**{file_field.name: ""}).exclude(
                **{f"{file_field.name}__isnull": True}
            )
            for record in rows.order_by("pk"):
                label = getattr(record, "stored_file_label", None)
                what = (
                    label(file_field.name)
                    if label is not None
                    else f"{file_field.verbose_name} of {model._meta.verbose_name} #{record.pk}"
                )
                named.append((what, getattr(record, file_field.attname).name))
    return named


def _media_check(media_root: Path) -> Check:
    check = Check("media")
    named = media_files_named()
    for what, name in named:
        if not (media_root / name).is_file():
            check.problems.append(f"{what}: {name} is not in {media_root}")
    check.summary = (
        f"the {len(named)} file(s) the database names are all in {media_root}"
        if check.passed
        else f"{len(check.problems)} of {len(named)} file(s) the database names are missing"
    )
    return check


def _schema_check(connection) -> Check:
    """The restored copy is at the migrations this code has: the application's checks
    (signatures, media) read the tables through the code's models."""
    from django.db.migrations.executor import MigrationExecutor

    check = Check("schema")
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    applied = set(executor.loader.applied_migrations)
    unknown = sorted(applied - set(executor.loader.graph.nodes))
    check.problems += [f"not applied in the copy: {m.app_label}.{m.name}" for m, _ in pending]
    check.problems += [f"applied in the copy, unknown to this code: {a}.{n}" for a, n in unknown]
    check.summary = (
        f"at this code's migrations ({len(applied)} applied)"
        if check.passed
        else "the copy and this code are at different migrations: run the verification "
        "with the code version that made the backup (signatures and media not checked)"
    )
    return check


def _chain_check() -> Check:
    """The audit trail's hash chains recomputed on the copy (audit/chain.py): the manifest
    proves the copy equals the backup, this that the backup's trail was itself untouched."""
    from .chain import verify_audit_trail

    check = Check("audit chain")
    report = verify_audit_trail()
    check.problems += [str(link) for link in report.broken]
    check.summary = report.summary()
    return check


def restore_verify(*, manifest: dict, media_root: Path) -> RestoreReport:
    """Compare the database (the default connection: point DATABASE_URL at the restored copy)
    with the backup's manifest, and check its signatures, sequences and media files. Changes
    nothing."""
    connection = connections["default"]
    if connection.vendor != "postgresql":
        raise ValueError("Restore verification needs PostgreSQL.")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"Unknown manifest format {manifest.get('format')!r}.")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        actual = database_manifest(connection)
        checks = [
            _table_check(manifest, actual),
            _audit_check(manifest, actual),
            _trigger_check(manifest, actual),
            _sequence_check(connection),
        ]
        schema = _schema_check(connection)
        checks.append(schema)
        # The application's own checks read the tables through the code's models.
        if schema.passed:
            checks += [_chain_check(), *(check() for check in _registered_checks)]
            checks.append(_media_check(Path(media_root)))
    return RestoreReport(database=connection.settings_dict["NAME"], backup=manifest, checks=checks)
