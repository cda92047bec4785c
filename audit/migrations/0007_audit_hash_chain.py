"""The audit trail as hash chains (issue 11; audit/chain.py says why per patient).

PostgreSQL: a BEFORE INSERT trigger on audit_auditentry sets the row's chain, its sequence in
the chain, the previous row's hash and its own, whatever the INSERT said, so no path (the
services' bulk_create, the capture trigger, psql) writes an unchained row. Writers of one
chain are serialised by a row lock on its head (SELECT ... FOR UPDATE on audit_chainhead):
the second waits for the first to commit and links to its row. SQLite (the demo): an AFTER
INSERT trigger calling edc_audit_hash, a Python function registered on every connection.

Existing rows are chained here, in id order (the best order they have)."""

from django.db import migrations, models

# Canonical text: 'edc-audit-v1' | chain | prev_hash | the content columns, each NULL -> '~'
# or "<bytes>:<value>" (audit.chain.row_hash writes the same bytes).
POSTGRES_CREATE = """
CREATE OR REPLACE FUNCTION edc_audit_field(v text) RETURNS text AS $$
    SELECT CASE WHEN v IS NULL THEN '~' ELSE octet_length(v)::text || ':' || v END
$$ LANGUAGE sql IMMUTABLE;

CREATE OR REPLACE FUNCTION edc_audit_row_hash(e audit_auditentry) RETURNS text AS $$
    SELECT encode(sha256(convert_to(array_to_string(ARRAY[
        'edc-audit-v1',
        edc_audit_field(e.chain),
        edc_audit_field(e.prev_hash),
        edc_audit_field(to_char(e."timestamp" AT TIME ZONE 'UTC',
                                'YYYY-MM-DD"T"HH24:MI:SS.US')),
        edc_audit_field(e.user_id::text),
        edc_audit_field(e.user_name),
        edc_audit_field(e.action),
        edc_audit_field(e.content_type_id::text),
        edc_audit_field(e.object_id::text),
        edc_audit_field(e.object_repr),
        edc_audit_field(e.patient_id::text),
        edc_audit_field(e.form_code),
        edc_audit_field(e.field_name),
        edc_audit_field(e.old_value),
        edc_audit_field(e.new_value),
        edc_audit_field(e.reason),
        edc_audit_field(host(e.ip_address)),
        edc_audit_field(e.user_agent),
        edc_audit_field(e.channel)
    ], '|'), 'UTF8')), 'hex')
$$ LANGUAGE sql STABLE;

CREATE OR REPLACE FUNCTION edc_audit_chain_link() RETURNS trigger AS $$
DECLARE
    last_seq bigint;
    last_hash text;
    head_seq bigint;
BEGIN
    NEW.chain := CASE WHEN NEW.patient_id IS NULL THEN 'study'
                      ELSE 'patient:' || NEW.patient_id END;
    -- The chain's lock, held to commit: a second writer waits here until the first commits,
    -- then reads the row the first one left (READ COMMITTED: a fresh snapshot per statement).
    -- 7411 keeps these locks apart from any other advisory lock.
    PERFORM pg_advisory_xact_lock(7411, hashtext(NEW.chain));
    SELECT chain_seq, row_hash INTO last_seq, last_hash FROM audit_auditentry
        WHERE chain = NEW.chain AND chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1;
    -- Never below the head: rows cut from the chain's end stay a gap.
    SELECT seq INTO head_seq FROM audit_chainhead WHERE chain = NEW.chain;
    NEW.chain_seq := GREATEST(COALESCE(last_seq, 0), COALESCE(head_seq, 0)) + 1;
    NEW.prev_hash := COALESCE(last_hash, '');
    NEW.row_hash := edc_audit_row_hash(NEW);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- Once per statement, not per row (updating one head row per inserted row would leave a
-- statement of n rows walking n versions of it): the last row of each chain it wrote. As the
-- tables' owner (SECURITY DEFINER): the application's role may not write the heads itself
-- (audit/dbroles.py).
CREATE OR REPLACE FUNCTION edc_audit_chain_heads() RETURNS trigger
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO audit_chainhead (chain, seq, row_hash, updated_at)
        SELECT DISTINCT ON (chain) chain, chain_seq, row_hash, now() FROM inserted
        WHERE chain_seq IS NOT NULL ORDER BY chain, chain_seq DESC
        ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, row_hash = EXCLUDED.row_hash,
            updated_at = EXCLUDED.updated_at;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- The head moves only with an audit row (the trigger above runs at depth 1 and its INSERT
-- fires this one at depth 2); by hand it is refused, like the trail itself.
CREATE OR REPLACE FUNCTION edc_audit_chainhead_guard() RETURNS trigger AS $$
BEGIN
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'audit_chainhead is kept by the audit trail: % refused', TG_OP;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$ LANGUAGE plpgsql;
"""

