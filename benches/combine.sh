#!/usr/bin/env bash
# benches/combine.sh — recovery of an incremental chain (PostgreSQL 18), timed per tool.
#
# What it measures: a throwaway PostgreSQL 18 cluster (summarize_wal = on, data checksums
# (initdb's default since 18, checked), archive_command into Barman's incoming dir) loaded
# with pgbench at SCALE (default 100: a ~1.5 GiB database), backed up by barman-rs
# (backup_method = postgres): one full backup, then three `backup --incremental latest`,
# each after WRITE_SECS of pgbench writes (PGBENCH_ARGS, default the built-in tpcb-like:
# updates spread over the whole of pgbench_accounts, so the newest backup's big files are
# INCREMENTAL ones whose blocks come mostly from the full backup). All of that is untimed. Then, REPS rounds interleaved (lib.sh's round_order), after one
# warm-up round that is not counted, each tool rebuilds the newest backup into an empty
# directory, timed until its command returns plus a `sync` (lib.sh's `measure`):
#   * barman-rs `recover --target-immediate --target-action promote pg LEAF DIR`: the
#     chain combined natively (no pg_combinebackup; every source file checked against its
#     own backup_manifest, every page checksum verified, a new backup_manifest written),
#     the WAL to consistency copied, recovery configured;
#   * Barman 3.19.1, the same `recover` from the same catalog: it runs PostgreSQL 18's
#     pg_combinebackup (combine_mode = copy) straight into DIR, then copies the WAL and
#     configures recovery;
#   * pg_combinebackup alone on the four backups' data directories (`--copy`, and
#     `--copy-file-range` when PGC_MODES has it and the filesystem takes it; `--clone`
#     too if asked): the floor Barman builds on, with no WAL and no recovery settings.
# Verified: before anything is started, every file of pg_combinebackup --copy's output
# (but backup_manifest, which differs by design, and postgresql.conf and
# postgresql.auto.conf, which recover rewrites) must be byte-identical in barman-rs's and
# Barman's results (and in the other pg_combinebackup modes' output); then
# both recovered clusters are started (own socket, archiving off), left to finish
# recovery, and their row counts compared with the source's at the last backup ("ok").
# The page cache cannot be dropped here (no privilege over the host's cache that would be
# honest to use): the backups are read from a warm cache in every round, hence the
# warm-up round, and the `sync` after each command makes every tool pay for its writes.
# Columns: seconds (median), MiB/s of the combined data directory's size, tool CPU s,
# time relative to barman-rs (>1: slower than barman-rs).
#
# How to run (from the repository, as root: PostgreSQL and the tools run as postgres):
#   bash benches/combine.sh                       # default size, ~10 min on 2 cores
#   SCALE=5 REPS=1 WRITE_SECS=5 bash benches/combine.sh      # a quick run
# Barman: $PEERS_DIR/barman (lib.sh: /opt/barman-rs-peers as root); as root, when that venv
# does not run as postgres (built on a python under /root), /opt/barman-rs-peers-system,
# installed by install-peers.sh with PYTHON=/usr/bin/python3 if missing (see README).
# Knobs: SCALE (100), WRITE_SECS (20), PGBENCH_ARGS ("-b tpcb-like"), REPS (3), PGC_MODES ("copy copy-file-range"; also
#   clone), RS_JOBS (unset: recover's default; N: `recover --jobs N`), BARMAN_RS (default
#   target/release/barman, built with `cargo build --release` when missing), PG_BINDIR
#   (/opt/barman-rs-pg/18/bin), lib.sh's (BENCH_KEEP=1, BENCH_WORK_ROOT, ...).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=${SHARED_BENCH:-$(cd "$REPO/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
export PG_BINDIR=${PG_BINDIR:-/opt/barman-rs-pg/18/bin}
PEERS_GIVEN=${PEERS_DIR:-}${BARMAN:-}
# shellcheck source=/dev/null
source "$HERE/lib.sh"

