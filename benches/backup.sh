#!/usr/bin/env bash
# benches/backup.sh — ../shared/bench/backup.sh (same measurement, same lib.sh) plus the
# configurations only barman-rs's native copy has:
#       local-rsync:N  backup_method = local-rsync, parallel_jobs = N (Barman: rsync; barman-rs:
#                      the native pipeline copy)
#       reuse:N        local-rsync with reuse_backup = link, timed on an unchanged cluster right
#                      after an untimed full backup (both deleted afterwards)
#       native:N:C     local-rsync with backup_compression = C (lz4, zstd, gzip), parallel_jobs = N:
#                      the native copy writing pg_basebackup's tar layout, compressed on N cores
#                      (Barman refuses backup_compression with local-rsync; its check-backup and
#                      show-backup verify the result under a postgres-method configuration)
# Every configuration runs with immediate_checkpoint = true, so the figures time the
# copy, not PostgreSQL's spread checkpoint.
# Run from the repository: BARMAN_RS=target/release/barman bash benches/backup.sh
#
# backup.sh — full base backup of a live cluster, timed per tool and configuration.
#
# What it measures: a scratch PostgreSQL 15 cluster is loaded with ~BACKUP_MIB of data
# (pgbench tables plus an application-like events table; it compresses ~3-4x), its WAL
# archived to both tools. Then, REPS rounds interleaved, each configuration takes a
# full backup, timed until the tool reports it complete and consistent (plus a `sync`
# after it, so that every tool is timed until its backup is on disk):
#   * Barman `backup --wait pg` (the --wait includes archiving the backup's WAL):
#       postgres       backup_method = postgres (pg_basebackup, plain files)
#       postgres:lz4   ... backup_compression = lz4, tar format, client-side
#       postgres:zstd  ... backup_compression = zstd, tar format, client-side
#       rsync:N        backup_method = rsync over ssh to 127.0.0.1, parallel_jobs = N
#                      (a private sshd on a free port; skipped with a note if it fails)
#   * pgBackRest `--type=full backup` with compress-type:process-max = lz4:1 lz4:2 zst:1 zst:2
#   * barman-rs (when BARMAN_RS is set): the Barman configurations, same config file.
# Columns: seconds (median), MiB/s of database size, backup size on disk and ratio,
# tool CPU (command + descendants) and host CPU (whole machine while it ran: includes
# PostgreSQL's walsender for pg_basebackup and sshd/rsync-server for rsync).
# Verified: Barman reports the backup DONE and `check-backup` passes; pgBackRest lists it
# without error. Each backup is deleted (untimed) after it is measured.
#
# How to run:  bash backup.sh
#              BACKUP_MIB=8192 REPS=5 bash backup.sh
#              BARMAN_RS=/path/to/barman bash backup.sh
# Knobs: BACKUP_MIB (2048), REPS (3), BARMAN_BACKUP_CONFIGS ("postgres postgres:lz4
#   postgres:zstd rsync:1 rsync:2"), BARMAN_RS_BACKUP_CONFIGS (same), PGBR_BACKUP_CONFIGS
#   ("lz4:1 lz4:2 zst:1 zst:2"), plus lib.sh's.
set -euo pipefail
HERE=${SHARED_BENCH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../shared/bench" && pwd)}
# shellcheck source=lib.sh
source "$HERE/lib.sh"

BACKUP_MIB=${BACKUP_MIB:-2048}
BARMAN_BACKUP_CONFIGS=${BARMAN_BACKUP_CONFIGS:-"postgres postgres:lz4 postgres:zstd rsync:1 rsync:2"}
BARMAN_RS_BACKUP_CONFIGS=${BARMAN_RS_BACKUP_CONFIGS:-$BARMAN_BACKUP_CONFIGS}
PGBR_BACKUP_CONFIGS=${PGBR_BACKUP_CONFIGS:-"lz4:1 lz4:2 zst:1 zst:2"}

bench_init backup
check_peers
NOTES=()
if [[ $BARMAN_BACKUP_CONFIGS$BARMAN_RS_BACKUP_CONFIGS == *rsync* ]]; then
    if ! sshd_start; then
        NOTES+=("Barman rsync method skipped: could not start a private sshd for $BENCH_USER@127.0.0.1")
        BARMAN_BACKUP_CONFIGS=$(tr ' ' '\n' <<<"$BARMAN_BACKUP_CONFIGS" | grep -v '^rsync' | xargs)
        BARMAN_RS_BACKUP_CONFIGS=$(tr ' ' '\n' <<<"$BARMAN_RS_BACKUP_CONFIGS" | grep -v '^rsync' | xargs)
    fi
fi
backup_env_setup "$BACKUP_MIB"
sync

# barman_opts CONFIG : prints Barman server option lines for a configuration name
barman_opts() {
    case $1 in
        postgres) echo "backup_method = postgres" ;;
        postgres:*) printf '%s\n' "backup_method = postgres" "backup_compression = ${1#*:}" \
                        "backup_compression_format = tar" "backup_compression_location = client" ;;
        rsync:*) printf '%s\n' "backup_method = rsync" "parallel_jobs = ${1#*:}" "reuse_backup = off" ;;
        local-rsync:*) printf '%s\n' "backup_method = local-rsync" "parallel_jobs = ${1#*:}" "reuse_backup = off" ;;
        reuse:*) printf '%s\n' "backup_method = local-rsync" "parallel_jobs = ${1#*:}" "reuse_backup = link" ;;
        native:*) local n=${1#native:}
                  printf '%s\n' "backup_method = local-rsync" "parallel_jobs = ${n%%:*}" "reuse_backup = off" \
                      "backup_compression = ${n#*:}" ;;
        *) die "unknown Barman backup configuration $1" ;;
    esac
}

