#!/usr/bin/env bash
# many-files.sh — peak memory and time of a native local-rsync backup of a cluster
# with FILES extra small files (default 100000, 8 KiB zero pages each, which is a
# valid "new" relation page), to show the copy's memory stays bounded by the file
# count only through the manifest and file list (a few hundred bytes per file).
#
# How to run (as root, PostgreSQL 15 installed):
#   cargo build --release && BARMAN_RS=$PWD/target/release/barman bash benches/many-files.sh
# Knobs: FILES (100000), JOBS (2).
set -euo pipefail
BARMAN_RS=${BARMAN_RS:?set BARMAN_RS to the barman-rs binary}
FILES=${FILES:-100000}
JOBS=${JOBS:-2}
BIN=/usr/lib/postgresql/15/bin
W=$(mktemp -d /var/tmp/barman-rs-many-files.XXXXXX)
chown postgres: "$W"
trap 'runuser -u postgres -- $BIN/pg_ctl -D $W/data -m immediate stop >/dev/null 2>&1 || true; [[ -n ${KEEP:-} ]] || rm -rf "$W"' EXIT
runuser -u postgres -- $BIN/initdb -A trust -U postgres -D "$W/data" >/dev/null
cat >>"$W/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$W'
port = 25999
wal_level = replica
archive_mode = on
archive_command = 'cp %p $W/incoming/.%f && mv $W/incoming/.%f $W/incoming/%f'
CONF
mkdir -p "$W/incoming" "$W/home" && chown postgres: "$W/incoming"
runuser -u postgres -- $BIN/pg_ctl -w -D "$W/data" -l "$W/log" start >/dev/null
# Extra relation-like files in a scratch directory of database 1 (template1).
d="$W/data/base/1"
python3 - "$d" "$FILES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
page = bytes(8192)
for i in range(n):
    with open(os.path.join(d, str(5000000 + i)), "wb") as f:
        f.write(page)
PY
chown -R postgres: "$d"
runuser -u postgres -- psql -q -h "$W" -p 25999 -U postgres -c "SELECT pg_switch_wal()" postgres >/dev/null
cat >"$W/barman.conf" <<CONF
[barman]
barman_home = $W/home
barman_user = root
log_file = $W/barman.log
[pg]
description = many files
conninfo = host=$W port=25999 user=postgres dbname=postgres
backup_method = local-rsync
backup_options = concurrent_backup
immediate_checkpoint = true
parallel_jobs = $JOBS
archiver = on
incoming_wals_directory = $W/incoming
CONF
/usr/bin/time -v "$BARMAN_RS" -c "$W/barman.conf" -q backup --wait pg 2>"$W/time.txt" || { cat "$W/time.txt"; exit 1; }
files=$(find "$W/home/pg/base" -type f | wc -l)
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$W/time.txt")
echo "| files in backup | jobs | wall | peak RSS (KiB) |"
echo "|---|---|---|---|"
echo "| $files | $JOBS | $wall | $rss |"
