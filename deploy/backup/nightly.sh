#!/bin/bash
# docker-compose's `backup` service (postgres:15 image): backup.sh every night at BACKUP_TIME
# (UTC, HH:MM, default 01:00, clear of the 03:30 PDF expiry and the 07:00 reminders), and once
# at start when the newest backup is more than a day old (a first `up`, a host that was off).
# A failed backup is logged and retried the next night; the service's healthcheck turns
# unhealthy when the newest complete backup is more than 26 hours old.
set -uo pipefail
export LC_ALL=C

BACKUP_DIR="${BACKUP_DIR:-/backups}"
BACKUP_TIME="${BACKUP_TIME:-01:00}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! [[ "$BACKUP_TIME" =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]]; then
    echo "nightly backup: BACKUP_TIME must be HH:MM (UTC), not '$BACKUP_TIME'" >&2
    exit 2
fi
# Stop promptly on `docker compose stop` (a sleeping PID 1 would otherwise wait for SIGKILL).
sleeper=""
trap '[[ -z "$sleeper" ]] || kill "$sleeper" 2>/dev/null; exit 0' TERM INT

run_backup() {
    "$HERE/backup.sh" || echo "nightly backup: FAILED (exit $?); next attempt at $BACKUP_TIME UTC" >&2
}

mkdir -p "$BACKUP_DIR"
recent="$(find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' -mmin -1440 | head -n 1)"
[[ -n "$recent" ]] || run_backup

while true; do
    now=$(date -u +%s)
    next=$(date -u -d "today $BACKUP_TIME" +%s)
    ((next > now)) || next=$(date -u -d "tomorrow $BACKUP_TIME" +%s)
    echo "nightly backup: next at $(date -u -d "@$next" +%Y-%m-%dT%H:%MZ)" >&2
    sleep $((next - now)) &
    sleeper=$!
    wait "$sleeper"
    sleeper=""
    run_backup
done
