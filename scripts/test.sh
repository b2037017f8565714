#!/usr/bin/env bash
# Runs spartan's whole test suite. As root it first installs the tools the
# tests drive (dig, ip, getent, unshare, mount, systemd-analyze,
# systemd-socket-activate, the ZooKeeper server the master-mode tests start,
# and unbound as a DNS over TLS server) when they are missing and then runs
# the tests in strict mode (SPARTAN_TEST_STRICT=1): a test that would skip
# because a tool is missing or a namespace cannot be created fails instead.
# As an ordinary user the tests that need root or a missing tool skip and
# say why.
#
# Before the tests: gofmt, "go mod tidy -diff" (go.mod and go.sum must
# be tidy), go vet, a build for linux/arm64 and linux/arm, and staticcheck
# (the pinned version below, installed with "go install" when missing).
# After them every Go fuzz target (func FuzzXxx(f *testing.F) in a
# _test.go file, found by grep so a new one is picked up) is fuzzed for
# FUZZTIME (default 8s) on its own.
# Arguments are passed to "go test" of the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# staticcheck 2026.2.2; a newer Go may need a newer one.
STATICCHECK_VERSION=v0.8.2
FUZZTIME=${FUZZTIME:-8s}

need=()
command -v dig >/dev/null || need+=(dnsutils)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
command -v mount >/dev/null || need+=(mount)
command -v getent >/dev/null || need+=(libc-bin)
# unbound: a real DNS over TLS server for the upstream tests.
command -v unbound >/dev/null || [ -x /usr/sbin/unbound ] || need+=(unbound)
if ! command -v systemd-analyze >/dev/null || ! command -v systemd-socket-activate >/dev/null; then
	need+=(systemd)
fi
# A real ZooKeeper server (and the Java it runs on) for master.zk.
if [ ! -f /usr/share/java/zookeeper.jar ] || ! command -v java >/dev/null; then
	need+=(zookeeper)
fi
if [ "$(id -u)" = 0 ]; then
	if [ "${#need[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
		echo "installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
	# Everything the tests need is there now: a skip would hide a failure.
	export SPARTAN_TEST_STRICT="${SPARTAN_TEST_STRICT:-1}"
fi

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt: not formatted:" >&2
	echo "$unformatted" >&2
	exit 1
fi
if ! go mod tidy -diff; then
	echo 'go.mod or go.sum is not tidy: run "go mod tidy"' >&2
	exit 1
fi
go vet ./...
# Nodes are not all amd64: everything must also build for 64- and 32-bit
# ARM (where syscall structures have other field types).
for arch in arm64 arm; do
	GOOS=linux GOARCH=$arch go build -o /dev/null ./...
done
gobin=$(go env GOBIN)
gobin=${gobin:-$(go env GOPATH | cut -d: -f1)/bin}
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -qF "(${STATICCHECK_VERSION#v})"; then
	echo "installing staticcheck $STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
"$gobin/staticcheck" ./...

go test -race -count=1 -timeout 15m ./... "$@"

# Each fuzz target alone: go test fuzzes one target of one package at a
# time. A failure writes the input under the package's testdata/fuzz.
grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
	sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*).*#\1 \2#' | sort |
	while read -r dir name; do
		echo "fuzzing $name in $dir for $FUZZTIME"
		go test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "$dir" </dev/null
	done
