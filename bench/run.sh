#!/usr/bin/env bash
# The benchmark harness: spartan side by side with unbound (one thread),
# dnsmasq and CoreDNS as forwarders to the same fake upstreams, plus a trivial one-core
# UDP responder (the loopback limit), all on loopback. Prints one table:
#   S1 cache-hit throughput, and latency at half that rate
#   S2 cache-miss forwarding throughput (every name new)
#   S3 tail latency at a fixed rate with a blackholed, a 40 ms and a 2 ms upstream
#   S4 all upstreams dead after warm-up, entries expired: fraction answered (stale)
#   S5 master-mode authoritative throughput (spartan, and base when set)
#   S6 record generation time and memory for 100,000 tasks (go benchmark)
#   S7 cache misses forwarded to a local unbound over DNS over TLS, against
#      the same over UDP (spartan, and unbound with forward-tls-upstream)
# and, run alone with `bench/run.sh sweep` (or SCENARIOS="SWEEP CORES"):
#   SWEEP cache hits at fixed rates (1k, 5k, 10k, 30k qps) and at the maximum
#         for every server, the two trivial Go responders included, and a
#         cache miss at 5k qps, with the server's CPU per query on every row
#   CORES cache-hit maximum with one and with two cores (GOMAXPROCS and
#         listener sockets), two load generators
# The server under test runs on CPU $SERVER_CPU (spartan with GOMAXPROCS=1,
# unbound with one thread); the load client (bench/cmd/loadgen, or dnsperf)
# and the fake upstreams (bench/cmd/udpresponder) run on CPU $CLIENT_CPU.
#
# Usage: bench/run.sh            (about 4 minutes)
#        QUICK=1 bench/run.sh    (under a minute, shorter and noisier runs)
#        bench/run.sh sweep      (the rate sweep and the core comparison, about 5 minutes)
# Environment: SERVERS="spartan unbound dnsmasq coredns trivial goconn gothread", SCENARIOS="S1 ... S7",
# SECS (seconds per throughput run), S3_RATE, S3_SECS, OUTSTANDING,
# SERVER_CPU, CLIENT_CPU, BASE_PORT (uses BASE_PORT..BASE_PORT+30),
# BASE_REF (a git revision: adds the server "base", spartan built from that
# revision, to every scenario, for before/after figures from one run).
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-} in
"") ;;
sweep) SCENARIOS=${SCENARIOS:-"SWEEP CORES"} ;;
*) printf 'usage: %s [sweep]\n' "$0" >&2; exit 2 ;;
esac

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	SECS=${SECS:-1} S3_SECS=${S3_SECS:-1} S3_WARM=0.5s S4_NAMES=${S4_NAMES:-200} S6_TIMES=${S6_TIMES:-1} DNSPERF=${DNSPERF:-0}
else
	SECS=${SECS:-5} S3_SECS=${S3_SECS:-10} S3_WARM=1s S4_NAMES=${S4_NAMES:-1000} S6_TIMES=${S6_TIMES:-3} DNSPERF=${DNSPERF:-1}
fi
BASE_REF=${BASE_REF:-}
if [ -n "$BASE_REF" ]; then
	SERVERS=${SERVERS:-"spartan base unbound dnsmasq coredns trivial goconn gothread"}
else
	SERVERS=${SERVERS:-"spartan unbound dnsmasq coredns trivial goconn gothread"}
fi
# CoreDNS has no Debian package: without one on PATH (or COREDNS naming a
# binary) it is built once from its Go module into the user's cache.
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
SCENARIOS=${SCENARIOS:-"S1 S2 S3 S4 S5 S6 S7"}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
OUTSTANDING=${OUTSTANDING:-200}
S1_NAMES=${S1_NAMES:-1000}
S3_RATE=${S3_RATE:-2000}
S5_TASKS=${S5_TASKS:-10000}
S5_STREAM=${S5_STREAM:-0}
BASE_PORT=${BASE_PORT:-5400}
SWEEP_RATES=${SWEEP_RATES:-"1000 5000 10000 30000"}
# CORES: the server's CPUs with one core and with two, and how many load
# generators run (unpinned, each with OUTSTANDING/LOADGENS in flight).
CORES1_CPUS=${CORES1_CPUS:-$SERVER_CPU}
if [ "$(nproc)" -ge 4 ]; then CORES2_CPUS=${CORES2_CPUS:-1-2}; else CORES2_CPUS=${CORES2_CPUS:-0-1}; fi
LOADGENS=${LOADGENS:-2}