run_barman_backup() { # run_barman_backup BINARY CONFIG
    local bin=$1 cfg=$2 id status opts
    mapfile -t opts < <(barman_opts "$cfg")
    if [[ $cfg == local-rsync:* || $cfg == reuse:* || $cfg == native:* ]]; then
        # Barman refuses ssh_command with local-rsync.
        SSH_CMD="" barman_backup_conf "${opts[0]#backup_method = }" "${opts[@]:1}" "immediate_checkpoint = true"
    else
        barman_backup_conf "${opts[0]#backup_method = }" "${opts[@]:1}" "immediate_checkpoint = true"
    fi
    local first=""
    if [[ $cfg == reuse:* ]]; then
        as_bench "$bin" -c "$BCONF" -q backup --wait --wait-timeout 600 pg >/dev/null
        first=$(barman_last_backup)
        sleep 1
    fi
    measure as_bench "$bin" -c "$BCONF" -q backup --wait --wait-timeout 600 pg
    RUN_OK=ok RUN_SIZE=0
    # Barman disables a local-rsync server with backup_compression: verify
    # the backup under a configuration it accepts.
    [[ $cfg != native:* ]] || barman_backup_conf postgres "immediate_checkpoint = true"
    id=$(barman_last_backup)
    if [[ -z $id ]]; then RUN_OK="no backup (exit $M_RC)"; return; fi
    RUN_SIZE=$(dir_bytes "$BHOME/pg/base/$id")
    status=$(as_bench "$BARMAN" -c "$BCONF" show-backup pg "$id" | awk -F': *' '/^ *Status/ {print $2; exit}')
    if ((M_RC != 0)); then RUN_OK="exit $M_RC, status $status"
    elif [[ $status != DONE ]]; then RUN_OK="status $status"
    elif ! as_bench "$BARMAN" -c "$BCONF" -q check-backup pg "$id" >/dev/null 2>&1; then RUN_OK="check-backup failed"
    fi
    as_bench rm -rf "$BHOME/pg/base/$id"      # untimed; keeps disk use flat
    [[ -z $first ]] || as_bench rm -rf "$BHOME/pg/base/$first" "$BHOME/pg/meta/$first-backup.info"
}

