#!/usr/bin/env bash
# cron-scale.sh — many servers at once: SERVERS servers with SEGS 16 MiB segments
# each in incoming/, drained by barman-rs `cron` (one process, one shared pipeline)
# and by Barman 3.19's equivalent (`barman cron` starts one background
# `archive-wal` per server; here they are started at once and waited for, so the
# time and each process's peak RSS can be taken).
#
# Usage: BARMAN_RS=target/release/barman bash benches/cron-scale.sh
# Knobs: SERVERS (50), SEGS (20), COMPRESSIONS ("none gzip zstd"), TOOLS ("barman-rs barman"),
#        BARMAN_PY (/opt/barman-rs-peers/barman/bin/barman), WORK (/var/tmp),
#        SRC (a directory of >= SEGS real segments named 000000010000000000000001...;
#             synthetic ones are made when absent).
set -euo pipefail
SERVERS=${SERVERS:-50}
SEGS=${SEGS:-20}
COMPRESSIONS=${COMPRESSIONS:-"none gzip zstd"}
TOOLS=${TOOLS:-"barman-rs barman"}
BARMAN_PY=${BARMAN_PY:-/opt/barman-rs-peers/barman/bin/barman}
BARMAN_RS=$(realpath "${BARMAN_RS:?set BARMAN_RS to the barman-rs binary}")
WORK=$(mktemp -d "${WORK:-/var/tmp}/barman-rs-cron-scale.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SRC=${SRC:-$WORK/src}

if [[ ! -d $SRC ]]; then
    mkdir -p "$SRC"
    python3 - "$SRC" "$SEGS" <<'PY'
import os, struct, sys, random
out, n = sys.argv[1], int(sys.argv[2]); SEG = 16 << 20
random.seed(1)
tup = b"INSERT pgbench_accounts aid=000123 bid=1 abalance=0 filler=                    "
body = bytearray()
for i in range(SEG // 64):
    body += os.urandom(64) if random.random() < 0.3 else bytes([i % 251]) + (tup * 3)[i % len(tup):][:63]
for i in range(1, n + 1):
    body[0:40] = struct.pack('<HHIQI4xQII', 0xD110, 2, 1, i * SEG, 0, 7311862123650354339, SEG, 8192)
    open(os.path.join(out, "00000001%08X%08X" % (i // 256, i % 256)), "wb").write(body)
PY
fi
mapfile -t FILES < <(ls "$SRC" | sort | head -n "$SEGS")

setup() { # $1 = compression
    rm -rf "$WORK/home" && mkdir -p "$WORK/home"
    { printf '[barman]\nbarman_home = %s/home\nbarman_user = %s\nlog_file = %s/home/barman.log\n' "$WORK" "$(id -un)" "$WORK"
      [[ $1 == none ]] || printf 'compression = %s\n' "$1"
      for ((s = 1; s <= SERVERS; s++)); do
          printf '\n[s%02d]\ndescription = s%02d\nconninfo = host=/nonexistent\nbackup_method = postgres\narchiver = on\n' "$s" "$s"
      done; } > "$WORK/barman.conf"
    for ((s = 1; s <= SERVERS; s++)); do
        d=$WORK/home/s$(printf %02d "$s")/incoming
        mkdir -p "$d"
        for f in "${FILES[@]}"; do ln "$SRC/$f" "$d/$f"; done
    done
    sync
}
drained() { [[ -z $(find "$WORK/home" -path '*/incoming/*' -type f -print -quit) ]]; }

printf '| tool | compression | servers x segments | seconds | summed peak RSS MiB | processes |\n|---|---|---|---|---|---|\n'
for c in $COMPRESSIONS; do
  if [[ " $TOOLS " == *" barman-rs "* ]]; then
    setup "$c"
    t0=$(date +%s.%N)
    /usr/bin/time -f %M -o "$WORK/rs.rss" "$BARMAN_RS" -c "$WORK/barman.conf" cron >/dev/null
    t1=$(date +%s.%N)
    drained || { echo "barman-rs left files in incoming/" >&2; exit 1; }
    printf '| barman-rs cron | %s | %dx%d | %.2f | %.0f | 1 |\n' "$c" "$SERVERS" "$SEGS" "$(echo "$t1 - $t0" | bc)" "$(echo "$(cat "$WORK/rs.rss") / 1024" | bc -l)"
  fi
  if [[ " $TOOLS " == *" barman "* ]]; then
    setup "$c"
    t0=$(date +%s.%N)
    pids=()
    for ((s = 1; s <= SERVERS; s++)); do
        n=s$(printf %02d "$s")
        /usr/bin/time -f %M -o "$WORK/py-$n.rss" "$BARMAN_PY" -c "$WORK/barman.conf" -q archive-wal "$n" >/dev/null 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"
    t1=$(date +%s.%N)
    drained || { echo "Barman left files in incoming/" >&2; exit 1; }
    sum=$(cat "$WORK"/py-*.rss | paste -sd+ | bc)
    printf '| Barman 3.19 (cron: one archive-wal per server, at once) | %s | %dx%d | %.2f | %.0f | %d |\n' "$c" "$SERVERS" "$SEGS" "$(echo "$t1 - $t0" | bc)" "$(echo "$sum / 1024" | bc -l)" "$SERVERS"
  fi
done