U_FAST=127.0.0.1:$BASE_PORT               # answers at once, TTL 1 day
U_BH=127.0.0.1:$((BASE_PORT + 1))         # blackhole
U_40=127.0.0.1:$((BASE_PORT + 2))         # 40 ms
U_2=127.0.0.1:$((BASE_PORT + 3))          # 2 ms
U_STALE=127.0.0.1:$((BASE_PORT + 4))      # TTL 1 s, blackholed after warm-up
U_DOT=127.0.0.1:$((BASE_PORT + 5))        # S7: unbound's TLS port (local data)
U_DOTUDP=127.0.0.1:$((BASE_PORT + 6))     # S7: the same unbound over UDP
DOT_NAME=dns.bench                        # S7: its certificate's name
SPORT=$((BASE_PORT + 10))                 # the server under test
MESOS=127.0.0.1:$((BASE_PORT + 20))       # fake Mesos master (HTTP)
MASTER_DNS=127.0.0.1:$((BASE_PORT + 21))  # master-mode authoritative listener
MASTER_HTTP=127.0.0.1:$((BASE_PORT + 22)) # master-mode HTTP API

have() { [[ " $SCENARIOS " == *" $1 "* ]]; }
say() { printf '%s\n' "$*" >&2; }

# --- tools ------------------------------------------------------------------
command -v go >/dev/null || { say "go is required (https://go.dev/dl/)"; exit 1; }
declare -A PKG=([dnsperf]=dnsperf [unbound]=unbound [dnsmasq]=dnsmasq-base [taskset]=util-linux [openssl]=openssl)
MISSING=()
for t in dnsperf unbound dnsmasq taskset openssl; do
	command -v "$t" >/dev/null || MISSING+=("${PKG[$t]}")
done
if [ ${#MISSING[@]} -gt 0 ]; then
	say "missing: ${MISSING[*]} -- for the full comparison: apt-get install ${MISSING[*]}"
fi
PIN=1
command -v taskset >/dev/null || { PIN=0; say "no taskset: processes are not pinned, numbers are not comparable"; }
command -v dnsperf >/dev/null || DNSPERF=0
RUN_SERVERS=()
for s in $SERVERS; do
	case $s in
	unbound | dnsmasq) command -v "$s" >/dev/null || { say "skipping $s: not installed"; continue; } ;;
	base) [ -n "$BASE_REF" ] || { say "skipping base: set BASE_REF to a git revision"; continue; } ;;
	coredns)
		COREDNS=${COREDNS:-$(command -v coredns || true)}
		if [ -z "$COREDNS" ]; then
			gobin=${XDG_CACHE_HOME:-$HOME/.cache}/spartan-bench/coredns-$COREDNS_VERSION
			if [ ! -x "$gobin/coredns" ]; then
				say "building CoreDNS $COREDNS_VERSION into $gobin (once)"
				GOBIN=$gobin go install "github.com/coredns/coredns@$COREDNS_VERSION" >&2 || { say "skipping coredns: build failed"; continue; }
			fi
			COREDNS=$gobin/coredns
		fi
		;;
	esac
	RUN_SERVERS+=("$s")
done
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average: $LOAD; $(nproc) CPUs"

# --- processes --------------------------------------------------------------
W=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -d "$W/base-src" ]; then git worktree remove --force "$W/base-src" 2>/dev/null || true; fi
	rm -rf "$W"
}
trap cleanup EXIT

