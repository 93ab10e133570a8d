#!/usr/bin/env bash
# `make bench-compare`: the same wrk load against a 3-node etcd and a 3-node cluster of
# this project on this machine, one after the other, and one table with the ratios.
#
# The load (issue 15): wrk with THREADS threads and CONNECTIONS connections for DURATION
# seconds against the first node of each cluster; puts write fresh keys with 100-byte
# values, gets read KEYS preloaded keys. etcd serves it through its JSON gateway
# (linearizable reads, as etcdctl does); this project runs N=3, R=2, W=2 with its
# default durability (the coordinator fsyncs before it acknowledges).
#
# The last column is the CPU time all three servers used per operation (user + system,
# from /proc): on a shared 2-core machine throughput moves between runs, this much less.
#
# Everything listens on 127.0.0.1 and is stopped at the end (also on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10}
KEYS=${KEYS:-10000}
VALUE_SIZE=${VALUE_SIZE:-100}
NODE=${NODE:-.build/release/dynamo-node}
ONLY=${ONLY:-both}          # both, etcd or dynamo
TASKSET=${TASKSET:-}        # e.g. "taskset -c 0": pins the servers (not wrk)
NODE_FLAGS=${NODE_FLAGS:-}  # extra dynamo-node flags
NODES=${NODES:-3}           # dynamo nodes: 3 (N=3 R=2 W=2), or 1 for one node alone (N=R=W=1)
export THREADS KEYS VALUE_SIZE

missing=""
for p in etcd-server wrk curl; do dpkg -s $p >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
[ -x "$NODE" ] || { echo "no $NODE: run make release first" >&2; exit 1; }

root=$(mktemp -d /tmp/dynamo-bench-compare.XXXXXX)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  pids=()
}
trap 'stop_all; rm -rf "$root"' EXIT

# Polls `curl URL` until its output matches PATTERN (deadline: 60 s).
wait_for() {
  local url=$1 pattern=$2 body
  for _ in $(seq 600); do
    body=$(curl -fsS --max-time 2 "$url" 2>/dev/null || true)
    if grep -qE "$pattern" <<<"$body"; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for $url to match $pattern; last answer: $body" >&2
  tail -n 20 "$root"/*.log >&2 || true
  exit 1
}

# Runs one wrk phase; prints "ops/s p50 p99 p99.9 errors" (latencies in ms).
run_wrk() {
  local api=$1 op=$2 url=$3 seconds=$4 out
  out=$(API=$api OP=$op wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --timeout 10s \
    -s bench/load.lua "$url" 2>&1) || { echo "$out" >&2; exit 1; }
  echo "$out" >"$root/wrk-$api-$op.txt"
  local rps errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {e += $5} /Socket errors:/ {e += $4 + $6 + $8 + $10} END {print e + 0}' <<<"$out")
  echo "$rps $(awk '/^REPORT/ {print $2, $3, $4}' <<<"$out") $errors"
}

# The gets must find what they read: every preloaded key is there.
check_preload() {
  local api=$1 url=$2 found
  if [ "$api" = etcd ]; then
    # Keys from "pre-" up to "pre." (base64 "cHJlLQ==" and "cHJlLg==").
    found=$(curl -fsS -X POST "$url/v3/kv/range" -d '{"key":"cHJlLQ==","range_end":"cHJlLg==","count_only":true}' |
      sed -n 's/.*"count":"\{0,1\}\([0-9]*\).*/\1/p')
  else
    found=0
    for i in 0 $((KEYS / 2)) $((KEYS - 1)); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/kv/pre-$i")" = 200 ] && found=$((found + 1))
    done
    [ "$found" = 3 ] && found=$KEYS
  fi
  [ "$found" = "$KEYS" ] || { echo "the preload left $found of $KEYS keys" >&2; exit 1; }
}

# CPU seconds (user + system) the servers used so far: throughput on a shared machine
# varies from run to run, CPU per operation much less.
server_cpu() {
  local ticks=0 pid
  for pid in "${pids[@]}"; do
    ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.3f", t / hz}'
}