POSTGRES_TRIGGERS = """
DROP TRIGGER IF EXISTS edc_audit_chain ON audit_auditentry;
CREATE TRIGGER edc_audit_chain BEFORE INSERT ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION edc_audit_chain_link();
DROP TRIGGER IF EXISTS edc_audit_chain_heads ON audit_auditentry;
CREATE TRIGGER edc_audit_chain_heads AFTER INSERT ON audit_auditentry
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION edc_audit_chain_heads();
DROP TRIGGER IF EXISTS edc_audit_chainhead_guard ON audit_chainhead;
CREATE TRIGGER edc_audit_chainhead_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_chainhead
    FOR EACH ROW EXECUTE FUNCTION edc_audit_chainhead_guard();
"""

# Existing rows, in id order within each chain, through the same hash function; the
# append-only trigger is off for this one transaction (only the table's owner may do that).
POSTGRES_BACKFILL = """
ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only;
DO $$
DECLARE
    r audit_auditentry;
    current_chain text := NULL;
    seq bigint;
    last_hash text;
BEGIN
    FOR r IN SELECT * FROM audit_auditentry
             ORDER BY CASE WHEN patient_id IS NULL THEN 'study'
                           ELSE 'patient:' || patient_id END, id LOOP
        r.chain := CASE WHEN r.patient_id IS NULL THEN 'study' ELSE 'patient:' || r.patient_id END;
        IF current_chain IS DISTINCT FROM r.chain THEN
            IF current_chain IS NOT NULL THEN
                INSERT INTO audit_chainhead VALUES (current_chain, seq, last_hash, now());
            END IF;
            current_chain := r.chain;
            seq := 0;
            last_hash := '';
        END IF;
        seq := seq + 1;
        r.chain_seq := seq;
        r.prev_hash := last_hash;
        r.row_hash := edc_audit_row_hash(r);
        last_hash := r.row_hash;
        UPDATE audit_auditentry SET chain = r.chain, chain_seq = r.chain_seq,
            prev_hash = r.prev_hash, row_hash = r.row_hash WHERE id = r.id;
    END LOOP;
    IF current_chain IS NOT NULL THEN
        INSERT INTO audit_chainhead VALUES (current_chain, seq, last_hash, now());
    END IF;
END $$;
ALTER TABLE audit_auditentry ENABLE TRIGGER audit_entry_append_only;
"""

POSTGRES_DROP = """
DROP TRIGGER IF EXISTS edc_audit_chain ON audit_auditentry;
DROP TRIGGER IF EXISTS edc_audit_chain_heads ON audit_auditentry;
DROP TRIGGER IF EXISTS edc_audit_chainhead_guard ON audit_chainhead;
DROP FUNCTION IF EXISTS edc_audit_chain_link();
DROP FUNCTION IF EXISTS edc_audit_chain_heads();
DROP FUNCTION IF EXISTS edc_audit_chainhead_guard();
DROP FUNCTION IF EXISTS edc_audit_row_hash(audit_auditentry);
DROP FUNCTION IF EXISTS edc_audit_field(text);
"""

