#!/bin/bash
# Restore drill: prove that a backup made by backup.sh restores. The newest backup (or the
# one named) is checked against its SHA256SUMS, restored into a fresh, empty scratch database
# on the same server and its media into a scratch folder, then `manage.py verify_restore`
# compares the copy with the backup's manifest (every table's rows and contents, the audit
# trail, the triggers, the sequences, every e-signature, every file the database names).
# The scratch database and folder are removed afterwards unless --keep is given.
#
#   restore-drill.sh [--keep] [BACKUP]      BACKUP: a folder under BACKUP_DIR, or its path
#
# Environment:
#   DATABASE_URL    postgres://user:password@host:port/name: a role that may CREATE DATABASE
#                   on the server to restore to (only the server and role are used; the
#                   database named is never touched)
#   BACKUP_DIR      where the backups are (default /backups)
#   DRILL_DATABASE  the scratch database (default edc_restore_drill; dropped and re-created)
#   DRILL_MEDIA     the scratch folder for the media (default: a new temporary folder)
#   PYTHON          the interpreter that runs manage.py (default python)
# Needs pg_restore and psql (PostgreSQL 15 client) and the application (manage.py).
# Prints a PASS/FAIL report; exit status 0 only when everything verified.
set -euo pipefail
export LC_ALL=C

keep=0
backup=""
for arg in "$@"; do
    case "$arg" in
        --keep) keep=1 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        -*) echo "unknown option $arg" >&2; exit 2 ;;
        *) backup="$arg" ;;
    esac
done

: "${DATABASE_URL:?set DATABASE_URL (a role that may create databases on the server)}"
BACKUP_DIR="${BACKUP_DIR:-/backups}"
DRILL_DATABASE="${DRILL_DATABASE:-edc_restore_drill}"
PYTHON="${PYTHON:-python}"
PROJECT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

say() { printf 'restore drill: %s\n' "$*"; }
fail() { say "FAIL: $*"; say "RESULT: FAIL"; exit 1; }

# The server's URL with another database name (keeping user, password, host and ?options).
base="${DATABASE_URL%%\?*}"
query=""
[[ "$DATABASE_URL" == *\?* ]] && query="?${DATABASE_URL#*\?}"
live_name="${base##*/}"
url_for() { printf '%s/%s%s' "${base%/*}" "$1" "$query"; }
[[ "$DRILL_DATABASE" =~ ^[a-z_][a-z0-9_]*$ ]] || fail "DRILL_DATABASE must be a plain lower-case name"
[[ "$DRILL_DATABASE" != "$live_name" ]] || fail "DRILL_DATABASE is the database of DATABASE_URL"
admin_url="$(url_for postgres)"
drill_url="$(url_for "$DRILL_DATABASE")"

# 1. Which backup: the one named, else the newest complete one.
if [[ -z "$backup" ]]; then
    backup="$(find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' -printf '%f\n' | sort | tail -n 1)"
    [[ -n "$backup" ]] || fail "no backup in $BACKUP_DIR"
fi
[[ -d "$backup" ]] || backup="$BACKUP_DIR/$backup"
[[ -d "$backup" ]] || fail "no backup folder $backup"
backup="$(cd "$backup" && pwd)"
say "backup $backup"
started=$SECONDS

# 2. The files are those the backup wrote.
(cd "$backup" && sha256sum --check --quiet SHA256SUMS) || fail "checksums do not match SHA256SUMS"
say "checksums match"

# 3. A fresh, empty scratch database (template0: nothing but the system catalogs).
media="${DRILL_MEDIA:-$(mktemp -d -t edc-drill-media.XXXXXX)}"
cleanup() {
    if [[ $keep -eq 0 ]]; then
        psql -X -q -d "$admin_url" -c "DROP DATABASE IF EXISTS \"$DRILL_DATABASE\"" >/dev/null 2>&1 || true
        rm -rf "$media"
    fi
}
trap cleanup EXIT
psql -X -q -v ON_ERROR_STOP=1 -d "$admin_url" -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS \"$DRILL_DATABASE\"" \
    -c "CREATE DATABASE \"$DRILL_DATABASE\" TEMPLATE template0 ENCODING 'UTF8'" \
    || fail "cannot create the scratch database $DRILL_DATABASE"

# 4. Restore in one transaction, as the connecting role (no owners or grants: the roles of
#    the live server need not exist here). The triggers come in post-data, after the COPY of
#    the rows, so restoring fires none: the verification checks that no audit row was added.
t0=$SECONDS
pg_restore --exit-on-error --single-transaction --no-owner --no-privileges \
    --dbname="$drill_url" "$backup/db.dump" || fail "pg_restore failed"
say "database restored into $DRILL_DATABASE in $((SECONDS - t0)) s"
mkdir -p "$media"
tar --extract --gzip --file="$backup/media.tar.gz" --directory="$media" \
    || fail "the media archive does not extract"
say "media restored into $media ($(find "$media" -type f | wc -l) files)"

# 5. Verify the copy against the manifest, with the application's own code.
set +e
(cd "$PROJECT" && DATABASE_URL="$drill_url" "$PYTHON" manage.py verify_restore "$backup" --media-root "$media")
verified=$?
set -e
[[ $keep -eq 1 ]] && say "kept: database $DRILL_DATABASE, media $media"
[[ $verified -eq 0 ]] || fail "the restored copy does not match the backup (see above)"
say "RESULT: PASS in $((SECONDS - started)) s"
