#!/usr/bin/env bash
# benches/get-wal.sh — the WAL round trip one segment at a time, as PostgreSQL drives it:
# restore_command (`barman get-wal`), the archive_command side (`barman put-wal` fed what
# barman-wal-archive sends, and `archive-wal` of one segment), and a whole recovery that
# replays ~SEGMENTS segments through `barman get-wal`. Barman 3.19.1 beside barman-rs on
# one Barman catalog (barman-rs is a drop-in: same config file, same barman_home).
# Run from the repository: BARMAN_RS=target/release/barman bash benches/get-wal.sh
#
# What it measures: a scratch PostgreSQL 15 cluster is backed up by Barman (postgres method,
# untimed), then runs the mixed insert/update workload of lib.sh until ~SEGMENTS 16 MiB WAL
# segments were written after the backup; every archived file is kept, plain, in allwal/.
# For each compression, Barman's catalog (wals/) is rebuilt from allwal/ by Barman's own
# `archive-wal` with that `compression` (untimed). Then, REPS rounds interleaved:
#   1. restore_command: CALLS distinct segments fetched one process per call, exactly as
#      PostgreSQL runs `restore_command = 'barman get-wal -P pg %f > %p'` (what
#      `recover --get-wal` writes; -P = --partial), i.e. `sh -c "BARMAN -c CONF get-wal -P pg
#      SEG > RECOVERYXLOG"`, per compression in COMPRESSIONS; plus a floor row, `cp` of the
#      plain segment (Barman's restore_command without get-wal).
#   2. archive_command side, per segment, no network:
#      put-wal      `sh -c "BARMAN -c CONF put-wal pg < STREAM"`, STREAM being exactly what
#                   barman-wal-archive sends (captured from Barman's barman-wal-archive: a tar
#                   of the segment and its SHA256SUMS); lands the segment in incoming/, fsynced
#      wal-archive  the whole archive_command, `sh -c "barman-wal-archive -U postgres -c CONF
#                   localhost pg allwal/SEG"` (barman-rs: its binary run as barman-wal-archive),
#                   with ssh replaced by a stand-in that runs the remote `barman put-wal` here
#                   through sh (the tool's own barman)
#      archive-wal  one segment placed in an empty incoming/ (untimed), then `sh -c "BARMAN -c
#                   CONF -q archive-wal pg"` (what `barman cron` starts), per compression;
#                   ARCHIVE_CALLS times
#   3. recovery: `recover --get-wal pg BACKUP DIR` by the tool itself (untimed; its
#      restore_command line is checked to be Barman's, then given the tool's path and -c
#      CONF), then the cluster is started (own socket, archive_mode=off) and timed from
#      `pg_ctl start` until PostgreSQL logs "database system is ready to accept connections":
#      it replayed every archived segment from the backup's begin_wal on, failed to fetch
#      the next one and promoted (PostgreSQL's end-of-recovery checkpoint included; the
#      restored cluster keeps the source's fsync = off). Per compression in
#      RECOVERY_COMPRESSIONS; plus a floor row, restore_command = 'cp allwal/%f %p'.
#      Verified: the server log shows every segment "restored ... from archive",
#      pg_is_in_recovery() is false, and (untimed, restarted) the row counts are the
#      source's at its last archived segment.
# Also verified: get-wal's last output, put-wal's first and last landed segment and
# archive-wal's last archived one have the original's SHA-1; every call exited 0.
# Columns, per call: ms per call (median and mean of all calls of all rounds), CPU ms per
# call (user+sys of the `sh -c` and everything under it, from bash's `times`), host CPU ms
# per call (the whole machine; well above CPU means someone else's load), Barman ÷ this,
# the mean of each round. Recovery: seconds (median), ms per segment, Barman ÷ this, ms per
# segment above the cp floor (the restore_command's share), CPU s of PostgreSQL plus every
# restore_command (cgroup), host CPU s.
#
# How to run:  BARMAN_RS=/path/to/barman bash get-wal.sh          (~30 min on 2 cores)
#              REPS=1 SEGMENTS=40 CALLS=30 BARMAN_RS=/path/to/barman bash get-wal.sh  (~5 min)
# Knobs: SEGMENTS (200), CALLS (100; at most the segments written after the backup),
#   ARCHIVE_CALLS (30: Barman's archive-wal takes ~1 s a segment with gzip),
#   COMPRESSIONS ("gzip zstd"; Barman `compression` values, or none; NAME@LEVEL sets
#   compression_level), RECOVERY_COMPRESSIONS ("gzip"), PARTS ("get-wal put-wal wal-archive
#   archive-wal recovery"), RECOVERY_TIMEOUT (1800 s), plus lib.sh's (REPS, BARMAN,
#   BARMAN_RS, PEERS_DIR, BENCH_KEEP, BENCH_RESULTS, BENCH_QUIET_WAIT, ...).
set -euo pipefail
HERE=${SHARED_BENCH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../shared/bench" && pwd)}
# shellcheck source=lib.sh
source "$HERE/lib.sh"

SEGMENTS=${SEGMENTS:-200}
CALLS=${CALLS:-100}
ARCHIVE_CALLS=${ARCHIVE_CALLS:-30}
COMPRESSIONS=${COMPRESSIONS:-"gzip zstd"}
RECOVERY_COMPRESSIONS=${RECOVERY_COMPRESSIONS:-"gzip"}
PARTS=${PARTS:-"get-wal put-wal wal-archive archive-wal recovery"}
RECOVERY_TIMEOUT=${RECOVERY_TIMEOUT:-1800}
[[ -n $BARMAN_RS ]] && BARMAN_RS=$(realpath "$BARMAN_RS")

part() { [[ " $PARTS " == *" $1 "* ]]; }

bench_init get-wal
check_peers
BARMAN_WAL_ARCHIVE=$(dirname "$BARMAN")/barman-wal-archive
as_bench test -x "$BARMAN_WAL_ARCHIVE" || die "barman-wal-archive not found beside $BARMAN"
TOOLS=(Barman)
[[ -n $BARMAN_RS ]] && TOOLS+=(barman-rs)
tool_bin() { case $1 in Barman) echo "$BARMAN" ;; barman-rs) echo "$BARMAN_RS" ;; esac; }
NOTES=()