SCALE=${SCALE:-100}
WRITE_SECS=${WRITE_SECS:-20}
PGBENCH_ARGS=${PGBENCH_ARGS:-"-b tpcb-like"}
PGC_MODES=${PGC_MODES:-"copy copy-file-range"}
RS_JOBS=${RS_JOBS:-}
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || die "SCALE must be a positive integer (pgbench scale)"
for m in $PGC_MODES; do
    [[ $m =~ ^(copy|copy-file-range|clone)$ ]] || die "unknown pg_combinebackup mode $m (copy, copy-file-range, clone)"
done

# --- the tools --------------------------------------------------------------------------------
if [[ -z $BARMAN_RS ]]; then
    BARMAN_RS=$REPO/target/release/barman
    if [[ ! -x $BARMAN_RS ]]; then
        log "building barman-rs (cargo build --release)"
        (cd "$REPO" && cargo build --release) >&2
    fi
fi
BARMAN_RS=$(readlink -f "$BARMAN_RS")
# Barman must run as the bench user: a venv built on a python under /root (0700) does not
# for postgres, so, as root, the README's venv on the system python is the fallback.
barman_runs() { as_bench "$BARMAN" --version >/dev/null 2>&1; }
if ! barman_runs && [[ -z $PEERS_GIVEN && $EUID -eq 0 ]]; then
    log "$BARMAN does not run as $BENCH_USER: using /opt/barman-rs-peers-system (system python)"
    PEERS_DIR=/opt/barman-rs-peers-system BARMAN=/opt/barman-rs-peers-system/barman/bin/barman
fi
if ! barman_runs; then
    log "Barman not runnable at $BARMAN: running install-peers.sh (PEERS_DIR=$PEERS_DIR)"
    PEERS_DIR=$PEERS_DIR PYTHON=${PYTHON:-/usr/bin/python3} bash "$HERE/install-peers.sh" >&2
    barman_runs || die "Barman at $BARMAN does not run as $BENCH_USER"
fi
for t in postgres pg_combinebackup pgbench; do
    [[ -x $PG_BINDIR/$t ]] || die "no $t in $PG_BINDIR (PostgreSQL 18: bash scripts/install-postgres.sh 18)"
done

bench_init combine
as_bench test -x "$BARMAN_RS" || die "BARMAN_RS=$BARMAN_RS is not executable by $BENCH_USER"
BARMAN_VERSION=$(as_bench "$BARMAN" --version 2>/dev/null | awk 'NR == 1 {print $1}')
[[ $BARMAN_VERSION == 3.19.1 ]] || log "WARNING: Barman is $BARMAN_VERSION, not 3.19.1"

# --- the source cluster and the chain (untimed) -------------------------------------------------
SRC=$W/src BHOME=$W/barman-home BCONF=$W/barman.conf
pg_new_cluster "$SRC" "archive_mode = on" "archive_command = '/bin/true'" "summarize_wal = on" \
    "fsync = off" "synchronous_commit = off" "max_wal_size = 8GB" "checkpoint_timeout = 30min"
pg_start "$SRC"
[[ $(psql_at "$SRC" "SHOW data_checksums") == on ]] || die "the source cluster has no data checksums"
log "pgbench -i -s $SCALE"
create_bench_schema "$SRC" "$SCALE"
psql_at "$SRC" "VACUUM ANALYZE" >/dev/null
psql_at "$SRC" "CHECKPOINT" >/dev/null
barman_conf "$BCONF" "$BHOME" "$SRC" "backup_method = postgres" "path_prefix = $PG_BINDIR" \
    "immediate_checkpoint = true"
as_bench mkdir -p "$BHOME/pg/incoming"
# From here on (not during the load) every finished segment goes to Barman's incoming dir.
psql_at "$SRC" "ALTER SYSTEM SET archive_command = 'cp %p $BHOME/pg/incoming/.%f && mv $BHOME/pg/incoming/.%f $BHOME/pg/incoming/%f'" >/dev/null
psql_at "$SRC" "SELECT pg_reload_conf()" >/dev/null
rs() { as_bench "$BARMAN_RS" -c "$BCONF" -q "$@"; }
rs switch-wal --force --archive --archive-timeout 120 pg >/dev/null

