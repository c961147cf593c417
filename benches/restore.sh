#!/usr/bin/env bash
# benches/restore.sh — ../shared/bench/restore.sh (same measurement, same lib.sh) plus the
# configurations only barman-rs has (when BARMAN_RS is set):
#       native:CODEC:JOBS  a backup taken by barman-rs itself (untimed): backup_method =
#                          local-rsync, parallel_jobs = 2, backup_compression = CODEC (lz4,
#                          zstd, gzip), immediate_checkpoint = true, no ssh_command (Barman
#                          refuses it with local-rsync). That is the native copy writing
#                          pg_basebackup's tar layout (data/base.tar.lz4 ...) as many
#                          independent compressed frames. Restored like the other barman-rs
#                          rows: `recover --jobs JOBS --target-immediate --target-action promote
#                          pg ID DIR`, verified the same way. Barman 3.19 disables a local-rsync
#                          server with backup_compression, so the config is switched back to
#                          the postgres method right after each native backup, before Barman
#                          runs again; barman-rs recovers from the catalog whatever the server's
#                          backup_method (backup.info records the compression).
#                          Knob: BARMAN_RS_NATIVE_RESTORE_CONFIGS ("native:lz4:2 native:zstd:2";
#                          empty: none).
# Run from the repository: BARMAN_RS=target/release/barman bash benches/restore.sh
#
# restore.sh — restore of a full base backup to an empty directory, timed per tool.
#
# What it measures: the same ~BACKUP_MIB cluster as backup.sh is backed up once by each
# tool (untimed): Barman postgres method plain and lz4-tar, pgBackRest full with lz4 and
# with zst (process-max 2). Then, REPS rounds interleaved, each configuration restores
# into an empty directory, timed until the tool's command returns plus a `sync` after
# it (until the restored files are on disk; Barman's rsync copy does not fsync them,
# pgBackRest does, so "of which sync" differs). All restores target
# the end of the backup (Barman --target-immediate, pgBackRest --type=immediate, both
# promoting), so each tool restores its backup plus only the WAL that makes it consistent:
#   * Barman `recover pg BACKUP_ID DIR --jobs N` (local copy: rsync for plain backups,
#     tar + decompression for compressed ones); configs SOURCE:JOBS = plain:1 plain:2 lz4:1
#   * pgBackRest `restore --set=LABEL --pg1-path=DIR --process-max=N`;
#     configs COMPRESS_TYPE:PROCESS_MAX = lz4:2 zst:2 zst:1
#   * barman-rs (when BARMAN_RS is set): the Barman configurations, recovering the very
#     same Barman backups (it is a drop-in reading Barman's catalog).
# Every restored directory is then started as a cluster (own socket, archiving off), left
# to finish recovery, and its row counts compared with the source's: "verified ok".
# Columns: seconds (median), MiB/s of database size, tool CPU and host CPU seconds.
#
# How to run:  bash restore.sh
#              BACKUP_MIB=8192 REPS=5 BARMAN_RS=/path/to/barman bash restore.sh
# Knobs: BACKUP_MIB (2048), REPS (3), BARMAN_RESTORE_CONFIGS ("plain:1 plain:2 lz4:1"),
#   BARMAN_RS_RESTORE_CONFIGS (same), PGBR_RESTORE_CONFIGS ("lz4:2 zst:2 zst:1"), lib.sh's.
set -euo pipefail
HERE=${SHARED_BENCH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../shared/bench" && pwd)}
# shellcheck source=lib.sh
source "$HERE/lib.sh"

BACKUP_MIB=${BACKUP_MIB:-2048}
BARMAN_RESTORE_CONFIGS=${BARMAN_RESTORE_CONFIGS:-"plain:1 plain:2 lz4:1"}
BARMAN_RS_RESTORE_CONFIGS=${BARMAN_RS_RESTORE_CONFIGS:-$BARMAN_RESTORE_CONFIGS}
PGBR_RESTORE_CONFIGS=${PGBR_RESTORE_CONFIGS:-"lz4:2 zst:2 zst:1"}
BARMAN_RS_NATIVE_RESTORE_CONFIGS=${BARMAN_RS_NATIVE_RESTORE_CONFIGS-"native:lz4:2 native:zstd:2"}
[[ -n $BARMAN_RS ]] || BARMAN_RS_NATIVE_RESTORE_CONFIGS=""
for c in $BARMAN_RS_NATIVE_RESTORE_CONFIGS; do
    [[ $c =~ ^native:(lz4|zstd|gzip):[1-9][0-9]*$ ]] || die "unknown native restore configuration $c (native:CODEC:JOBS, CODEC lz4, zstd or gzip)"
done

bench_init restore
check_peers
backup_env_setup "$BACKUP_MIB"

# --- the backups to restore (untimed) --------------------------------------------------------
declare -A BARMAN_ID PGBR_LABEL
for src in $(printf '%s\n' $BARMAN_RESTORE_CONFIGS ${BARMAN_RS:+$BARMAN_RS_RESTORE_CONFIGS} | cut -d: -f1 | sort -u); do
    case $src in
        plain) barman_backup_conf postgres ;;
        *) barman_backup_conf postgres "backup_compression = $src" "backup_compression_format = tar" \
               "backup_compression_location = client" ;;
    esac
    log "Barman backup ($src)"
    as_bench "$BARMAN" -c "$BCONF" -q backup --wait --wait-timeout 600 pg >/dev/null
    BARMAN_ID[$src]=$(barman_last_backup)
