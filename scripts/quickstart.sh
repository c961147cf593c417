#!/usr/bin/env bash
# barman-rs quick start: one throwaway PostgreSQL cluster and one barman-rs
# catalog in a temporary directory, and the main job end to end:
#
#   WAL archiving through archive_command (atomic cp + mv into incoming/),
#   check, a base backup (backup_method = postgres, zstd WAL compression),
#   more writes, a named restore point, writes that must be lost, then a
#   point-in-time recovery to the restore point; the recovered server is
#   started and must hold exactly the data of that point (md5 of a table).
#
#   bash scripts/quickstart.sh                   # PostgreSQL 18 (the latest)
#   bash scripts/quickstart.sh --pg 13           # another major (13..18)
#   bash scripts/quickstart.sh --keep            # leave the directory and servers running
#   BARMAN=/path/to/barman bash scripts/quickstart.sh   # an already built binary
#
# Without BARMAN it runs `cargo build --release` in the repository and uses
# target/release/barman. Run as root on Debian 12: PostgreSQL is installed
# by scripts/install-postgres.sh (idempotent) and runs as the postgres user;
# barman runs as root and switches to barman_user (postgres) itself.
# Nothing outside the temporary directory is touched (apart from the
# PostgreSQL install), so it can be run again at once.
set -euo pipefail

START=$SECONDS
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
PG_ROOT=${BARMAN_RS_PG_ROOT:-/opt/barman-rs-pg}
MAJOR=18
KEEP=0

usage() {
    cat <<EOF
usage: bash scripts/quickstart.sh [--pg MAJOR] [--keep]

Runs barman-rs end to end against a throwaway PostgreSQL cluster in a
temporary directory: archive_command, check, backup, point-in-time
recovery to a restore point, start of the recovered server and a check of
its data. Exits 0 when the recovered data matches the restore point.

  --pg MAJOR   PostgreSQL major, 13 to 18 (default 18)
  --keep       keep the temporary directory and leave both servers
               running (prints where they are and how to stop them)
  -h, --help   this help

Environment:
  BARMAN       the barman binary to use (default: cargo build --release
               in $REPO, then target/release/barman)
  BARMAN_RS_PG_ROOT  where PostgreSQL is installed (default /opt/barman-rs-pg)
EOF
}

say() { echo "quickstart: $*"; }
die() {
    echo "quickstart: ERROR: $*" >&2
    exit 1
}

while (($#)); do
    case $1 in
        --pg)
            (($# >= 2)) || die "--pg needs a major (13 to 18)"
            MAJOR=$2
            shift 2
            ;;
        --pg=*)
            MAJOR=${1#--pg=}
            shift
            ;;
        --keep)
            KEEP=1
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
done
case $MAJOR in
    13 | 14 | 15 | 16 | 17 | 18) ;;
    *) die "unsupported PostgreSQL major '$MAJOR' (13 to 18)" ;;
esac
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL is installed if missing and runs as the postgres user)"

if [ -n "${BARMAN:-}" ]; then
    BARMAN_SRC=$(readlink -f "$BARMAN") || die "BARMAN=$BARMAN: no such file"
    [ -x "$BARMAN_SRC" ] || die "BARMAN=$BARMAN is not an executable file"
else
    say "BARMAN is not set: building barman-rs (cargo build --release in $REPO)"
    (cd "$REPO" && cargo build --release)
    BARMAN_SRC=$REPO/target/release/barman
fi

cat <<EOF
quickstart: barman-rs end to end on PostgreSQL $MAJOR, in a throwaway directory under /tmp:
quickstart:   initdb + archive_command into barman's incoming/, check, backup (pg_basebackup),
quickstart:   a restore point, then recover to it, start the recovered server and compare an md5
quickstart:   of the data (the writes after the restore point must be gone).
quickstart: barman: $BARMAN_SRC ($("$BARMAN_SRC" --version 2>&1 | head -n 1))
EOF

say "installing PostgreSQL $MAJOR if missing (scripts/install-postgres.sh $MAJOR)"
bash "$HERE/install-postgres.sh" "$MAJOR"
PGBIN=$PG_ROOT/$MAJOR/bin
if [ ! -x "$PGBIN/postgres" ] || [ ! -x "$PGBIN/psql" ]; then die "PostgreSQL $MAJOR is not in $PGBIN"; fi