log "full backup (barman-rs)"
rs backup --wait --wait-timeout 600 pg >/dev/null
for i in 1 2 3; do
    log "pgbench for ${WRITE_SECS}s, then incremental backup $i (barman-rs)"
    # shellcheck disable=SC2086  # PGBENCH_ARGS is a list of arguments
    pgbench_run "$SRC" -n -c 2 -j 2 -T "$WRITE_SECS" $PGBENCH_ARGS >/dev/null 2>&1
    rs backup --incremental latest --wait --wait-timeout 600 pg >/dev/null
done
# No more writes: every recovery must reach exactly these rows.
ROWS=$(row_counts "$SRC")
DATA_BYTES=$(psql_at "$SRC" "SELECT sum(pg_database_size(oid)) FROM pg_database")
mapfile -t CHAIN < <(as_bench "$BARMAN_RS" -c "$BCONF" list-backups --minimal pg | tac)
((${#CHAIN[@]} == 4)) || die "expected 4 backups, got: ${CHAIN[*]}"
LEAF=${CHAIN[3]}
as_bench grep -qsx "parent_backup_id=${CHAIN[2]}" "$BHOME/pg/meta/$LEAF-backup.info" "$BHOME/pg/base/$LEAF/backup.info" ||
    die "backup $LEAF is not an incremental backup of ${CHAIN[2]}"
CHAIN_SIZES="" CHAIN_BYTES=0
for id in "${CHAIN[@]}"; do
    b=$(dir_bytes "$BHOME/pg/base/$id")
    CHAIN_SIZES+="${CHAIN_SIZES:+ + }$((b / 1048576))" CHAIN_BYTES=$((CHAIN_BYTES + b))
done
log "chain ${CHAIN[*]}: $CHAIN_SIZES MiB on disk; database $((DATA_BYTES / 1048576)) MiB; rows $ROWS"
sync

# --- the runs -----------------------------------------------------------------------------------
PGC_DIRS=()
for id in "${CHAIN[@]}"; do PGC_DIRS+=("$BHOME/pg/base/$id/data"); done
run() { # run CONFIG DEST
    case $1 in
        barman-rs) rs recover ${RS_JOBS:+--jobs "$RS_JOBS"} --target-immediate --target-action promote \
                       pg "$LEAF" "$2" >/dev/null ;;
        Barman) as_bench "$BARMAN" -c "$BCONF" -q recover --target-immediate --target-action promote \
                    pg "$LEAF" "$2" >/dev/null ;;
        pg_combinebackup:*) as_bench "$PG_BINDIR/pg_combinebackup" "--${1#*:}" -o "$2" "${PGC_DIRS[@]}" ;;
    esac
}
describe() {
    case $1 in
        barman-rs) echo "recover${RS_JOBS:+ --jobs $RS_JOBS} (native combine)" ;;
        Barman) echo "recover (pg_combinebackup --copy)" ;;
        *) echo "pg_combinebackup --${1#*:} (no WAL, no recovery settings)" ;;
    esac
}