done
# barman-rs's native tar backups (keys native:CODEC). Barman disables a local-rsync server
# with backup_compression: back to the postgres method before Barman runs again.
for src in $(printf '%s\n' $BARMAN_RS_NATIVE_RESTORE_CONFIGS | cut -d: -f1,2 | sort -u); do
    codec=${src#native:}
    # Barman refuses ssh_command with local-rsync.
    SSH_CMD="" barman_backup_conf local-rsync "parallel_jobs = 2" "reuse_backup = off" \
        "backup_compression = $codec" "immediate_checkpoint = true"
    log "barman-rs native backup ($codec)"
    as_bench "$BARMAN_RS" -c "$BCONF" -q backup --wait --wait-timeout 600 pg >/dev/null
    barman_backup_conf postgres
    BARMAN_ID[$src]=$(barman_last_backup)
    for k in "${!BARMAN_ID[@]}"; do
        [[ $k == "$src" || ${BARMAN_ID[$k]} != "${BARMAN_ID[$src]}" ]] ||
            die "barman-rs native backup ($codec) left no new backup in the catalog"
    done
    as_bench grep -qsx "compression=$codec" "$BHOME/pg/meta/${BARMAN_ID[$src]}-backup.info" \
        "$BHOME/pg/base/${BARMAN_ID[$src]}/backup.info" ||
        die "barman-rs native backup ($codec) ${BARMAN_ID[$src]}: backup.info does not record compression=$codec"
done
barman_backup_conf postgres
for comp in $(printf '%s\n' $PGBR_RESTORE_CONFIGS | cut -d: -f1 | sort -u); do
    log "pgBackRest backup ($comp)"
    pgbr "$PGBR_CP" --type=full --compress-type="$comp" --process-max=2 backup
    PGBR_LABEL[$comp]=$(pgbr_last_label)
done
# no more writes: every restore must reach exactly these rows
ROWS=$(row_counts "$SRC")
sync

TARGET=$W/restored
run_barman_restore() { # run_barman_restore BINARY SOURCE:JOBS
    local bin=$1 src=${2%:*} jobs=${2##*:}
    as_bench rm -rf "$TARGET" "$(pg_sock "$TARGET")"
    sync
    measure as_bench "$bin" -c "$BCONF" -q recover --jobs "$jobs" --target-immediate --target-action promote \
        pg "${BARMAN_ID[$src]}" "$TARGET"
    RUN_SIZE=$(dir_bytes "$TARGET")
    if ((M_RC != 0)); then RUN_OK="exit $M_RC"; else RUN_OK=$(verify_restored "$TARGET"); fi
}

run_pgbr_restore() { # run_pgbr_restore COMPRESS_TYPE:PROCESS_MAX
    local comp=${1%:*} pm=${1#*:}
    as_bench rm -rf "$TARGET" "$(pg_sock "$TARGET")"
    as_bench mkdir -m 700 "$TARGET"
    sync
    measure pgbr "$PGBR_CP" --pg1-path="$TARGET" --set="${PGBR_LABEL[$comp]}" --process-max="$pm" \
        --type=immediate --target-action=promote restore
    RUN_SIZE=$(dir_bytes "$TARGET")
    if ((M_RC != 0)); then RUN_OK="exit $M_RC"; else RUN_OK=$(verify_restored "$TARGET"); fi
}

CONFIGS=()
for c in $BARMAN_RESTORE_CONFIGS; do CONFIGS+=("Barman|$c"); done
for c in $PGBR_RESTORE_CONFIGS; do CONFIGS+=("pgBackRest|$c"); done
if [[ -n $BARMAN_RS ]]; then for c in $BARMAN_RS_RESTORE_CONFIGS; do CONFIGS+=("barman-rs|$c"); done; fi
for c in $BARMAN_RS_NATIVE_RESTORE_CONFIGS; do CONFIGS+=("barman-rs|$c"); done

declare -A SYNCS WALLS CPUS HCPUS OKS SIZES
for ((rep = 1; rep <= REPS; rep++)); do
    mapfile -t ORDER < <(round_order "$rep" "${CONFIGS[@]}")
    for cfg in "${ORDER[@]}"; do
        IFS='|' read -r tool c <<<"$cfg"
        case $tool in
            Barman) run_barman_restore "$BARMAN" "$c" ;;
            barman-rs) run_barman_restore "$BARMAN_RS" "$c" ;;
            pgBackRest) run_pgbr_restore "$c" ;;
        esac
        log "round $rep/$REPS: $tool $c: ${M_WALL}s (sync ${M_SYNC}s), cpu ${M_CPU}s, host cpu ${M_HOST_CPU}s, $((RUN_SIZE / 1048576)) MiB restored, $RUN_OK"
        WALLS[$cfg]+="$M_WALL " SYNCS[$cfg]+="$M_SYNC " CPUS[$cfg]+="$M_CPU " HCPUS[$cfg]+="$M_HOST_CPU " SIZES[$cfg]+="$RUN_SIZE "
        [[ $RUN_OK == ok ]] || OKS[$cfg]+="round $rep: $RUN_OK; "
    done
