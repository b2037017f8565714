#!/usr/bin/env bash
# Cache-hit throughput on one core, side by side: spartan, unbound (one
# thread) and a trivial UDP responder answering from a prepared packet (the
# loopback limit). Each server is pinned to CPU $SERVER_CPU, dnsperf to
# $CLIENT_CPU; caches are warmed first, then every query is a hit.
# Usage: bench/cache_hit.sh [seconds]   (needs dnsperf, unbound, taskset)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
NAMES=${NAMES:-1000}
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

[ -n "${SKIP_SPARTAN:-}" ] || go build -o "$W/spartan" ./cmd/spartan
go build -o "$W/udpresponder" ./bench/cmd/udpresponder

UPSTREAM=127.0.0.1:5390
for i in $(seq 0 $((NAMES - 1))); do printf 'h%06d.example.com A\n' "$i"; done >"$W/queries"

"$W/udpresponder" -mode auth -addr $UPSTREAM & PIDS+=($!)

cat >"$W/spartan.json" <<JSON
{"listen": ["127.0.0.1:5391"], "upstreams": ["$UPSTREAM"], "metrics": "",
 "log": {"level": "warn"}}
JSON
[ -n "${SKIP_SPARTAN:-}" ] || { GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$W/spartan" -config "$W/spartan.json" & PIDS+=($!); SPARTAN_PID=$!; }

cat >"$W/unbound.conf" <<CONF
server:
  interface: 127.0.0.1@5392
  num-threads: 1
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$W"
  pidfile: "$W/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  so-reuseport: no
  msg-cache-size: 64m
  rrset-cache-size: 64m
forward-zone:
  name: "."
  forward-addr: ${UPSTREAM/:/@}
CONF
taskset -c "$SERVER_CPU" unbound -c "$W/unbound.conf" & PIDS+=($!)
UNBOUND_PID=$!

GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$W/udpresponder" -mode fixed -batch "${BATCH:-32}" -addr 127.0.0.1:5393 & PIDS+=($!)
TRIVIAL_PID=$!
sleep 1

cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

run() { # name port pid
	# Warm: every name once, then measure. The server's CPU time during the
	# run gives its cost per query even when dnsperf is the bottleneck.
	taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$2" -d "$W/queries" -n 1 -q 10 >/dev/null
	local out t0 t1 qps
	t0=$(cputicks "$3")
	out=$(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$2" -d "$W/queries" -l "$SECS" -c 8 -q 200 2>&1)
	t1=$(cputicks "$3")
	qps=$(awk '/Queries per second/ {print $4}' <<<"$out")
	awk -v n="$1" -v q="$qps" -v d=$((t1 - t0)) -v hz="$HZ" -v s="$SECS" \
		-v lat="$(awk '/Average Latency/ {print $4}' <<<"$out")" \
		-v lost="$(awk '/Queries lost/ {print $3}' <<<"$out")" \
		'BEGIN { printf "%-8s %9.0f qps  server CPU %3.0f%%  %5.2f us CPU/query  avg latency %.0f us  lost %s\n",
			n, q, 100*d/hz/s, 1e6*d/hz/(q*s), lat*1e6, lost }'
}
[ -n "${SKIP_SPARTAN:-}" ] || run spartan 5391 "$SPARTAN_PID"
run unbound 5392 "$UNBOUND_PID"
run trivial 5393 "$TRIVIAL_PID"