# comp_opts SPEC : Barman server option lines for a compression spec (none, gzip, zstd@low)
comp_opts() {
    local comp=${1%@*}
    [[ $comp != none ]] && echo "compression = $comp"
    [[ $1 == *@* ]] && echo "compression_level = ${1#*@}"
    return 0
}

# --- 1. a backup, then ~SEGMENTS segments of WAL (untimed) -------------------------------------
SRC=$W/src BHOME=$W/barman-home BCONF=$W/barman.conf ALLWAL=$W/allwal
IHOME=$W/intake-home ICONF=$W/intake.conf
as_bench mkdir -p "$ALLWAL" "$BHOME/pg/incoming"
# Every archived file goes plain to allwal/ (the source of every catalog and the floors)
# and to Barman's incoming/ (for the backup's --wait).
pg_new_cluster "$SRC" "archive_mode = on" \
    "archive_command = 'cp %p $ALLWAL/%f && cp %p $BHOME/pg/incoming/%f'" \
    "fsync = off" "synchronous_commit = off"
pg_start "$SRC"
create_bench_schema "$SRC" 10
mapfile -t opts < <(comp_opts "${COMPRESSIONS%% *}")
barman_backup_conf postgres "immediate_checkpoint = true" "${opts[@]}"
as_bench "$BARMAN" -c "$BCONF" -q switch-wal --force --archive --archive-timeout 120 pg >/dev/null
log "Barman backup"
as_bench "$BARMAN" -c "$BCONF" -q backup --wait --wait-timeout 600 pg >/dev/null
BACKUP_ID=$(barman_last_backup)
[[ -n $BACKUP_ID ]] || die "Barman made no backup"
INFO=$BHOME/pg/meta/$BACKUP_ID-backup.info          # Barman >= 3.11; base/ID/backup.info before
[[ -f $INFO ]] || INFO=$BHOME/pg/base/$BACKUP_ID/backup.info
BEGIN_WAL=$(awk -F= '$1 == "begin_wal" {print $2}' "$INFO")
END_WAL=$(awk -F= '$1 == "end_wal" {print $2}' "$INFO")
[[ -n $BEGIN_WAL && -n $END_WAL ]] || die "no begin_wal/end_wal in $INFO"
log "backup $BACKUP_ID: WAL $BEGIN_WAL .. $END_WAL; generating $SEGMENTS segments of WAL ($((SEGMENTS * 16)) MiB)"
t0=$SECONDS
start_lsn=$(psql_at "$SRC" "SELECT pg_current_wal_lsn()")
for ((i = 0; ; i++)); do
    have=$(psql_at "$SRC" "SELECT floor(pg_wal_lsn_diff(pg_current_wal_lsn(), '$start_lsn') / $SEG_BYTES)::int")
    ((have >= SEGMENTS)) && break
    ((i < 4 * SEGMENTS + 20)) || die "WAL generation made no progress ($have of $SEGMENTS segments)"
    pgbench_run "$SRC" -n -c 2 -j 2 -t 40 -f "$W/workload.sql" >/dev/null 2>&1
done
last=$(psql_at "$SRC" "SELECT pg_walfile_name(pg_switch_wal())")
for ((i = 0; i < 3000; i++)); do
    [[ ! "$(psql_at "$SRC" "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")" < "$last" ]] && break
    sleep 0.2
