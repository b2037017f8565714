#!/usr/bin/env bash
# Cache-miss forwarding on one core, side by side: spartan (cache off),
# dnsmasq (--cache-size=0) and unbound (one thread, tiny caches), each a
# plain forwarder to the same fake upstream on loopback. Every query name
# is unique within a run, so no server can answer from a cache.
#
# Each server is pinned to CPU $SERVER_CPU; dnsperf and the fake upstream
# (bench/cmd/udpresponder: prepared reply, recvmmsg/sendmmsg, one
# goroutine) share CPU $CLIENT_CPU. Two runs per server:
#   throughput: as fast as it goes, $OUTSTANDING queries outstanding;
#   latency:    $RATE qps for $LAT_SECS s, per-query latencies from
#               dnsperf -v, reported as percentiles.
# Usage: bench/forward.sh [seconds]   (needs dnsperf, dnsmasq, unbound, taskset)
# ONLY=spartan|dnsmasq|unbound runs one server.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
OUTSTANDING=${OUTSTANDING:-200}
RATE=${RATE:-5000}
LAT_SECS=${LAT_SECS:-5}
NAMES=${NAMES:-1000000}
UPSTREAM_PORT=5380
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

go build -o "$W/spartan" ./cmd/spartan
go build -o "$W/udpresponder" ./bench/cmd/udpresponder
# udpresponder's fixed mode answers any 21-byte name: h000000.example.com.
awk -v n="$NAMES" 'BEGIN { for (i = 0; i < n; i++) printf "h%06d.example.com A\n", i }' >"$W/queries"

GOMAXPROCS=1 taskset -c "$CLIENT_CPU" "$W/udpresponder" -mode fixed -addr 127.0.0.1:$UPSTREAM_PORT & PIDS+=($!)

start_spartan() {
	cat >"$W/spartan.json" <<JSON
{"listen": ["127.0.0.1:5381"], "upstreams": ["127.0.0.1:$UPSTREAM_PORT"], "metrics": "",
 "cache": {"disabled": true}, "log": {"level": "warn"}}
JSON
	GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$W/spartan" -config "$W/spartan.json" & PIDS+=($!)
	PID=$! PORT=5381
}

start_dnsmasq() {
	# --dns-forward-max: the default 150 concurrent forwards would make
	# dnsmasq refuse queries under this load (a known outage cause).
	taskset -c "$SERVER_CPU" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
		--server=127.0.0.1#$UPSTREAM_PORT --listen-address=127.0.0.1 --bind-interfaces -p 5382 \
		--cache-size=0 --dns-forward-max=10000 --pid-file= --log-facility=- & PIDS+=($!)
	PID=$! PORT=5382
}

start_unbound() {
	cat >"$W/unbound.conf" <<CONF
server:
  interface: 127.0.0.1@5383
  port: 5383
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
  msg-cache-size: 1k
  rrset-cache-size: 1k
  key-cache-size: 1k
  neg-cache-size: 1k
  num-queries-per-thread: 4096
  outgoing-range: 8192
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$UPSTREAM_PORT
CONF
	taskset -c "$SERVER_CPU" unbound -c "$W/unbound.conf" & PIDS+=($!)
	PID=$! PORT=5383
}

cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
OFFSET=0

measure() { # name
	local out t0 t1 qps lat
	# Each run starts at a fresh offset in the name list, so names are
	# never repeated across runs either.
	tail -n +$((OFFSET + 1)) "$W/queries" >"$W/q.run"
	t0=$(cputicks "$PID")
	out=$(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" -d "$W/q.run" -n 1 -l "$SECS" -c 8 -q "$OUTSTANDING" 2>&1)
	t1=$(cputicks "$PID")
	qps=$(awk '/Queries per second/ {print $4}' <<<"$out")
	OFFSET=$((OFFSET + $(awk '/Queries completed/ {print $3}' <<<"$out") + 1000))
	tail -n +$((OFFSET + 1)) "$W/queries" >"$W/q.run"
	lat=$(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" -d "$W/q.run" -n 1 -l "$LAT_SECS" -Q "$RATE" -c 4 -v 2>/dev/null |
		awk '$1 == ">" { print $NF * 1e6 }' | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "no replies"; exit }
			printf "p50 %4.0f us  p90 %4.0f us  p99 %5.0f us  max %6.0f us", v[int(NR*.5)+1], v[int(NR*.9)+1], v[int(NR*.99)+1], v[NR] }')
	OFFSET=$((OFFSET + RATE * LAT_SECS + 1000))
	awk -v n="$1" -v q="$qps" -v d=$((t1 - t0)) -v hz="$HZ" -v s="$SECS" -v lat="$lat" \
		-v lost="$(awk '/Queries lost/ {print $3}' <<<"$out")" \
		'BEGIN { printf "%-8s %8.0f qps  lost %-10s  server CPU %3.0f%%  %5.1f us CPU/query | at %s qps: %s\n",
			n, q, lost, 100*d/hz/s, 1e6*d/hz/(q*s), ENVIRON["RATE"], lat }'
}

export RATE
for s in spartan dnsmasq unbound; do
	[ -z "${ONLY:-}" ] || [ "$ONLY" = "$s" ] || continue
	"start_$s"
	sleep 1
	measure "$s"
	kill "$PID"; wait "$PID" 2>/dev/null || true
done
