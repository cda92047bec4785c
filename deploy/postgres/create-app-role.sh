#!/bin/sh
# Run once by the postgres image when its data volume is first initialised
# (/docker-entrypoint-initdb.d). Creates the role the web, worker and beat connect as: it owns
# nothing, so it cannot disable the audit triggers (audit/dbroles.py). Its privileges are
# granted by the migrate service after every migrate (DATABASE_APP_ROLE).
# On a volume initialised before this script existed, run the same statement once by hand.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="${APP_DB_USER:-edc_app}" -v password="$APP_DB_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SQL