# on CPU CMD...: run pinned to CPU.
on() {
	local cpu=$1
	shift
	if [ "$PIN" = 1 ]; then taskset -c "$cpu" "$@"; else "$@"; fi
}
# bg CPU CMD...: start in the background pinned to CPU; sets BG to its PID
# (taskset execs the command: the PID is the command's).
bg() {
	if [ "$PIN" = 1 ]; then
		taskset -c "$@" &
	else
		"${@:2}" &
	fi
	BG=$!
	PIDS+=("$BG")
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

say "building..."
go build -o "$W/spartan" ./cmd/spartan
if [[ " ${RUN_SERVERS[*]} " == *" base "* ]]; then
	git worktree add --quiet --detach "$W/base-src" "$BASE_REF"
	(cd "$W/base-src" && go build -o "$W/base" ./cmd/spartan)
	say "base: spartan at $(git rev-parse --short "$BASE_REF") ($(git log -1 --format=%s "$BASE_REF" | cut -c1-60))"
fi
for c in loadgen udpresponder fakemesos; do go build -o "$W/$c" "./bench/cmd/$c"; done
export GOMAXPROCS=1 # every Go process here: spartan, loadgen, fake upstreams

upstream() { # ADDR FLAGS...: start a fake upstream on the client CPU; sets BG
	local addr=$1
	shift
	bg "$CLIENT_CPU" "$W/udpresponder" -mode upstream -addr "$addr" "$@"
}

# loadgen ARGS...: one load run on the client CPU; prints its result line.
loadgen() { on "$CLIENT_CPU" "$W/loadgen" -server "127.0.0.1:$SPORT" "$@"; }
# kv KEY LINE: the value of KEY in a loadgen result line.
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# Each name set is a fresh letter of wire.SeqName: runs never share names.
LETTER=0
next_names() { NAMES_START=$((LETTER * 1000000)); LETTER=$((LETTER + 1)); }

wait_ready() { # PORT [QUERIES]: until the server answers a query (5 s)
	local args=(-names 1 -start 25999999)
	if [ -n "${2:-}" ]; then
		head -1 "$2" >"$W/ready.q"
		args=(-queries "$W/ready.q")
	fi
	for _ in $(seq 50); do
		if [ "$(kv ok "$(on "$CLIENT_CPU" "$W/loadgen" -server "127.0.0.1:$1" -once "${args[@]}" -timeout 100ms -sockets 1)")" != 0 ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# switches PID: the voluntary and involuntary context switches of all its threads.
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches/ {n += $2} END {print n + 0}'; }
HZ=$(getconf CLK_TCK)

# measure PID ARGS...: a loadgen run, its result line extended with the
# server's CPU time per answered query (its cost even when the client is
# the bottleneck) and its threads' context switches per answered query
# (the wake-ups a query costs at rates below the maximum).
measure() {
	local pid=$1 t0 t1 c0 c1 out
	shift
	t0=$(cputicks "$pid")
	c0=$(switches "$pid")
	out=$(loadgen "$@")
	t1=$(cputicks "$pid")
	c1=$(switches "$pid")
	awk -v o="$out" -v d=$((t1 - t0)) -v c=$((c1 - c0)) -v hz="$HZ" 'BEGIN {
		n = o; sub(/.* answered=/, "", n); sub(/ .*/, "", n)
		printf "%s cpu_us_per_q=%.2f cs_per_q=%.2f\n", o, (n > 0 ? 1e6 * d / hz / n : 0), (n > 0 ? c / n : 0) }'
}

# dnsperf_qps FILE: dnsperf's throughput against the server for SECS.
dnsperf_qps() {
	on "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$SPORT" -d "$1" -l "$SECS" -c 8 -q "$OUTSTANDING" 2>&1 |
		awk '/Queries per second/ {printf "%.0f", $4}'
}
# names_file LETTER_START COUNT: "name A" lines for dnsperf.
names_file() {
	awk -v s="$1" -v n="$2" 'BEGIN { split("abcdefghijklmnopqrstuvwxyz", L, "")
		for (i = s; i < s + n; i++) printf "%s%06d.example.com A\n", L[int(i / 1000000) % 26 + 1], i % 1000000 }' >"$W/names"
	echo "$W/names"
}

# --- servers ----------------------------------------------------------------
# start_NAME UPSTREAM...: start the server on $SPORT; sets SPID.
start_spartan() { spartan_bin "$W/spartan" "$@"; }
start_base() { spartan_bin "$W/base" "$@"; }

# spartan_bin BINARY UPSTREAM...: start_spartan for a given build.
spartan_bin() {
	local bin=$1 ups
	shift
	ups=$(printf '"%s",' "$@")
	cat >"$W/spartan.json" <<-JSON
		{"listen": ["127.0.0.1:$SPORT"], "upstreams": [${ups%,}], "metrics": "",
		 "log": {"level": "warn"}${SPARTAN_EXTRA:-}}
	JSON
	bg "$SERVER_CPU" "$bin" -config "$W/spartan.json"
	SPID=$BG
}

start_unbound() {
	{
		cat <<-CONF
			server:
			  interface: 127.0.0.1@$SPORT
			  port: $SPORT
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
			  num-queries-per-thread: 4096
			  outgoing-range: 8192
			  serve-expired: yes
			  serve-expired-ttl: 86400
			  serve-expired-client-timeout: 1800
			${UNBOUND_SERVER_EXTRA:-}
			forward-zone:
			  name: "."
			${UNBOUND_FORWARD_EXTRA:-}
		CONF
		# ADDR:PORT[#NAME] becomes ADDR@PORT[#NAME].
		for u in "$@"; do echo "  forward-addr: ${u/:/@}"; done
	} >"$W/unbound.conf"
	bg "$SERVER_CPU" unbound -c "$W/unbound.conf" 2>>"$W/unbound.log"
	SPID=$BG
}

start_dnsmasq() {
	# --dns-forward-max: the default 150 concurrent forwards would make
	# dnsmasq refuse queries under this load; --cache-size: room for the
	# S1 names (the default is 150 entries).
	local servers=()
	for u in "$@"; do servers+=("--server=${u/:/#}"); done
	bg "$SERVER_CPU" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts "${servers[@]}" \
		--listen-address=127.0.0.1 --bind-interfaces -p "$SPORT" \
		--cache-size=10000 --dns-forward-max=10000 --pid-file= --log-facility=- 2>>"$W/dnsmasq.log"
	SPID=$BG
}

start_coredns() {
	# The closest CoreDNS has to the others: a cache with serve-stale
	# (verified with the upstream first) in front of forward.
	cat >"$W/Corefile" <<-CONF
		.:$SPORT {
		  bind 127.0.0.1
		  cache 86400 {
		    serve_stale 86400s verify
		  }
		  forward . $*
		}
	CONF
	bg "$SERVER_CPU" "$COREDNS" -conf "$W/Corefile" -quiet >>"$W/coredns.log" 2>&1
	SPID=$BG
}

start_trivial() {
	bg "$SERVER_CPU" "$W/udpresponder" -mode fixed -addr "127.0.0.1:$SPORT"
	SPID=$BG
}

# The floors of a Go server at low rates: net.PacketConn reads and writes
# (the network poller), and blocking recvfrom/sendto on a locked OS thread.
start_goconn() {
	bg "$SERVER_CPU" "$W/udpresponder" -mode fixed -io conn -addr "127.0.0.1:$SPORT"
	SPID=$BG
}
start_gothread() {
	bg "$SERVER_CPU" "$W/udpresponder" -mode fixed -io thread -addr "127.0.0.1:$SPORT"
	SPID=$BG
}

# responder NAME: whether NAME is one of the trivial responders (no cache,
# no forwarding: hit rows only).
responder() { case $1 in trivial | goconn | gothread) return 0 ;; esac; return 1; }