run_pgbr_backup() { # run_pgbr_backup COMPRESS_TYPE:PROCESS_MAX
    local comp=${1%:*} pm=${1#*:} label
    measure pgbr "$PGBR_CP" --type=full --compress-type="$comp" --process-max="$pm" backup
    RUN_OK=ok RUN_SIZE=0
    label=$(pgbr_last_label)
    if [[ -z $label ]]; then RUN_OK="no backup (exit $M_RC)"; return; fi
    RUN_SIZE=$(dir_bytes "$W/repo/backup/bench/$label")
    if ((M_RC != 0)); then RUN_OK="exit $M_RC"
    elif pgbr "$PGBR_CP" info --output=json | grep -q '"error":true'; then RUN_OK="info reports an error"
    fi
    pgbr "$PGBR_CP" expire --repo1-retention-full=1 >/dev/null   # untimed: keep the latest only
}

CONFIGS=()
for c in $BARMAN_BACKUP_CONFIGS; do CONFIGS+=("Barman|$c"); done
for c in $PGBR_BACKUP_CONFIGS; do CONFIGS+=("pgBackRest|$c"); done
if [[ -n $BARMAN_RS ]]; then for c in $BARMAN_RS_BACKUP_CONFIGS; do CONFIGS+=("barman-rs|$c"); done; fi

declare -A SYNCS WALLS CPUS HCPUS SIZES OKS
for ((rep = 1; rep <= REPS; rep++)); do
    mapfile -t ORDER < <(round_order "$rep" "${CONFIGS[@]}")
    for cfg in "${ORDER[@]}"; do
        IFS='|' read -r tool c <<<"$cfg"
        case $tool in
            Barman) run_barman_backup "$BARMAN" "$c" ;;
            barman-rs) run_barman_backup "$BARMAN_RS" "$c" ;;
            pgBackRest) run_pgbr_backup "$c" ;;
        esac
        log "round $rep/$REPS: $tool $c: ${M_WALL}s (sync ${M_SYNC}s), cpu ${M_CPU}s, host cpu ${M_HOST_CPU}s, $((RUN_SIZE / 1048576)) MiB, $RUN_OK"
        WALLS[$cfg]+="$M_WALL " SYNCS[$cfg]+="$M_SYNC " CPUS[$cfg]+="$M_CPU " HCPUS[$cfg]+="$M_HOST_CPU " SIZES[$cfg]+="$RUN_SIZE "
        [[ $RUN_OK == ok ]] || OKS[$cfg]+="round $rep: $RUN_OK; "
    done
done

describe() { # describe TOOL CONFIG -> "method<TAB>compression<TAB>jobs"
    case $1:$2 in
        pgBackRest:*) printf 'backup --type=full\t%s\t%s' "${2%:*}" "${2#*:}" ;;
        *:postgres) printf 'postgres (pg_basebackup, plain)\tnone\t1' ;;
        *:postgres:*) printf 'postgres (pg_basebackup, tar)\t%s (client)\t1' "${2#*:}" ;;
        *:rsync:*) printf 'rsync over ssh\tnone\t%s' "${2#*:}" ;;
        *:local-rsync:*) printf 'local-rsync\tnone\t%s' "${2#*:}" ;;
        *:reuse:*) printf 'local-rsync, reuse_backup=link, unchanged\tnone\t%s' "${2#*:}" ;;
        *:native:*) local n=${2#native:}
                    printf 'local-rsync (native tar)\t%s\t%s' "${n#*:}" "${n%%:*}" ;;
    esac
}

table_header $'tool\tmethod\tcompression\tjobs\tseconds (median)\tof which sync\tMiB/s\tbackup MiB\tratio\ttool CPU s\thost CPU s\tall runs (s)\tverified'
for cfg in "${CONFIGS[@]}"; do
    IFS='|' read -r tool c <<<"$cfg"
    read -ra walls <<<"${WALLS[$cfg]}"
    read -ra syncs <<<"${SYNCS[$cfg]}"
    read -ra sizes <<<"${SIZES[$cfg]}"
    read -ra cpus <<<"${CPUS[$cfg]}"
    read -ra hcpus <<<"${HCPUS[$cfg]}"
    med=$(median "${walls[@]}")
    i=$(median_index "$med" "${walls[@]}")
    IFS=$'\t' read -r method comp jobs <<<"$(describe "$tool" "$c")"
    table_row "$tool" "$method" "$comp" "$jobs" "$med" "$(median "${syncs[@]}")" \
        "$(awk -v b="$DATA_BYTES" -v s="$med" 'BEGIN {printf "%.0f", b / 1048576 / s}')" \
        "$(awk -v b="${sizes[$i]}" 'BEGIN {printf "%.0f", b / 1048576}')" \
        "$(awk -v a="$DATA_BYTES" -v b="${sizes[$i]}" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')" \
        "$(median "${cpus[@]}")" "$(median "${hcpus[@]}")" "${walls[*]}" "${OKS[$cfg]:-ok}"
done
OUT=$BENCH_RESULTS/backup-$(date +%Y%m%d-%H%M%S).md
{
    echo "## Full backup of a $((DATA_BYTES / 1048576)) MiB cluster, median of $REPS"
    echo
    machine_info
    echo "rows: $ROWS; CPU accounting: $CG_MODE"
    for n in "${NOTES[@]}"; do echo "note: $n"; done
    echo
} | tee "$OUT"
table_print "Full backup" "$OUT"