declare -A result
# Runs one phase: its wrk figures and the servers' CPU microseconds per operation.
phase() {  # api op url
  local before after figures
  before=$(server_cpu)
  figures=$(run_wrk "$1" "$2" "$3" "$DURATION")
  after=$(server_cpu)
  awk -v f="$figures" -v b="$before" -v a="$after" -v d="$DURATION" \
    'BEGIN {split(f, x, " "); printf "%s %.0f\n", f, (a - b) * 1e6 / (x[1] * d)}'
}

measure() {  # api url
  local api=$1 url=$2
  echo "  preload $KEYS keys"
  python3 bench/preload.py "$api" "$url"
  check_preload "$api" "$url"
  echo "  puts for $DURATION s"
  result[$api-put]=$(phase "$api" put "$url")
  echo "  gets for $DURATION s"
  result[$api-get]=$(phase "$api" get "$url")
}

start_etcd() {
  local cluster="e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803"
  for i in 1 2 3; do
    $TASKSET etcd --name e$i --data-dir "$root/etcd-$i" \
      --listen-client-urls http://127.0.0.1:2379$i --advertise-client-urls http://127.0.0.1:2379$i \
      --listen-peer-urls http://127.0.0.1:2380$i --initial-advertise-peer-urls http://127.0.0.1:2380$i \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token bench \
      >"$root/etcd-$i.log" 2>&1 &
    pids+=($!)
  done
  for i in 1 2 3; do wait_for http://127.0.0.1:2379$i/health '"health":"true"'; done
}

start_dynamo() {
  local quorum="--n 3 --r 2 --w 2"
  [ "$NODES" = 1 ] && quorum="--n 1 --r 1 --w 1"
  for i in $(seq "$NODES"); do
    local seeds=""
    [ $i = 1 ] || seeds="--seeds 127.0.0.1:24801"
    # shellcheck disable=SC2086
    $TASKSET "$NODE" --name n$i --host 127.0.0.1 --peer-port 2480$i --http-port 2479$i \
      --data-dir "$root/dynamo-$i" $seeds $quorum --gossip-interval-ms 500 $NODE_FLAGS \
      >"$root/dynamo-$i.log" 2>&1 &
    pids+=($!)
  done
  for i in $(seq "$NODES"); do
    wait_for http://127.0.0.1:2479$i/admin/status "(\"status\": ?\"up\".*){$NODES}"
  done
}

echo "machine: $(nproc) cores, $(uname -r); load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $VALUE_SIZE-byte values, gets over $KEYS keys"
if [ "$ONLY" != dynamo ]; then
  echo "etcd $(etcd --version 2>/dev/null | awk '/etcd Version/ {print $3}'), 3 nodes"
  start_etcd
  measure etcd http://127.0.0.1:23791
  stop_all
fi
if [ "$ONLY" != etcd ]; then
  echo "dynamo, $NODES node(s) ($( [ "$NODES" = 1 ] && echo "N=R=W=1" || echo "N=3 R=2 W=2")${NODE_FLAGS:+, $NODE_FLAGS}${TASKSET:+, $TASKSET})"
  start_dynamo
  measure dynamo http://127.0.0.1:24791
  stop_all
fi

row() {  # label key [baseline]
  local label=$1 mine=${result[$2]:-} base=${3:-}
  [ -n "$mine" ] || return 0
  read -r rps p50 p99 p999 errors cpu <<<"$mine"
  local ratio=""
  if [ -n "$base" ]; then ratio=$(awk -v a="$rps" -v b="${base%% *}" 'BEGIN {printf " (%.2fx)", a / b}'); fi
  printf "| %-16s | %10.0f%-8s | %7.2f | %7.2f | %7.2f | %6s | %9s |\n" "$label" "$rps" "$ratio" "$p50" "$p99" "$p999" \
    "$errors" "$cpu"
}
echo
echo "| store, op        | ops/s              | p50 ms  | p99 ms  | p99.9ms | errors | CPU µs/op |"
echo "|------------------|--------------------|---------|---------|---------|--------|-----------|"
row "etcd put" etcd-put
row "dynamo put" dynamo-put "${result[etcd-put]:-}"
row "etcd get" etcd-get
row "dynamo get" dynamo-get "${result[etcd-get]:-}"
