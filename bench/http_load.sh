#!/usr/bin/env bash
# HTTP load benchmark of `mtrec serve` on loopback with wrk (Debian package 'wrk'):
#  1. trains the ML-100K joint model (two checkpoints, seeds 1 and 2, for the hot swap) unless
#     CHECKPOINT_A / CHECKPOINT_B name existing ones;
#  2. starts `mtrec serve` and warms it up;
#  3. runs wrk with bench/http_load.lua (POST /recommend over every user in turn): requests/s,
#     latency percentiles, non-2xx answers and socket errors;
#  4. runs it again while POST /admin/reload swaps A and B in a loop, and counts the reloads
#     and the failed requests during the hot swaps.
#   bench/http_load.sh                           # everything (training: a few minutes on 2 cores)
#   CHECKPOINT_A=a.ckpt CHECKPOINT_B=b.ckpt SERVER_THREADS=16 CONNECTIONS=16 bench/http_load.sh
# Knobs (environment): DURATION (20s), HOT_SWAP_DURATION (60s), CONNECTIONS (16), WRK_THREADS (1), SERVER_THREADS (CONNECTIONS + 4),
# TORCH_THREADS (1), PORT (18080), EPOCHS (1), K (10), RELOAD_EVERY (0.5 s), WORK (temp folder).
# The numbers of bench/RESULTS_http.md came from this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${MTREC_BIN:-$root/build/examples/mtrec}
data=${MTREC_DATA_DIR:-$root/../shared/data}/ml-100k
work=${WORK:-$(mktemp -d)}
duration=${DURATION:-20s}
# A reload competes with every busy worker for the cores, so under full load it takes many times
# its idle load time: the hot-swap run is longer, to see several swaps.
hot_swap_duration=${HOT_SWAP_DURATION:-60s}
connections=${CONNECTIONS:-16}
wrk_threads=${WRK_THREADS:-1}
# httplib gives each keep-alive connection a worker of its own: more workers than wrk connections,
# so that the reload and health calls never wait behind them.
server_threads=${SERVER_THREADS:-$((connections + 4))}
torch_threads=${TORCH_THREADS:-1}
port=${PORT:-18080}
epochs=${EPOCHS:-1}
k=${K:-10}
reload_every=${RELOAD_EVERY:-0.5}
url=http://127.0.0.1:$port

command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not found (apt-get install curl)" >&2; exit 1; }
[ -x "$bin" ] || { echo "no mtrec binary at $bin (build first, or set MTREC_BIN)" >&2; exit 1; }
mkdir -p "$work"

train() {  # train SEED OUT
  [ -f "$data/u.data" ] || { echo "MovieLens 100K not found in $data (mtrec data download ml-100k)" >&2; exit 1; }
  local t0=$(date +%s)
  "$bin" train --dataset ml-100k --data-dir "$data" --epochs "$epochs" --seed "$1" --log-level warn --out "$2" \
    > "$2.log" 2>&1
  echo "== trained $2 (seed $1, $epochs epoch(s)) in $(( $(date +%s) - t0 )) s"
}
a=${CHECKPOINT_A:-$work/ml100k-a.ckpt}
b=${CHECKPOINT_B:-$work/ml100k-b.ckpt}
[ -f "$a" ] || train 1 "$a"
[ -f "$b" ] || train 2 "$b"

"$bin" serve --checkpoint "$a" --port "$port" --threads "$server_threads" --torch-threads "$torch_threads" \
  > "$work/serve.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "$url/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
head -n 1 "$work/serve.log"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== wrk -t$wrk_threads -c$connections -d$duration, server threads $server_threads, torch threads $torch_threads, k $k"

run_wrk() {  # run_wrk LABEL DURATION
  MTREC_BENCH_K=$k wrk -t"$wrk_threads" -c"$connections" -d"$2" --latency -s "$here/http_load.lua" "$url" \
    > "$work/wrk-$1.txt" 2>&1
  local line
  line=$(grep '^JSON ' "$work/wrk-$1.txt" | sed 's/^JSON //')
  echo "$1: $line"
}

run_wrk warmup 3s >/dev/null
run_wrk steady "$duration"

# The same load while the model is swapped (A -> B -> A ...) in a loop.
: > "$work/reloads.txt"
rm -f "$work/stop-reloading"
(
  n=0
  while [ ! -e "$work/stop-reloading" ]; do
    n=$((n + 1))
    target=$([ $((n % 2)) -eq 1 ] && echo "$b" || echo "$a")
    code=$(curl -s -o "$work/reload-last.json" -w '%{http_code}' -X POST "$url/admin/reload" \
             -H 'Content-Type: application/json' -d "{\"checkpoint\": \"$target\"}" || echo 000)
    echo "$code" >> "$work/reloads.txt"
    sleep "$reload_every"
  done
) &
reloader=$!
run_wrk hot_swap "$hot_swap_duration"
touch "$work/stop-reloading"  # the reload in progress finishes and is counted
wait $reloader 2>/dev/null || true
ok=$(grep -c '^200$' "$work/reloads.txt" || true)
bad=$(grep -vc '^200$' "$work/reloads.txt" || true)
echo "reloads during hot_swap: $ok succeeded, $bad failed"
curl -s "$url/metrics" | grep -E '^mtrec_(http_requests_total|model_reloads_total|model_reload_failures_total|model_load_seconds)' \
  > "$work/metrics.txt" || true
echo "== server metrics after the runs:"
cat "$work/metrics.txt"
echo "== outputs in $work"
