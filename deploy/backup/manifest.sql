-- The backup manifest: what the database held when it was dumped, as one JSON document.
--
-- backup.sh runs it with psql in the same snapshot as pg_dump (so it describes exactly the
-- rows in the dump) and saves it as manifest.json next to db.dump; `manage.py
-- verify_restore` (audit/integrity.py) runs the same file on the restored copy and compares.
-- One file, so both sides compute the digests the same way.
--
-- Per table: the row count and a SHA-256 over the SHA-256 of each row's text, sorted, so it
-- does not depend on the physical order of the rows (a restore rewrites it). The rows' text
-- depends on these session settings, fixed here: both sides must print values alike.
-- Also the triggers (the audit capture and the no-delete/no-truncate/append-only guards must
-- come back with the data) and, for the report, the extent of the audit trail.
--
-- Format, for audit/integrity.py: each statement ends with a semicolon at the end of its line,
-- the last statement is the query, returning one row with one JSON value.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 1;
SET bytea_output = 'hex';
WITH tables AS (
    SELECT c.oid::regclass::text AS name,
           query_to_xml(format(
               'SELECT count(*) AS n, encode(sha256(convert_to(coalesce(string_agg(h, '''' '
               'ORDER BY h COLLATE "C"), ''''), ''UTF8'')), ''hex'') AS d FROM (SELECT '
               'encode(sha256(convert_to(t::text, ''UTF8'')), ''hex'') AS h FROM %s t) r',
               c.oid::regclass), false, true, '') AS x
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_%'
)
SELECT jsonb_pretty(jsonb_build_object(
    'format', 1,
    'database', current_database(),
    'server_version', current_setting('server_version'),
    'taken_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'tables', (
        SELECT coalesce(jsonb_object_agg(name, jsonb_build_object(
            'rows', (xpath('/row/n/text()', x))[1]::text::bigint,
            'sha256', (xpath('/row/d/text()', x))[1]::text)), '{}'::jsonb)
        FROM tables
    ),
    'triggers', (
        SELECT coalesce(jsonb_agg(tgrelid::regclass::text || ' ' || tgname || ' ' || tgenabled::text
                                  ORDER BY tgrelid::regclass::text COLLATE "C", tgname), '[]')
        FROM pg_trigger
        WHERE NOT tgisinternal
    ),
    'audit_trail', (
        SELECT CASE WHEN to_regclass('audit_auditentry') IS NULL THEN NULL ELSE
            (xpath('/row/j/text()', query_to_xml(
                'SELECT jsonb_build_object(''rows'', count(*), ''last_id'', max(id), '
                '''last_at'', to_char(max(timestamp) AT TIME ZONE ''UTC'', '
                '''YYYY-MM-DD"T"HH24:MI:SS"Z"'')) AS j FROM audit_auditentry',
                false, true, '')))[1]::text::jsonb
        END
    )
));
