#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into an EMPTY database and storage folder.
#
#   DATABASE_URL=postgres://.../medloop_restored MEDLOOP_STORAGE_DIR=/srv/restored/storage \
#     scripts/restore.sh /backups/2026-12-05
#
# Checks the archive's checksums first, then restores in one transaction (nothing half-restored
# on error). The target database must exist and be empty (createdb NAME).
set -euo pipefail
src=${1:?usage: scripts/restore.sh BACKUP_DIR}
: "${DATABASE_URL:?DATABASE_URL must name the (empty) target database}"
storage=${MEDLOOP_STORAGE_DIR:?MEDLOOP_STORAGE_DIR must name the (empty) target storage folder}
(cd "$src" && sha256sum --check --quiet SHA256SUMS)
pg_restore --no-owner --exit-on-error --single-transaction --dbname="$DATABASE_URL" \
  "$src/medloop.dump"
mkdir -p "$storage"
tar -C "$storage" -xf "$src/storage.tar"
echo "restored $src"