# server NAME UPSTREAM...: start it and wait until it answers.
server() {
	"start_$1" "${@:2}"
	if ! wait_ready "$SPORT" || ! kill -0 "$SPID" 2>/dev/null; then
		say "$1 did not come up"
		stop "$SPID"
		return 1
	fi
}

# --- table ------------------------------------------------------------------
ROWS=()
row() { # SCENARIO SERVER QPS LOSS P50 P99 P999 CPU NOTE
	ROWS+=("$(printf '%-24s %-8s %9s %7s %8s %8s %9s %7s  %s' "$@")")
	say "${ROWS[-1]}"
}
pct() { awk -v v="$1" 'BEGIN { printf "%.2f%%", v }'; }
# lat MICROSECONDS: "850us" or "12.3ms".
lat() { awk -v v="$1" 'BEGIN { if (v == "" || v == 0) { printf "-"; exit } if (v < 10000) printf "%.0fus", v; else printf "%.1fms", v / 1000 }'; }
# lrow SCENARIO SERVER LINE NOTE: a row from a measure line.
lrow() {
	row "$1" "$2" "$(kv qps "$3")" "$(pct "$(kv loss_pct "$3")")" "$(lat "$(kv p50_us "$3")")" \
		"$(lat "$(kv p99_us "$3")")" "$(lat "$(kv p999_us "$3")")" "$(kv cpu_us_per_q "$3")" "${4:-}"
}

