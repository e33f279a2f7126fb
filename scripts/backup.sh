#!/usr/bin/env bash
# Back up a MedLoop installation on PostgreSQL: the database (pg_dump, custom format, one
# consistent snapshot) and the files it points to (de-identified DICOM, model versions).
#
#   DATABASE_URL=postgres://... MEDLOOP_STORAGE_DIR=/srv/medloop/storage \
#     scripts/backup.sh /backups/2026-12-05
#
# Writes DEST/medloop.dump, DEST/storage.tar and DEST/SHA256SUMS. Take it while the platform
# runs: the dump is a snapshot; files are written once under content-addressed names, so the
# archive holds at least every file the snapshot names (taken after the dump, it may hold more).
# Restore with scripts/restore.sh.
set -euo pipefail
dest=${1:?usage: scripts/backup.sh DEST_DIR}
: "${DATABASE_URL:?DATABASE_URL must name the PostgreSQL database}"
case "$DATABASE_URL" in
  postgres://* | postgresql://*) ;;
  *) echo "backup.sh backs up PostgreSQL; for SQLite copy the database file while stopped" >&2; exit 2 ;;
esac
storage=${MEDLOOP_STORAGE_DIR:-${MEDLOOP_VAR_DIR:-$(cd "$(dirname "$0")/.." && pwd)/var}/storage}
mkdir -p "$dest"
pg_dump --format=custom --no-owner --file="$dest/medloop.dump" "$DATABASE_URL"
if [ -d "$storage" ]; then
  tar -C "$storage" -cf "$dest/storage.tar" .
else
  tar -cf "$dest/storage.tar" --files-from /dev/null
fi
(cd "$dest" && sha256sum medloop.dump storage.tar > SHA256SUMS)
echo "backup written to $dest"