done
as_bench rm -rf "$TARGET"

describe() { # describe TOOL CONFIG -> "command<TAB>from backup<TAB>jobs"
    case $1 in
        pgBackRest) printf 'restore\tfull, %s\t%s' "${2%:*}" "${2#*:}" ;;
        *) case ${2%:*} in
               plain) printf 'recover\tpostgres method, plain\t%s' "${2#*:}" ;;
               native:*) local n=${2%:*}
                         printf 'recover\tbarman-rs local-rsync, native tar %s\t%s' "${n#native:}" "${2##*:}" ;;
               *) printf 'recover\tpostgres method, tar %s\t%s' "${2%:*}" "${2#*:}" ;;
           esac ;;
    esac
}

table_header $'tool\tcommand\tfrom backup\tjobs\tseconds (median)\tof which sync\tMiB/s\trestored MiB\ttool CPU s\thost CPU s\tall runs (s)\tverified'
for cfg in "${CONFIGS[@]}"; do
    IFS='|' read -r tool c <<<"$cfg"
    read -ra walls <<<"${WALLS[$cfg]}"
    read -ra syncs <<<"${SYNCS[$cfg]}"
    read -ra cpus <<<"${CPUS[$cfg]}"
    read -ra hcpus <<<"${HCPUS[$cfg]}"
    read -ra sizes <<<"${SIZES[$cfg]}"
    med=$(median "${walls[@]}")
    i=$(median_index "$med" "${walls[@]}")
    IFS=$'\t' read -r cmd from jobs <<<"$(describe "$tool" "$c")"
    table_row "$tool" "$cmd" "$from" "$jobs" "$med" "$(median "${syncs[@]}")" \
        "$(awk -v b="$DATA_BYTES" -v s="$med" 'BEGIN {printf "%.0f", b / 1048576 / s}')" \
        "$(awk -v b="${sizes[$i]}" 'BEGIN {printf "%.0f", b / 1048576}')" \
        "$(median "${cpus[@]}")" "$(median "${hcpus[@]}")" "${walls[*]}" "${OKS[$cfg]:-ok}"
done
OUT=$BENCH_RESULTS/restore-$(date +%Y%m%d-%H%M%S).md
{
    echo "## Restore of a full backup of a $((DATA_BYTES / 1048576)) MiB cluster, median of $REPS"
    echo
    machine_info
    echo "rows checked after recovery: $ROWS; CPU accounting: $CG_MODE"
    echo
} | tee "$OUT"
table_print "Restore" "$OUT"