# max_and_half SCENARIO SERVER LOADGEN-ARGS...: throughput with
# $OUTSTANDING in flight (and dnsperf's, with $DNSPERF_FILE), then latency
# at half the higher of the two.
max_and_half() {
	local sc=$1 name=$2 out half dp=""
	shift 2
	out=$(measure "$SPID" -duration "${SECS}s" -outstanding "$OUTSTANDING" "$@")
	local best
	best=$(kv qps "$out")
	if [ "$DNSPERF" = 1 ] && [ -n "${DNSPERF_FILE:-}" ]; then
		dp=$(dnsperf_qps "$DNSPERF_FILE")
		[ "${dp:-0}" -le "$best" ] || best=$dp
		dp="dnsperf ${dp} qps"
	fi
	lrow "$sc max" "$name" "$out" "$dp"
	half=$(measure "$SPID" -duration "${SECS}s" -rate $((best / 2)) "$@")
	lrow "$sc @$((best / 2))/s" "$name" "$half"
}

# --- scenarios --------------------------------------------------------------
s1() {
	next_names
	local start=$NAMES_START
	DNSPERF_FILE=$(names_file "$start" "$S1_NAMES")
	upstream "$U_FAST"
	local up=$BG
	for s in "${RUN_SERVERS[@]}"; do
		server "$s" "$U_FAST" || continue
		loadgen -once -names "$S1_NAMES" -start "$start" -outstanding 50 >/dev/null
		max_and_half "S1 hit" "$s" -names "$S1_NAMES" -start "$start"
		stop "$SPID"
	done
	stop "$up"
	DNSPERF_FILE=""
}

s2() {
	upstream "$U_FAST"
	local up=$BG out dp=""
	for s in "${RUN_SERVERS[@]}"; do
		! responder "$s" || continue
		server "$s" "$U_FAST" || continue
		next_names
		out=$(measure "$SPID" -duration "${SECS}s" -outstanding "$OUTSTANDING" -names 0 -start "$NAMES_START")
		if [ "$DNSPERF" = 1 ]; then
			next_names
			dp="dnsperf $(dnsperf_qps "$(names_file "$NAMES_START" 1000000)") qps"
		fi
		lrow "S2 miss max" "$s" "$out" "$dp"
		stop "$SPID"
	done
	stop "$up"
}

s3() {
	local pids=() out
	upstream "$U_BH" -loss 1
	pids+=("$BG")
	upstream "$U_40" -latency 40ms
	pids+=("$BG")
	upstream "$U_2" -latency 2ms
	pids+=("$BG")
	sleep 0.2
	next_names
	out=$(on "$CLIENT_CPU" "$W/loadgen" -server "$U_2" -rate "$S3_RATE" -duration "${S3_SECS}s" -names 0 -start "$NAMES_START")
	lrow "S3 @$S3_RATE/s" "2ms-only" "$out" "the 2 ms upstream queried directly"
	for s in "${RUN_SERVERS[@]}"; do
		! responder "$s" || continue
		server "$s" "$U_BH" "$U_40" "$U_2" || continue
		next_names
		# A short run at the same rate first: what the server learns about
		# its upstreams then is part of its design, not of this number.
		loadgen -rate "$S3_RATE" -duration "$S3_WARM" -names 0 -start "$NAMES_START" >/dev/null
		out=$(measure "$SPID" -rate "$S3_RATE" -duration "${S3_SECS}s" -names 0 -start $((NAMES_START + 500000)))
		lrow "S3 bh+40+2ms @$S3_RATE/s" "$s" "$out" "servfail $(kv servfail "$out"), lost $(kv lost "$out")"
		stop "$SPID"
	done
	for p in "${pids[@]}"; do stop "$p"; done
}