CONFIGS=(barman-rs Barman)
for m in $PGC_MODES; do CONFIGS+=("pg_combinebackup:$m"); done
declare -A WALLS SYNCS CPUS
# shellcheck disable=SC2153  # REPS comes from lib.sh
for ((rep = 0; rep <= REPS; rep++)); do
    mapfile -t ORDER < <(round_order "$((rep + 1))" "${CONFIGS[@]}")
    for c in "${ORDER[@]}"; do
        [[ " ${CONFIGS[*]} " == *" $c "* ]] || continue    # dropped in the warm-up
        dest=$W/r-${c//:/-}
        rm -rf "$dest" "$dest.log" "$(pg_sock "$dest")"
        sync
        measure run "$c" "$dest"
        if ((M_RC != 0)); then
            if ((rep == 0)) && [[ $c == pg_combinebackup:* && $c != pg_combinebackup:copy ]]; then
                log "warm-up: $c failed (exit $M_RC): not supported here, dropped"
                mapfile -t CONFIGS < <(printf '%s\n' "${CONFIGS[@]}" | grep -vx "$c")
                rm -rf "$dest"
                continue
            fi
            die "$c failed (exit $M_RC)"
        fi
        if ((rep == 0)); then
            log "warm-up $c: ${M_WALL}s (not counted)"
            continue
        fi
        log "round $rep/$REPS $c: ${M_WALL}s (sync ${M_SYNC}s), CPU ${M_CPU}s"
        WALLS[$c]+="$M_WALL " SYNCS[$c]+="$M_SYNC " CPUS[$c]+="$M_CPU "
    done
done

# --- verification (the last round's results) ----------------------------------------------------
REF=$W/r-pg_combinebackup-copy
[[ -d $REF ]] || {
    log "pg_combinebackup --copy not in PGC_MODES: running it once as the reference"
    run pg_combinebackup:copy "$REF"
}
OUT_BYTES=$(cd "$REF" && find . -type f ! -name backup_manifest -printf '%s\n' | awk '{s += $1} END {print s + 0}')
# same_as_ref DIR : "N files byte-identical" or what differs (details in the log)
same_as_ref() {
    local d=$1 n=0 bad=0 f
    while IFS= read -r -d '' f; do
        n=$((n + 1))
        if ! cmp -s "$REF/$f" "$d/$f"; then
            bad=$((bad + 1))
            ((bad > 5)) || log "$(basename "$d"): '$f' differs from pg_combinebackup's"
        fi
    done < <(cd "$REF" && find . -type f ! -name backup_manifest ! -name 'postgresql*.conf' -printf '%P\0')
    if ((bad == 0)); then echo "$n files byte-identical"; else echo "$bad of $n files DIFFER"; fi
}
SAME_RS=$(same_as_ref "$W/r-barman-rs")
SAME_PY=$(same_as_ref "$W/r-Barman")
log "barman-rs vs pg_combinebackup: $SAME_RS; Barman vs pg_combinebackup: $SAME_PY"
OK_RS=$(verify_restored "$W/r-barman-rs")
OK_PY=$(verify_restored "$W/r-Barman")
log "started and counted: barman-rs $OK_RS, Barman $OK_PY"

# --- the table ----------------------------------------------------------------------------------
med_of() { local a; read -ra a <<<"$1"; median "${a[@]}"; }
T_RS=$(med_of "${WALLS[barman-rs]}")
table_header $'tool\tcommand\tseconds (median)\tof which sync\tMiB/s\ttool CPU s\tvs barman-rs (time)\tall runs (s)\tverified'
for c in "${CONFIGS[@]}"; do
    t=$(med_of "${WALLS[$c]}")
    case $c in
        barman-rs) v="$SAME_RS; started: $OK_RS" ;;
        Barman) v="$SAME_PY; started: $OK_PY" ;;
        pg_combinebackup:copy) v="the reference" ;;
        *) v="$(same_as_ref "$W/r-${c//:/-}")" ;;
    esac
    table_row "${c%%:*}" "$(describe "$c")" "$t" "$(med_of "${SYNCS[$c]}")" \
        "$(awk -v b="$OUT_BYTES" -v s="$t" 'BEGIN {printf "%.0f", b / 1048576 / s}')" \
        "$(med_of "${CPUS[$c]}")" "$(awk -v a="$t" -v b="$T_RS" 'BEGIN {printf "%.2f", a / b}')" \
        "${WALLS[$c]% }" "$v"
done
OUT=$BENCH_RESULTS/combine-$(date +%Y%m%d-%H%M%S).md
{
    echo "## Recovery of an incremental chain (full + 3 incrementals, PostgreSQL 18), median of $REPS after a warm-up round"
    echo
    machine_info 2>/dev/null | sed -n 1p
    echo "tools: barman-rs at $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?') ($(as_bench "$BARMAN_RS" --version 2>/dev/null | awk 'NR == 1')), Barman $BARMAN_VERSION, $("$PG_BINDIR/postgres" --version | sed 's/^postgres (PostgreSQL) /PostgreSQL /')"
    echo "sizes: database $((DATA_BYTES / 1048576)) MiB (pgbench scale $SCALE, ${WRITE_SECS}s of pgbench $PGBENCH_ARGS before each incremental); chain on disk $CHAIN_SIZES = $((CHAIN_BYTES / 1048576)) MiB; combined data directory $((OUT_BYTES / 1048576)) MiB (MiB/s is of this)"
    echo "warm page cache (it cannot be dropped here); rows checked after recovery: $ROWS; CPU accounting: $CG_MODE"
    echo
} | tee "$OUT"
table_print "Recovery of an incremental chain" "$OUT"