TMP=$(mktemp -d /tmp/barman-rs-quickstart.XXXXXX)
chmod 755 "$TMP"
chown postgres:postgres "$TMP" # the postgres user makes its sockets, logs and the restored copy here
cd "$TMP" # barman runs as postgres, which may not enter the caller's directory (e.g. /root)
DATA=$TMP/data
RESTORED=$TMP/restored
RSOCK=$TMP/restored-sock
HOME_DIR=$TMP/barman_home
INCOMING=$HOME_DIR/pg/incoming
CONF=$TMP/barman.conf
BIN=$TMP/barman
PORT=$((5439 + $$ % 1000)) # only the unix socket in $TMP is used: no TCP port is opened
CONNINFO="host=$TMP port=$PORT user=postgres dbname=postgres"
RCONNINFO="host=$RSOCK port=$PORT user=postgres dbname=postgres"
STATUS=fail

# Programs of PostgreSQL run as postgres, from a directory it may enter.
as_pg() { (cd / && runuser -u postgres -- "$@"); }

server_running() { [ -f "$1/postmaster.pid" ]; }

stop_server() { # data directory
    if server_running "$1"; then
        as_pg "$PGBIN/pg_ctl" -D "$1" -m immediate -w stop </dev/null >/dev/null 2>&1 || true
    fi
}

show_tail() { # file
    if [ -s "$1" ]; then
        echo "----- last lines of $1 -----"
        tail -n 25 "$1"
    fi
}