s4() {
	local up out
	for s in "${RUN_SERVERS[@]}"; do
		! responder "$s" || continue
		upstream "$U_STALE" -ttl 1
		up=$BG
		server "$s" "$U_STALE" || { stop "$up"; continue; }
		next_names
		loadgen -once -names "$S4_NAMES" -start "$NAMES_START" -outstanding 100 >/dev/null
		kill -USR1 "$up" # blackhole from now on
		sleep 2          # every entry expires
		# Spread over one second: a burst of them all would only measure
		# the server's socket buffer.
		out=$(measure "$SPID" -once -names "$S4_NAMES" -start "$NAMES_START" -rate "$S4_NAMES" -timeout 3s)
		row "S4 dead upstreams" "$s" "-" "$(pct "$(kv loss_pct "$out")")" "$(lat "$(kv p50_us "$out")")" \
			"$(lat "$(kv p99_us "$out")")" "$(lat "$(kv p999_us "$out")")" "$(kv cpu_us_per_q "$out")" \
			"answered with data $(kv ok "$out")/$(kv sent "$out") ($(kv ok_pct "$out")%), servfail $(kv servfail "$out"), no reply in 3 s $(kv lost "$out")"
		stop "$SPID"
		stop "$up"
	done
}

s5() {
	local stream=()
	[ "$S5_STREAM" = 1 ] && stream=(-stream)
	bg "$CLIENT_CPU" "$W/fakemesos" -addr "$MESOS" -tasks "$S5_TASKS" -names "$W/s5.names" ${stream[@]+"${stream[@]}"}
	local fm=$BG up s
	upstream "$U_FAST"
	up=$BG
	sleep 0.3
	for s in "${RUN_SERVERS[@]}"; do
		case $s in spartan | base) ;; *) continue ;; esac
		SPARTAN_EXTRA=", \"master\": {\"listen\": [\"$MASTER_DNS\"], \"masters\": [\"$MESOS\"], \"domain\": \"mesos.\", \"refreshSeconds\": 30, \"http\": \"$MASTER_HTTP\"}"
		"start_$s" "$U_FAST" 2>"$W/s5.err"
		SPARTAN_EXTRA=""
		local sport=$SPORT
		SPORT=${MASTER_DNS##*:}
		if wait_ready "$SPORT" "$W/s5.names" && kill -0 "$SPID" 2>/dev/null; then
			DNSPERF_FILE=$W/s5.names
			max_and_half "S5 master $S5_TASKS tasks" "$s" -queries "$W/s5.names"
			# The same tasks' dcos-net names, from the thisdcos.directory zone.
			sed -n 's/^\(app-[0-9]*\)\.marathon\.mesos A$/\1.marathon.autoip.dcos.thisdcos.directory A/p' \
				"$W/s5.names" >"$W/s5.navstar.names"
			DNSPERF_FILE=$W/s5.navstar.names
			max_and_half "S5 master thisdcos.directory" "$s" -queries "$W/s5.navstar.names"
			DNSPERF_FILE=""
		else
			row "S5 master" "$s" "n/a" "" "" "" "" "" "master mode not available: $(head -c 200 "$W/s5.err" | tr '\n' ' ')"
		fi
		SPORT=$sport
		stop "$SPID"
	done
	stop "$up"
	stop "$fm"
}

s6() {
	local s src out
	for s in "${RUN_SERVERS[@]}"; do
		case $s in
		spartan) src=. ;;
		base) src=$W/base-src ;;
		*) continue ;;
		esac
		(cd "$src" && go test -c -o "$W/mesos-$s.test" ./internal/zones/mesos)
		out=$(on "$SERVER_CPU" "$W/mesos-$s.test" -test.run '^$' -test.bench '^BenchmarkRegenerate(Heap)?$' \
			-test.cpu 1 -test.benchmem -test.benchtime "${S6_TIMES}x")
		awk '
			/^BenchmarkRegenerate /     { for (i = 2; i <= NF; i++) v[$(i + 1)] = $i }
			/^BenchmarkRegenerateHeap / { for (i = 2; i <= NF; i++) if ($(i + 1) == "peak-extra-heap-bytes") h = $i }
			END { printf "%.2f s/op, %d records, %.0f MB allocated/op, %.1f M allocs/op, peak extra heap %.0f MB, state %.0f MB JSON\n",
				v["ns/op"] / 1e9, v["records"], v["B/op"] / 1e6, v["allocs/op"] / 1e6, h / 1e6, v["MB/s"] * v["ns/op"] / 1e9 }' <<<"$out" >"$W/s6"
		row "S6 100k tasks regen" "$s" "-" "" "" "" "" "" "$(cat "$W/s6")"
	done
}