done
ROWS=$(row_counts "$SRC")              # what every recovery must reach
pg_stop "$SRC"
log "WAL generated in $((SECONDS - t0)) s, last archived segment $last"
# What a recovery from the backup fetches: every segment from begin_wal on.
mapfile -t RECOVERY_SEGS < <(find "$ALLWAL" -maxdepth 1 -type f -printf '%f\n' | sort |
    awk -v b="$BEGIN_WAL" "$AWK_IS_WAL"' is_wal($0) && $0 >= b')
# The workload's segments, after the backup: the ones fetched and archived per call.
mapfile -t WORK_SEGS < <(printf '%s\n' "${RECOVERY_SEGS[@]}" | awk -v e="$END_WAL" '$0 > e')
if ((CALLS > ${#WORK_SEGS[@]})); then
    log "only ${#WORK_SEGS[@]} segments after the backup: CALLS=${#WORK_SEGS[@]}"
    CALLS=${#WORK_SEGS[@]}
fi
((ARCHIVE_CALLS <= ${#WORK_SEGS[@]})) || ARCHIVE_CALLS=${#WORK_SEGS[@]}
CALL_SEGS=("${WORK_SEGS[@]:0:CALLS}")
ARCH_SEGS=("${WORK_SEGS[@]:0:ARCHIVE_CALLS}")
declare -A SHA1
for s in "${CALL_SEGS[0]}" "${CALL_SEGS[-1]}" "${ARCH_SEGS[-1]}"; do
    SHA1[$s]=$(sha1sum "$ALLWAL/$s" | cut -c1-40)
done
log "${#RECOVERY_SEGS[@]} segments from the backup's begin_wal; per-call tests on $CALLS (archive-wal: $ARCHIVE_CALLS)"

# catalog_build SPEC : Barman's catalog wals/ rebuilt from allwal/ with this compression, by
# Barman's archive-wal (xlog.db included); the backup stays.
catalog_build() {
    local opts n
    mapfile -t opts < <(comp_opts "$1")
    barman_backup_conf postgres "immediate_checkpoint = true" "${opts[@]}"
    as_bench rm -rf "$BHOME/pg/wals" "$BHOME/pg/incoming"
    as_bench mkdir -p "$BHOME/pg/incoming"
    find "$ALLWAL" -maxdepth 1 -type f -printf '%f\n' | awk -v b="$BEGIN_WAL" '$0 >= b' |
        (cd "$ALLWAL" && as_bench xargs -r cp -l -t "$BHOME/pg/incoming")
    log "Barman archive-wal of ${#RECOVERY_SEGS[@]} segments, compression $1 (untimed)"
    as_bench "$BARMAN" -c "$BCONF" -q archive-wal pg >/dev/null
    n=$(find "$BHOME/pg/wals" -mindepth 2 -maxdepth 2 -type f -printf '%f\n' | awk "$AWK_IS_WAL"' is_wal($0)' | wc -l)
    ((n == ${#RECOVERY_SEGS[@]})) || die "catalog ($1) holds $n segments, not ${#RECOVERY_SEGS[@]}"
    CATALOG_NOTES+=("$1: $(awk -v a=$((n * SEG_BYTES)) -v b="$(dir_bytes "$BHOME/pg/wals")" 'BEGIN {printf "%.0f MiB, ratio %.2f", b / 1048576, a / b}')")
}
CATALOG_NOTES=()

# --- 2. the helpers of the timed runs ------------------------------------------------------
# calls.sh OUT PRE CMD SEG... : one `sh -c` per segment, as PostgreSQL runs archive_command
# and restore_command: PRE (untimed, skipped when empty), then CMD (timed), every %s
# replaced by the segment name. One line per call in OUT: "start end user0 sys0 user1 sys1
# rc", the CPU times being bash's `times` for its children (sh and all it waited for).
as_bench tee "$W/calls.sh" >/dev/null <<'SH'
out=$1 pre=$2 cmd=$3; shift 3
tf=$out.t
exec 3>"$out"
for s in "$@"; do
    if [[ -n $pre ]]; then sh -c "${pre//%s/$s}" 2>>"$out.err" || echo "setup failed for $s" >>"$out.err"; fi
    times >"$tf"; { read -r _; read -r u0 s0; } <"$tf"
    t0=$EPOCHREALTIME
    sh -c "${cmd//%s/$s}" 2>>"$out.err"
    rc=$?
    t1=$EPOCHREALTIME
    times >"$tf"; { read -r _; read -r u1 s1; } <"$tf"
    echo "$t0 $t1 $u0 $s0 $u1 $s1 $rc" >&3
done
SH

# An ssh stand-in (no network): skips ssh's options and the destination, then runs the
# remote command here through sh, as sshd runs it through the login shell; with CAPTURE
# set, it saves what would have been sent instead.
as_bench tee "$W/ssh" >/dev/null <<'SH'
#!/bin/sh
while [ $# -gt 0 ]; do
    case $1 in
        -[bcDEeFIiJLlmOoPpQRSWw]) shift 2 ;;
        -*) shift ;;
        *) shift; break ;;
    esac
done
if [ -n "${CAPTURE:-}" ]; then exec cat >"$CAPTURE"; fi
exec sh -c "$*"
SH
as_bench chmod 755 "$W/ssh"
# Per tool, a PATH dir: barman, barman-wal-archive and the ssh stand-in.
for tool in "${TOOLS[@]}"; do
    d=$W/bin-$tool
    as_bench mkdir -p "$d"
    as_bench ln -s "$(tool_bin "$tool")" "$d/barman"
    case $tool in
        Barman) as_bench ln -s "$BARMAN_WAL_ARCHIVE" "$d/barman-wal-archive" ;;
        barman-rs) as_bench ln -s "$BARMAN_RS" "$d/barman-wal-archive" ;;
    esac
    as_bench ln -s "$W/ssh" "$d/ssh"
done
as_bench mkfifo "$W/nap.fifo"            # read -t on it: a sleep without a fork

OUTF=$W/out/RECOVERYXLOG                 # restore_command's %p
as_bench mkdir -p "$W/out" "$W/calls" "$W/streams" "$W/bin-none"
barman_conf "$ICONF" "$IHOME" "$SRC" "backup_method = postgres"

# run_calls KEY ROUND PATHDIR PRE CMD SEG... : the calls, under `measure` (quiet machine,
# cgroup CPU); raw lines in $W/calls/KEY.ROUND
run_calls() {
    local key=$1 rep=$2 pdir=$3 pre=$4 cmd=$5; shift 5
    local out=$W/calls/${key//[|@ ]/_}.$rep
    as_bench rm -f "$out" "$out.err"
    sync
    measure as_bench env PATH="$pdir:$PATH" bash "$W/calls.sh" "$out" "$pre" "$cmd" "$@"
    RUN_FILE=$out
    RUN_OK=ok
    local failed
    failed=$(awk '$7 != 0' "$out" | wc -l)
    if ((M_RC != 0)); then RUN_OK="runner exit $M_RC"
    elif (($(wc -l <"$out") != $#)); then RUN_OK="$(wc -l <"$out")/$# calls ran"
    elif ((failed > 0)); then RUN_OK="$failed/$# calls failed: $(grep -v '^[[:space:]]*$' "$out.err" | head -1 || true)"
    fi
}

# segment_ok FILE SEGMENT : FILE holds (maybe compressed) the segment's bytes
segment_ok() { [[ -f $1 && $(decompress_any "$1" | sha1sum | cut -c1-40) == "${SHA1[$2]}" ]]; }

run_get_wal() { # run_get_wal TOOL SPEC ROUND   (TOOL cp: the floor)
    local tool=$1 rep=$3 bin cmd last=${CALL_SEGS[-1]}
    if [[ $tool == cp ]]; then
        cmd="cp '$ALLWAL/%s' '$OUTF'"
    else
        bin=$(tool_bin "$tool")
        cmd="'$bin' -c '$BCONF' get-wal -P pg %s > '$OUTF'"
    fi
    as_bench rm -f "$OUTF"
    run_calls "get-wal|$tool|$2" "$rep" "$W/bin-none" "" "$cmd" "${CALL_SEGS[@]}"
    [[ $RUN_OK != ok ]] || segment_ok "$OUTF" "$last" || RUN_OK="output of $last differs"
}

run_put_wal() { # run_put_wal TOOL put-wal|wal-archive ROUND
    local tool=$1 kind=$2 rep=$3 bin cmd n s
    bin=$(tool_bin "$tool")
    as_bench rm -rf "$IHOME/pg/incoming"
    as_bench mkdir -p "$IHOME/pg/incoming"
    if [[ $kind == put-wal ]]; then
        cmd="'$bin' -c '$ICONF' put-wal pg < '$W/streams/%s'"
    else
        cmd="barman-wal-archive -U $BENCH_USER -c '$ICONF' localhost pg '$ALLWAL/%s'"
    fi
    run_calls "$kind|$tool" "$rep" "$W/bin-$tool" "" "$cmd" "${CALL_SEGS[@]}"
    n=$(find "$IHOME/pg/incoming" -maxdepth 1 -type f -printf '%f\n' | awk "$AWK_IS_WAL"' is_wal($0)' | wc -l)
    if [[ $RUN_OK == ok ]]; then
        ((n == CALLS)) || RUN_OK="$n/$CALLS segments in incoming/"
        [[ -z $(find "$IHOME/pg/incoming" -maxdepth 1 -name '.*' -print -quit) ]] || RUN_OK="staging files left in incoming/"
        for s in "${CALL_SEGS[0]}" "${CALL_SEGS[-1]}"; do
            segment_ok "$IHOME/pg/incoming/$s" "$s" || RUN_OK="$s differs"
        done
    fi
    as_bench rm -rf "$IHOME/pg/incoming"
}

run_archive_wal() { # run_archive_wal TOOL SPEC ROUND
    local tool=$1 spec=$2 rep=$3 bin opts n last=${ARCH_SEGS[-1]}
    bin=$(tool_bin "$tool")
    mapfile -t opts < <(comp_opts "$spec")
    barman_conf "$ICONF" "$IHOME" "$SRC" "backup_method = postgres" "${opts[@]}"
    as_bench rm -rf "$IHOME"
    as_bench mkdir -p "$IHOME/pg/incoming"
    run_calls "archive-wal|$tool|$spec" "$rep" "$W/bin-none" "ln '$ALLWAL/%s' '$IHOME/pg/incoming/%s'" \
        "'$bin' -c '$ICONF' -q archive-wal pg" "${ARCH_SEGS[@]}"
    if [[ $RUN_OK == ok ]]; then
        n=$(find "$IHOME/pg/wals" -mindepth 2 -maxdepth 2 -type f -printf '%f\n' 2>/dev/null | awk "$AWK_IS_WAL"' is_wal($0)' | wc -l)
        ((n == ARCHIVE_CALLS)) || RUN_OK="$n/$ARCHIVE_CALLS archived"
        [[ -z $(ls -A "$IHOME/pg/incoming") ]] || RUN_OK="incoming/ not empty"
        segment_ok "$IHOME/pg/wals/${last:0:16}/$last" "$last" || RUN_OK="$last differs"
    fi
    barman_conf "$ICONF" "$IHOME" "$SRC" "backup_method = postgres"
    as_bench rm -rf "$IHOME"
}

# recovery_run DATADIR : (under measure) start the restored cluster, wait until the server
# log says it accepts connections (out of recovery), check, stop it. Writes
# "start end state in_recovery" to $W/recovery.result.
recovery_run() {
    local d=$1 log=$1.log sock fd nap line buf="" t0 t1 state=timeout deadline inrec=""
    sock=$(pg_sock "$d")
    exec {fd}<"$log" {nap}<>"$W/nap.fifo"
    t0=$EPOCHREALTIME
    as_bench "$PG_BINDIR/pg_ctl" -D "$d" -l "$log" -W \
        -o "-c unix_socket_directories='$sock' -c listen_addresses='' -c archive_mode=off -c port=$PG_PORT" \
        start >/dev/null {fd}<&- {nap}<&- || state="pg_ctl failed"
    deadline=$((SECONDS + RECOVERY_TIMEOUT))
    while [[ $state == timeout ]] && ((SECONDS < deadline)); do
        if IFS= read -r line <&"$fd"; then
            line=$buf$line buf=""
            case $line in
                *"database system is ready to accept connections"*) state=ok ;;
                *"aborting startup"* | *"database system is shut down"* | *PANIC:*) state="failed: $line" ;;
            esac
        else
            buf+=$line
            read -r -t 0.01 -u "$nap" _ || true
        fi
    done
    t1=$EPOCHREALTIME
    [[ $state == ok ]] && inrec=$(psql_at "$d" "SELECT pg_is_in_recovery()" 2>&1 | tr '\n' ' ')
    as_bench "$PG_BINDIR/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
    echo "$t0 $t1 ${inrec:-none} $state" >"$W/recovery.result"
}

TARGET=$W/restored
CLUSTERS+=("$TARGET")
declare -A GEN_CMD
run_recovery() { # run_recovery TOOL SPEC  (TOOL cp: the floor, recovered by Barman)
    local tool=$1 rbin bin out gen cmd t0 t1 inrec state n
    RUN_OK=ok RUN_SECS=""
    if [[ $tool == cp ]]; then rbin=$BARMAN; else rbin=$(tool_bin "$tool"); fi
    as_bench rm -rf "$TARGET" "$(pg_sock "$TARGET")" "$TARGET.log"
    if ! out=$(as_bench "$rbin" -c "$BCONF" -q recover --get-wal pg "$BACKUP_ID" "$TARGET" 2>&1); then
        RUN_OK="recover failed: $(head -3 <<<"$out" | tr '\n' ' ')"
        log "$tool recover --get-wal failed: $out"
        return
    fi
    gen=$(grep '^restore_command' "$TARGET/postgresql.auto.conf" 2>/dev/null || true)
    [[ $tool == cp ]] || GEN_CMD[$tool]=$gen
    if [[ $gen != "restore_command = 'barman get-wal -P pg %f > %p'" ]]; then
        RUN_OK="recover wrote [$gen], not Barman's restore_command"
        [[ $tool == cp ]] || return 0
    fi
    if [[ $tool == cp ]]; then
        cmd="cp $ALLWAL/%f %p"
    else
        bin=$(tool_bin "$tool")
        cmd="$bin -c $BCONF get-wal -P pg %f > %p"
    fi
    as_bench sed -i "s|^restore_command = .*|restore_command = '$cmd'|" "$TARGET/postgresql.auto.conf"
    as_bench mkdir -p "$(pg_sock "$TARGET")"
    as_bench chmod 700 "$TARGET"
    as_bench touch "$TARGET.log"
    sync
    measure recovery_run "$TARGET"
    read -r t0 t1 inrec state <"$W/recovery.result"
    # distinct segments (PostgreSQL reads the last one again when it switches timeline)
    n=$(grep -o 'restored log file "[0-9A-F]\{24\}" from archive' "$TARGET.log" | sort -u | wc -l || true)
    if [[ $state != ok ]]; then
        RUN_OK="$state"
        log "recovery log tail: $(tail -5 "$TARGET.log")"
    elif [[ $inrec != f ]]; then
        RUN_OK="pg_is_in_recovery: $inrec"
    elif ((n != ${#RECOVERY_SEGS[@]})); then
        RUN_OK="restored $n of ${#RECOVERY_SEGS[@]} segments"
        log "recovery log: $(grep -m3 -E 'ERROR|FATAL|not found' "$TARGET.log" | tr '\n' ' ')"
    else
        # untimed: started again (normal start now), rows counted against the source's
        out=$(verify_restored "$TARGET")
        [[ $out == ok ]] || RUN_OK="after recovery: $out"
    fi
    RUN_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    as_bench rm -rf "$TARGET" "$(pg_sock "$TARGET")"
}

# --- 3. the measurements ----------------------------------------------------------------------
declare -A FILES OKS RSECS CPUS HCPUS
record() { # record CFG ROUND : keep what the last run_* left
    local cfg=$1 rep=$2
    if [[ $cfg == recovery* ]]; then
        [[ -n $RUN_SECS ]] && RSECS[$cfg]+="$RUN_SECS " CPUS[$cfg]+="$M_CPU " HCPUS[$cfg]+="$M_HOST_CPU "
        log "round $rep/$REPS: $cfg: ${RUN_SECS:-?} s, cpu ${M_CPU:-?} s, host cpu ${M_HOST_CPU:-?} s, $RUN_OK"
    else
        FILES[$cfg]+="$RUN_FILE " HCPUS[$cfg]+="$M_HOST_CPU "
        log "round $rep/$REPS: $cfg: $(calls_stats "$RUN_FILE" | awk '{print $1 " ms median, " $2 " ms mean, cpu " $3 " ms/call"}'), host cpu ${M_HOST_CPU}s, $RUN_OK"
    fi
    [[ $RUN_OK == ok ]] || OKS[$cfg]+="round $rep: $RUN_OK; "
}

run_cfg() { # run_cfg CFG ROUND ; CFG = KIND|TOOL|SPEC
    local kind tool spec
    IFS='|' read -r kind tool spec <<<"$1"
    case $kind in
        get-wal) run_get_wal "$tool" "$spec" "$2" ;;
        put-wal | wal-archive) run_put_wal "$tool" "$kind" "$2" ;;
        archive-wal) run_archive_wal "$tool" "$spec" "$2" ;;
        recovery) run_recovery "$tool" "$spec" ;;
    esac
    record "$1" "$2"
}

run_rounds() { # run_rounds CFG... : REPS rounds, interleaved
    local rep cfg order
    for ((rep = 1; rep <= REPS; rep++)); do
        mapfile -t order < <(round_order "$rep" "$@")
        for cfg in "${order[@]}"; do run_cfg "$cfg" "$rep"; done
    done
}

# calls_stats FILE... -> "median_ms mean_ms cpu_ms_per_call calls"
calls_stats() {
    local med rest
    med=$(awk '{printf "%.3f\n", ($2 - $1) * 1000}' "$@" | sort -g |
        awk '{a[NR] = $1} END {if (NR) printf "%.1f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
    rest=$(awk 'function c(x, p) {sub(/s$/, "", x); split(x, p, "m"); return p[1] * 60 + p[2]}
        {w += $2 - $1; cpu += c($5) + c($6) - c($3) - c($4); n++}
        END {if (n) printf "%.1f %.1f %d", w * 1000 / n, cpu * 1000 / n, n}' "$@")
    echo "${med:-0} $rest"
}

# Barman's stream for put-wal, captured from Barman's own barman-wal-archive (untimed).
if part put-wal; then
    log "capturing barman-wal-archive's stream for $CALLS segments (untimed)"
    for s in "${CALL_SEGS[@]}"; do
        as_bench env CAPTURE="$W/streams/$s" PATH="$W/bin-Barman:$PATH" \
            "$BARMAN_WAL_ARCHIVE" -U "$BENCH_USER" -c "$ICONF" localhost pg "$ALLWAL/$s" ||
            die "barman-wal-archive failed for $s"
    done
    STREAM_MEMBERS=$(tar -tf "$W/streams/${CALL_SEGS[0]}" | tr '\n' ' ')
    log "stream members: $STREAM_MEMBERS"
fi
sync

# Catalog-bound runs, per compression: get-wal per call and the recoveries.
SPECS=()
part get-wal && SPECS+=($COMPRESSIONS)
part recovery && SPECS+=($RECOVERY_COMPRESSIONS)
mapfile -t SPECS < <(printf '%s\n' "${SPECS[@]}" | awk 'NF && !seen[$0]++')
FLOOR_DONE=0
for spec in "${SPECS[@]}"; do
    catalog_build "$spec"
    sync
    CFGS=()
    if part get-wal && [[ " $COMPRESSIONS " == *" $spec "* ]]; then
        for t in "${TOOLS[@]}"; do CFGS+=("get-wal|$t|$spec"); done
    fi
    if part recovery && [[ " $RECOVERY_COMPRESSIONS " == *" $spec "* ]]; then
        for t in "${TOOLS[@]}"; do CFGS+=("recovery|$t|$spec"); done
        ((FLOOR_DONE)) || CFGS+=("recovery|cp|plain")
        FLOOR_DONE=1
    fi
    run_rounds "${CFGS[@]}"
done

# Catalog-free runs: the get-wal floor, put-wal, the wal-archive pipeline, archive-wal.
CFGS=()
part get-wal && CFGS+=("get-wal|cp|plain")
for t in "${TOOLS[@]}"; do
    part put-wal && CFGS+=("put-wal|$t|plain")
    part wal-archive && CFGS+=("wal-archive|$t|plain")
    if part archive-wal; then for c in $COMPRESSIONS; do CFGS+=("archive-wal|$t|$c"); done; fi
done
((${#CFGS[@]} == 0)) || run_rounds "${CFGS[@]}"

# --- 4. the tables ---------------------------------------------------------------------------
OUT=$BENCH_RESULTS/get-wal-$(date +%Y%m%d-%H%M%S).md
for t in "${!GEN_CMD[@]}"; do
    [[ ${GEN_CMD[$t]} == "restore_command = 'barman get-wal -P pg %f > %p'" ]] ||
        NOTES+=("$t recover --get-wal wrote: ${GEN_CMD[$t]:-no restore_command}")
done
{
    echo "## WAL one segment at a time: get-wal, put-wal, archive-wal, recovery through get-wal; median of $REPS rounds"
    echo
    machine_info
    echo "backup $BACKUP_ID; recovery replays ${#RECOVERY_SEGS[@]} segments ($BEGIN_WAL .. ${RECOVERY_SEGS[-1]});"\
         "per-call tests: $CALLS segments (archive-wal: $ARCHIVE_CALLS); CPU accounting: $CG_MODE"
    ((${#CATALOG_NOTES[@]})) && echo "Barman catalogs (wals/, by Barman's archive-wal): $(printf '%s; ' "${CATALOG_NOTES[@]}" | sed 's/; $//')"
    part put-wal && echo "put-wal stream (captured from barman-wal-archive): $STREAM_MEMBERS"
    for n in "${NOTES[@]}"; do echo "note: $n"; done
    echo
} | tee "$OUT"

describe() { # describe CFG -> the command as run per segment
    local kind tool spec
    IFS='|' read -r kind tool spec <<<"$1"
    case $kind:$tool in
        get-wal:cp) echo "cp allwal/SEG %p (floor)" ;;
        get-wal:*) echo "get-wal -P pg SEG > %p" ;;
        put-wal:*) echo "put-wal pg < barman-wal-archive stream" ;;
        wal-archive:*) echo "barman-wal-archive localhost pg SEG → put-wal" ;;
        archive-wal:*) echo "archive-wal pg (1 segment)" ;;
        recovery:cp) echo "cp allwal/%f %p (floor)" ;;
        recovery:*) echo "barman get-wal -P pg %f > %p" ;;
    esac
}

# Barman's median for the same kind and compression, to divide by
barman_median() { # barman_median CFG MEDIANS_ASSOC_NAME
    local kind tool spec
    IFS='|' read -r kind tool spec <<<"$1"
    local -n meds=$2
    [[ $kind == get-wal && $tool == cp ]] && spec=${COMPRESSIONS%% *}
    [[ $kind == recovery && $tool == cp ]] && spec=${RECOVERY_COMPRESSIONS%% *}
    echo "${meds[$kind|Barman|$spec]:-}"
}
verdict() { local v=${OKS[$1]:-ok}; v=${v%; }; echo "${v//|/\\|}"; }
ratio() { [[ $3 == cp ]] && { echo -; return; }; awk -v a="$1" -v b="$2" 'BEGIN {if (a != "" && b > 0) printf "%.2f", a / b; else printf "-"}'; }

print_calls_table() { # print_calls_table TITLE KIND...
    local title=$1; shift
    local cfg kind tool spec files hc st med mean cpu n means f
    declare -A MED=()
    for cfg in "${ALL_CFGS[@]}"; do
        [[ -n ${FILES[$cfg]:-} ]] || continue
        read -ra files <<<"${FILES[$cfg]}"
        read -r med _ <<<"$(calls_stats "${files[@]}")"
        MED[$cfg]=$med
    done
    table_header $'tool\tcommand (one sh -c per segment)\tcompression\tcalls (rounds×N)\tms/call median\tms/call mean\tCPU ms/call\thost CPU ms/call\tBarman ÷ this\tround means (ms)\tverified'
    local rows=0
    for cfg in "${ALL_CFGS[@]}"; do
        IFS='|' read -r kind tool spec <<<"$cfg"
        [[ " $* " == *" $kind "* && -n ${FILES[$cfg]:-} ]] || continue
        read -ra files <<<"${FILES[$cfg]}"
        read -r med mean cpu n <<<"$(calls_stats "${files[@]}")"
        means=""
        for f in "${files[@]}"; do means+="$(calls_stats "$f" | awk '{print $2}') "; done
        read -ra hc <<<"${HCPUS[$cfg]}"
        table_row "$([[ $tool == cp ]] && echo "(floor)" || echo "$tool")" "$(describe "$cfg")" "$spec" "${#files[@]}×$((n / ${#files[@]}))" "$med" "$mean" "$cpu" \
            "$(awk -v h="$(median "${hc[@]}")" -v n="$((n / ${#files[@]}))" 'BEGIN {printf "%.1f", h * 1000 / n}')" \
            "$(ratio "$(barman_median "$cfg" MED)" "$med" "$tool")" "${means% }" "$(verdict "$cfg")"
        rows=$((rows + 1))
    done
    ((rows == 0)) || { table_print "$title" "$OUT"; echo | tee -a "$OUT"; }
}

# every configuration, in table order
ALL_CFGS=()
for c in $COMPRESSIONS; do for t in "${TOOLS[@]}"; do ALL_CFGS+=("get-wal|$t|$c"); done; done
ALL_CFGS+=("get-wal|cp|plain")
for k in put-wal wal-archive; do for t in "${TOOLS[@]}"; do ALL_CFGS+=("$k|$t|plain"); done; done
for c in $COMPRESSIONS; do for t in "${TOOLS[@]}"; do ALL_CFGS+=("archive-wal|$t|$c"); done; done
if part recovery; then
    for c in $RECOVERY_COMPRESSIONS; do for t in "${TOOLS[@]}"; do ALL_CFGS+=("recovery|$t|$c"); done; done
    ALL_CFGS+=("recovery|cp|plain")
fi
print_calls_table "restore_command side: get-wal per segment" get-wal
print_calls_table "archive_command side: per segment" put-wal wal-archive archive-wal

if part recovery; then
    declare -A RMED=()
    for cfg in "${ALL_CFGS[@]}"; do
        [[ $cfg == recovery* && -n ${RSECS[$cfg]:-} ]] || continue
        read -ra s <<<"${RSECS[$cfg]}"
        RMED[$cfg]=$(median "${s[@]}")
    done
    floor=${RMED[recovery|cp|plain]:-}
    nseg=${#RECOVERY_SEGS[@]}
    table_header $'tool\trestore_command\tcompression\tsegments\tseconds (median)\tms/segment\tBarman ÷ this\tms/segment above cp floor\tCPU s (PostgreSQL + restore_command)\thost CPU s\tall runs (s)\tverified'
    for cfg in "${ALL_CFGS[@]}"; do
        IFS='|' read -r kind tool spec <<<"$cfg"
        [[ $kind == recovery ]] || continue
        if [[ -z ${RSECS[$cfg]:-} ]]; then
            table_row "$tool" "$(describe "$cfg")" "$spec" "$nseg" - - - - - - - "$(verdict "$cfg")"
            continue
        fi
        read -ra s <<<"${RSECS[$cfg]}"
        read -ra c <<<"${CPUS[$cfg]}"
        read -ra h <<<"${HCPUS[$cfg]}"
        med=${RMED[$cfg]}
        table_row "$([[ $tool == cp ]] && echo "(floor)" || echo "$tool")" "$(describe "$cfg")" "$spec" "$nseg" "$med" \
            "$(awk -v s="$med" -v n="$nseg" 'BEGIN {printf "%.1f", s * 1000 / n}')" \
            "$(ratio "$(barman_median "$cfg" RMED)" "$med" "$tool")" \
            "$(awk -v s="$med" -v f="$floor" -v n="$nseg" -v t="$tool" 'BEGIN {if (f != "" && t != "cp") printf "%.1f", (s - f) * 1000 / n; else printf "-"}')" \
            "$(median "${c[@]}")" "$(median "${h[@]}")" "${s[*]}" "$(verdict "$cfg")"
    done
    table_print "Recovery through restore_command, to the end of the archive" "$OUT"
fi