CONTENT = (
    '"timestamp", user_id, user_name, action, content_type_id, object_id, object_repr, '
    "patient_id, form_code, field_name, old_value, new_value, reason, ip_address, user_agent, "
    "channel"
)
CHAIN_OF_NEW = "CASE WHEN NEW.patient_id IS NULL THEN 'study' ELSE 'patient:' || NEW.patient_id END"
# SQLite writes serially (one writer at a time), so reading the head needs no lock.
SQLITE_TRIGGER = f"""
CREATE TRIGGER edc_audit_chain AFTER INSERT ON audit_auditentry BEGIN
    INSERT OR IGNORE INTO audit_chainhead (chain, seq, row_hash) VALUES ({CHAIN_OF_NEW}, 0, '');
    UPDATE audit_auditentry SET chain = {CHAIN_OF_NEW},
        chain_seq = (SELECT seq + 1 FROM audit_chainhead WHERE chain = {CHAIN_OF_NEW}),
        prev_hash = (SELECT row_hash FROM audit_chainhead WHERE chain = {CHAIN_OF_NEW})
        WHERE id = NEW.id;
    UPDATE audit_auditentry SET row_hash = edc_audit_hash(chain, prev_hash, {CONTENT})
        WHERE id = NEW.id;
    UPDATE audit_chainhead SET
        seq = (SELECT chain_seq FROM audit_auditentry WHERE id = NEW.id),
        row_hash = (SELECT row_hash FROM audit_auditentry WHERE id = NEW.id),
        updated_at = CURRENT_TIMESTAMP
        WHERE chain = {CHAIN_OF_NEW};
END;
"""


def _sqlite_backfill(schema_editor):
    from audit.chain import CONTENT_COLUMNS, chain_of, sqlite_row_hash

    heads: dict[str, tuple[int, str]] = {}
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {CONTENT} FROM audit_auditentry ORDER BY id")
        rows = cursor.fetchall()
        for entry_id, *values in rows:
            chain = chain_of(values[CONTENT_COLUMNS.index("patient_id")])
            seq, prev = heads.get(chain, (0, ""))
            digest = sqlite_row_hash(chain, prev, *values)
            cursor.execute(
                "UPDATE audit_auditentry SET chain = %s, chain_seq = %s, prev_hash = %s, "
                "row_hash = %s WHERE id = %s",
                [chain, seq + 1, prev, digest, entry_id],
            )
            heads[chain] = (seq + 1, digest)
        for chain, (seq, digest) in heads.items():
            cursor.execute(
                "INSERT INTO audit_chainhead (chain, seq, row_hash, updated_at) "
                "VALUES (%s, %s, %s, CURRENT_TIMESTAMP)",
                [chain, seq, digest],
            )


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE, params=None)
        schema_editor.execute(POSTGRES_BACKFILL, params=None)
        schema_editor.execute(POSTGRES_TRIGGERS, params=None)
    elif vendor == "sqlite":
        from audit.chain import register_sqlite_function

        register_sqlite_function(None, schema_editor.connection)
        _sqlite_backfill(schema_editor)
        schema_editor.execute(SQLITE_TRIGGER, params=None)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS edc_audit_chain", params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_second_factor_events")]
    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="chain",
            field=models.CharField(blank=True, db_default="", editable=False, max_length=40),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="chain_seq",
            field=models.BigIntegerField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="prev_hash",
            field=models.CharField(blank=True, db_default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="row_hash",
            field=models.CharField(blank=True, db_default="", editable=False, max_length=64),
        ),
        migrations.AddConstraint(
            model_name="auditentry",
            constraint=models.UniqueConstraint(
                fields=("chain", "chain_seq"), name="audit_chain_seq_unique"
            ),
        ),
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                ("chain", models.CharField(max_length=40, primary_key=True, serialize=False)),
                ("seq", models.BigIntegerField()),
                ("row_hash", models.CharField(max_length=64)),
                ("updated_at", models.DateTimeField(null=True)),
            ],
            options={"db_table": "audit_chainhead"},
        ),
        migrations.RunPython(forwards, backwards),
    ]