# s7: cache misses forwarded over DNS over TLS. The upstream is a real
# unbound on the client CPU answering every name from local data, on a TLS
# port (certificate for $DOT_NAME from a CA made here) and a UDP port, so
# the two transports reach the same server: spartan over UDP, spartan over
# TLS (one pipelined connection), unbound with forward-tls-upstream (and
# over UDP, for reference).
s7() {
	if ! command -v unbound >/dev/null || ! command -v openssl >/dev/null; then
		say "skipping S7: needs unbound and openssl"
		return
	fi
	local d=$W/dot out s
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
		-keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$DOT_NAME" \
		-keyout "$d/srv.key" -out "$d/srv.csr" 2>/dev/null
	printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$DOT_NAME" >"$d/ext"
	openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		-extfile "$d/ext" -out "$d/srv.pem" 2>/dev/null
	cat >"$d/unbound.conf" <<-CONF
		server:
		  interface: ${U_DOT/:/@}
		  interface: ${U_DOTUDP/:/@}
		  tls-port: ${U_DOT##*:}
		  tls-service-key: "$d/srv.key"
		  tls-service-pem: "$d/srv.pem"
		  num-threads: 1
		  do-daemonize: no
		  chroot: ""
		  username: ""
		  directory: "$d"
		  pidfile: "$d/unbound.pid"
		  use-syslog: no
		  logfile: ""
		  verbosity: 0
		  access-control: 127.0.0.0/8 allow
		  module-config: "iterator"
		  num-queries-per-thread: 4096
		  incoming-num-tcp: 1000
		  tcp-idle-timeout: 120000
		  local-zone: "example.com." redirect
		  local-data: "example.com. 86400 IN A 192.0.2.1"
	CONF
	bg "$CLIENT_CPU" unbound -c "$d/unbound.conf" 2>>"$W/dot-upstream.log"
	local up=$BG
	if ! wait_ready "${U_DOTUDP##*:}"; then
		say "S7: the DoT upstream did not come up: $(tail -3 "$W/dot-upstream.log")"
		stop "$up"
		return
	fi
	for s in "${RUN_SERVERS[@]}"; do
		case $s in
		spartan | base)
			for mode in udp dot; do
				local u=$U_DOTUDP
				[ "$mode" = udp ] || u="tls://$U_DOT#$DOT_NAME"
				SPARTAN_EXTRA=", \"tlsCAFile\": \"$d/ca.pem\""
				server "$s" "$u" || { SPARTAN_EXTRA=""; continue; }
				SPARTAN_EXTRA=""
				next_names
				out=$(measure "$SPID" -duration "${SECS}s" -outstanding "$OUTSTANDING" -names 0 -start "$NAMES_START")
				lrow "S7 miss $mode" "$s" "$out"
				stop "$SPID"
			done
			;;
		unbound)
			for mode in udp dot; do
				local u=$U_DOTUDP
				if [ "$mode" = dot ]; then
					u="$U_DOT#$DOT_NAME"
					UNBOUND_SERVER_EXTRA="  tls-cert-bundle: \"$d/ca.pem\""
					UNBOUND_FORWARD_EXTRA="  forward-tls-upstream: yes"
				fi
				server unbound "$u" || { UNBOUND_SERVER_EXTRA="" UNBOUND_FORWARD_EXTRA=""; continue; }
				UNBOUND_SERVER_EXTRA="" UNBOUND_FORWARD_EXTRA=""
				next_names
				out=$(measure "$SPID" -duration "${SECS}s" -outstanding "$OUTSTANDING" -names 0 -start "$NAMES_START")
				lrow "S7 miss $mode" "$s" "$out" "$([ "$mode" = dot ] && echo forward-tls-upstream)"
				stop "$SPID"
			done
			;;
		esac
	done
	stop "$up"
}