cleanup() {
    local rc=$?
    set +e
    cd /
    if [ "$STATUS" != ok ]; then
        ((rc)) || rc=1
        echo "quickstart: FAILED (exit $rc); diagnostics:" >&2
        {
            show_tail "$TMP/initdb.log"
            show_tail "$TMP/pg.log"
            show_tail "$TMP/restored.log"
            show_tail "$HOME_DIR/barman.log"
        } >&2
    fi
    if ((KEEP)); then
        echo "quickstart: kept $TMP (--keep):"
        echo "quickstart:   barman:    $BIN -c $CONF list-backups pg"
        if server_running "$DATA"; then
            echo "quickstart:   primary:   $PGBIN/psql '$CONNINFO'   (data $DATA, log $TMP/pg.log)"
        fi
        if server_running "$RESTORED"; then
            echo "quickstart:   recovered: $PGBIN/psql '$RCONNINFO'   (data $RESTORED, log $TMP/restored.log)"
        fi
        echo "quickstart:   clean up:  for d in $DATA $RESTORED; do runuser -u postgres -- $PGBIN/pg_ctl -D \$d -m immediate stop; done; rm -rf $TMP"
    else
        stop_server "$RESTORED"
        stop_server "$DATA"
        rm -rf "$TMP"
    fi
    if [ "$STATUS" = ok ]; then
        say "done in $((SECONDS - START)) s"
    else
        say "failed after $((SECONDS - START)) s" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every barman command is printed before it runs, as the user would type it.
barman() {
    local quoted
    printf -v quoted ' %q' "$@"
    echo "+ barman -c $CONF$quoted"
    "$BIN" -c "$CONF" "$@"
}

psql_on() { # conninfo sql
    as_pg "$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}
sql() { # sql: on the primary, printed
    echo "+ psql: $1"
    psql_on "$CONNINFO" "$1"
}

# --- the pieces -----------------------------------------------------------

cp "$BARMAN_SRC" "$BIN" # postgres may not be able to read the original (e.g. under /root)
chmod 755 "$BIN"

say "initdb of PostgreSQL $MAJOR in $DATA"
initdb_args=(-D "$DATA" -A trust -U postgres -E UTF8 --locale C --no-sync --data-checksums)
as_pg "$PGBIN/initdb" "${initdb_args[@]}" >"$TMP/initdb.log" 2>&1
cat >>"$DATA/postgresql.conf" <<EOF

# barman-rs quickstart
listen_addresses = ''
unix_socket_directories = '$TMP'
port = $PORT
wal_level = replica
archive_mode = on
max_wal_senders = 4
archive_command = 'test ! -f $INCOMING/%f && cp %p $INCOMING/.%f.tmp && mv $INCOMING/.%f.tmp $INCOMING/%f'
EOF

# barman-rs never creates barman_home (it may be an unmounted volume).
mkdir -m 755 "$HOME_DIR"
chown postgres:postgres "$HOME_DIR"
cat >"$CONF" <<EOF
[barman]
barman_home = $HOME_DIR
barman_user = postgres
log_file = $HOME_DIR/barman.log

[pg]
description = quickstart PostgreSQL $MAJOR
conninfo = $CONNINFO
streaming_conninfo = $CONNINFO
backup_method = postgres
archiver = on
compression = zstd
path_prefix = $PGBIN
immediate_checkpoint = true
EOF
chmod 644 "$CONF"
say "barman configuration $CONF:"
sed 's/^/    /' "$CONF"
say "archive_command = 'test ! -f $INCOMING/%f && cp %p $INCOMING/.%f.tmp && mv $INCOMING/.%f.tmp $INCOMING/%f'"

# --- the job --------------------------------------------------------------

say "first check: it creates the server's directories (incoming/, wals/...) and is expected"
say "to FAIL, as PostgreSQL is not running yet and no WAL has been archived"
barman check pg || say "(check failed, as expected at this point)"
[ -d "$INCOMING" ] || die "check did not create $INCOMING"

say "starting PostgreSQL $MAJOR on socket $TMP (log $TMP/pg.log)"
as_pg "$PGBIN/pg_ctl" -w -t 60 -D "$DATA" -l "$TMP/pg.log" start </dev/null >/dev/null 2>&1 ||
    die "PostgreSQL did not start"

sql "CREATE TABLE t (id int PRIMARY KEY, v text)"
sql "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 100000) g"
barman switch-wal --force --archive --archive-timeout 60 pg
barman cron
barman check pg || die "check failed with PostgreSQL running and WAL archived"
barman backup pg --wait --wait-timeout 60
barman list-backups pg

sql "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(100001, 150000) g"
sql "UPDATE t SET v = upper(v) WHERE id % 7 = 0"
CHECKSUM_SQL="SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t"
WANT=$(psql_on "$CONNINFO" "$CHECKSUM_SQL")
say "md5 of t at the restore point: $WANT"
echo "+ psql: SELECT pg_create_restore_point('quickstart')"
say "restore point 'quickstart' at LSN $(psql_on "$CONNINFO" "SELECT pg_create_restore_point('quickstart')")"
say "writes after the restore point, which the recovery must not replay:"
sql "INSERT INTO t VALUES (-1, 'written after the restore point')"
sql "UPDATE t SET v = 'changed after the restore point' WHERE id % 10 = 0"
AFTER=$(psql_on "$CONNINFO" "$CHECKSUM_SQL")
[ "$AFTER" != "$WANT" ] || die "the writes after the restore point did not change the md5"
barman switch-wal --force --archive --archive-timeout 60 pg
barman cron

barman recover pg latest "$RESTORED" --target-name quickstart --target-action promote

say "starting the recovered server on socket $RSOCK (log $TMP/restored.log)"
as_pg mkdir -m 700 "$RSOCK"
as_pg "$PGBIN/pg_ctl" -w -t 90 -D "$RESTORED" -l "$TMP/restored.log" \
    -o "-p $PORT -k $RSOCK -c listen_addresses='' -c archive_mode=off" start </dev/null >/dev/null 2>&1 ||
    die "the recovered server did not start"
deadline=$((SECONDS + 90))
until [ "$(psql_on "$RCONNINFO" "SELECT pg_is_in_recovery()" 2>/dev/null || true)" = f ]; do
    ((SECONDS < deadline)) || die "the recovered server did not finish recovery within 90 s"
    sleep 0.5
done
say "recovered server promoted: $(psql_on "$RCONNINFO" "SELECT version()" | cut -d' ' -f1-2)"

GOT=$(psql_on "$RCONNINFO" "$CHECKSUM_SQL")
LATE=$(psql_on "$RCONNINFO" "SELECT count(*) FROM t WHERE id = -1 OR v = 'changed after the restore point'")
ROWS=$(psql_on "$RCONNINFO" "SELECT count(*) FROM t")
ok=1
if [ "$GOT" != "$WANT" ]; then
    echo "quickstart: md5 of t differs: recovered $GOT, restore point $WANT (after it: $AFTER)" >&2
    ok=0
fi
if [ "$LATE" != 0 ]; then
    echo "quickstart: $LATE row(s) written after the restore point are in the recovered server" >&2
    ok=0
fi
if [ "$ROWS" != 150000 ]; then
    echo "quickstart: the recovered t has $ROWS rows, 150000 at the restore point" >&2
    ok=0
fi
((ok)) || die "recovered data does not match the restore point"
STATUS=ok
say "recovered data matches the restore point (md5 $GOT)"
