#!/bin/bash
# One backup of the EDC: the database (pg_dump, custom format) and the media files (signed
# consent scans, built PDFs), with a manifest of what the database held, in one folder:
#
#   $BACKUP_DIR/<UTC time, e.g. 20260311T010000Z>/
#       db.dump         pg_dump -Fc (restore with pg_restore)
#       manifest.json   per table: rows and a SHA-256 of their content; the triggers; the
#                       audit trail's extent (manifest.sql, taken in pg_dump's own snapshot)
#       media.tar.gz    MEDIA_ROOT as it was right after the dump
#       SHA256SUMS      of the three files above (`sha256sum -c SHA256SUMS`)
#
# The folder is written under a hidden .partial name and renamed when complete, so a
# half-written backup is never taken for a good one. Then folders older than
# BACKUP_KEEP_DAYS days are deleted; the newest complete one is always kept.
# restore-drill.sh proves that a backup restores (README: Backups and restore).
#
# Environment:
#   DATABASE_URL      postgres://user:password@host:port/name of the database to back up
#                     (only needs to read every table: compose uses the application role)
#   MEDIA_ROOT        the uploaded and built files (default /app/media)
#   BACKUP_DIR        where backups are kept (default /backups)
#   BACKUP_KEEP_DAYS  days a backup is kept (default 14)
# Exit status: 0 when the backup is complete, non-zero otherwise (nothing is pruned then).
set -euo pipefail
export LC_ALL=C

: "${DATABASE_URL:?set DATABASE_URL to the database to back up}"
MEDIA_ROOT="${MEDIA_ROOT:-/app/media}"
BACKUP_DIR="${BACKUP_DIR:-/backups}"
BACKUP_KEEP_DAYS="${BACKUP_KEEP_DAYS:-14}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

[[ "$BACKUP_KEEP_DAYS" =~ ^[1-9][0-9]*$ ]] || die "BACKUP_KEEP_DAYS must be a whole number of days, 1 or more"
mkdir -p "$BACKUP_DIR"
# One backup at a time (the nightly loop and one started by hand).
exec 9>"$BACKUP_DIR/.lock"
flock -n 9 || die "another backup is running (lock $BACKUP_DIR/.lock)"

name="$(date -u +%Y%m%dT%H%M%SZ)"
final="$BACKUP_DIR/$name"
work="$BACKUP_DIR/.$name.partial"
[[ ! -e "$final" ]] || die "$final already exists"
# A .partial folder left by an interrupted run is garbage.
find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -name '.*.partial' -exec rm -rf {} +
mkdir "$work"
started=$SECONDS

# 1. The manifest and the dump from one snapshot. A psql session opens a read-only
#    REPEATABLE READ transaction and exports its snapshot; the manifest is computed in that
#    transaction and pg_dump reads the same snapshot (--snapshot), so rows written meanwhile
#    by the running application are in neither: the manifest describes exactly the dump.
coproc PSQL { exec psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" 2>&1; }
# Copied at once: bash unsets PSQL and PSQL_PID as soon as the coprocess exits (after the
# COMMIT below it may already have), and `set -u` then fails on them.
psql_pid=$PSQL_PID
psql_in=${PSQL[1]}
psql_out=${PSQL[0]}
echo "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;" >&"$psql_in"
echo "SELECT pg_export_snapshot();" >&"$psql_in"
read -r snapshot <&"$psql_out" || die "psql ended before exporting a snapshot"
[[ "$snapshot" =~ ^[0-9A-F-]+$ ]] || die "could not open a snapshot: $snapshot"
printf '%s\n' "\\o $work/manifest.json" "\\i $HERE/manifest.sql" "\\o" "\\echo manifest-written" >&"$psql_in"
read -r answer <&"$psql_out" || answer="psql ended"
[[ "$answer" == "manifest-written" ]] || die "manifest: $answer"
log "manifest written ($(grep -c "\"sha256\"" "$work/manifest.json") tables)"

pg_dump --format=custom --snapshot="$snapshot" --file="$work/db.dump" -d "$DATABASE_URL" \
    || die "pg_dump failed"
echo "COMMIT;" >&"$psql_in"
exec {psql_in}>&-
wait "$psql_pid" || die "psql session ended with an error"
# The archive's table of contents reads back (a truncated file does not).
pg_restore --list "$work/db.dump" >/dev/null || die "the dump does not read back"
log "database dumped ($(du -h "$work/db.dump" | cut -f1))"

# 2. The media files, after the dump: a file uploaded meanwhile is only extra in the archive.
if [[ -d "$MEDIA_ROOT" ]]; then
    # GNU tar: 1 means a file changed while it was read (still archived); 2 is a failure.
    tar --create --gzip --file="$work/media.tar.gz" --directory="$MEDIA_ROOT" \
        --warning=no-file-changed . || [[ $? -eq 1 ]] || die "tar of $MEDIA_ROOT failed"
else
    log "warning: MEDIA_ROOT $MEDIA_ROOT does not exist; the media archive is empty"
    tar --create --gzip --file="$work/media.tar.gz" --files-from=/dev/null
fi
log "media archived ($(tar --list --gzip --file="$work/media.tar.gz" | grep -vc '/$' || true) files)"

(cd "$work" && sha256sum db.dump manifest.json media.tar.gz >SHA256SUMS)
mv "$work" "$final"
log "complete: $final in $((SECONDS - started)) s"

# 3. Retention: complete backups named before the cut-off go; the newest always stays.
cutoff="$(date -u -d "$BACKUP_KEEP_DAYS days ago" +%Y%m%dT%H%M%SZ)"
newest="$(find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' -printf '%f\n' | sort | tail -n 1)"
find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' -printf '%f\n' | sort |
    while read -r old; do
        if [[ "$old" < "$cutoff" && "$old" != "$newest" ]]; then
            rm -rf "${BACKUP_DIR:?}/$old"
            log "deleted $old (older than $BACKUP_KEEP_DAYS days)"
        fi
    done
echo "$final"