# sweep: cache hits at each of SWEEP_RATES and at the maximum, for every
# server; a cache miss at 5k qps for the forwarders.
sweep() {
	next_names
	local start=$NAMES_START out r
	DNSPERF_FILE=$(names_file "$start" "$S1_NAMES")
	upstream "$U_FAST"
	local up=$BG
	for s in "${RUN_SERVERS[@]}"; do
		server "$s" "$U_FAST" || continue
		loadgen -once -names "$S1_NAMES" -start "$start" -outstanding 50 >/dev/null
		for r in $SWEEP_RATES; do
			out=$(measure "$SPID" -duration "${SECS}s" -rate "$r" -names "$S1_NAMES" -start "$start")
			lrow "hit @$((r / 1000))k/s" "$s" "$out" "$(kv cs_per_q "$out") switches/q"
		done
		out=$(measure "$SPID" -duration "${SECS}s" -outstanding "$OUTSTANDING" -names "$S1_NAMES" -start "$start")
		local dp=""
		if [ "$DNSPERF" = 1 ]; then dp="dnsperf $(dnsperf_qps "$DNSPERF_FILE") qps"; fi
		lrow "hit max" "$s" "$out" "$dp"
		stop "$SPID"
	done
	for s in "${RUN_SERVERS[@]}"; do
		! responder "$s" || continue
		server "$s" "$U_FAST" || continue
		next_names
		out=$(measure "$SPID" -duration "${SECS}s" -rate 5000 -names 0 -start "$NAMES_START")
		lrow "miss @5k/s" "$s" "$out" "$(kv cs_per_q "$out") switches/q"
		stop "$SPID"
	done
	stop "$up"
	DNSPERF_FILE=""
}

# cores: spartan's cache-hit maximum on one core (GOMAXPROCS=1, one
# socket) and on two (GOMAXPROCS=2, two SO_REUSEPORT sockets), from
# LOADGENS load generators at once; qps is their sum.
cores() {
	next_names
	local start=$NAMES_START n cpus out i t0 t1 qps ans
	upstream "$U_FAST"
	local up=$BG
	for n in 1 2; do
		cpus=$CORES1_CPUS
		[ "$n" = 1 ] || cpus=$CORES2_CPUS
		SPARTAN_EXTRA=", \"listenerThreads\": $n"
		GOMAXPROCS=$n SERVER_CPU=$cpus start_spartan "$U_FAST"
		SPARTAN_EXTRA=""
		if ! wait_ready "$SPORT" || ! kill -0 "$SPID" 2>/dev/null; then
			say "spartan ($n cores) did not come up"
			stop "$SPID"
			continue
		fi
		loadgen -once -names "$S1_NAMES" -start "$start" -outstanding 50 >/dev/null
		t0=$(cputicks "$SPID")
		local lg=()
		for i in $(seq "$LOADGENS"); do
			GOMAXPROCS=1 "$W/loadgen" -server "127.0.0.1:$SPORT" -duration "${SECS}s" -outstanding $((OUTSTANDING / LOADGENS)) \
				-names "$S1_NAMES" -start "$start" >"$W/cores.$i" &
			lg+=($!)
		done
		wait "${lg[@]}"
		t1=$(cputicks "$SPID")
		qps=0 ans=0
		for i in $(seq "$LOADGENS"); do
			out=$(cat "$W/cores.$i")
			qps=$((qps + $(kv qps "$out" | cut -d. -f1))) ans=$((ans + $(kv answered "$out")))
		done
		row "hit max, $n core(s)" spartan "$qps" "" "" "" "" \
			"$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$ans" 'BEGIN { printf "%.2f", (n > 0 ? 1e6 * d / hz / n : 0) }')" \
			"server on CPUs $cpus, GOMAXPROCS=$n, listenerThreads $n; $LOADGENS unpinned loadgens"
		stop "$SPID"
	done
	stop "$up"
}

for sc in S1 S2 S3 S4 S5 S6 S7 SWEEP CORES; do
	if have "$sc"; then
		say "--- $sc (at ${SECONDS}s)"
		"${sc,,}"
	fi
done

echo
CPU=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -1)
echo "spartan bench: ${CPU:-unknown CPU}, $(nproc) CPUs; server on CPU $SERVER_CPU, client and fake upstreams on CPU $CLIENT_CPU; ${SECS}s runs; load average at start: $LOAD, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ " ${RUN_SERVERS[*]} " == *" base "* ]]; then
	echo "spartan: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' with uncommitted changes'); base: $(git rev-parse --short "$BASE_REF")"
fi
printf '%-24s %-8s %9s %7s %8s %8s %9s %7s  %s\n' scenario server qps loss p50 p99 p99.9 cpu_us/q note
printf '%s\n' "${ROWS[@]}"
