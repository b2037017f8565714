#!/usr/bin/env bash
# Runs spartan's whole test suite. As root it first installs the tools the
# end-to-end tests drive (dig, ip, getent, unshare, mount, systemd-analyze,
# systemd-socket-activate) when they are missing and then runs the tests in
# strict mode (SPARTAN_TEST_STRICT=1): a test that would skip because a tool
# is missing or a namespace cannot be created fails instead. As an ordinary
# user the tests that need root or a missing tool skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dig >/dev/null || need+=(dnsutils)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
command -v mount >/dev/null || need+=(mount)
command -v getent >/dev/null || need+=(libc-bin)
if ! command -v systemd-analyze >/dev/null || ! command -v systemd-socket-activate >/dev/null; then
	need+=(systemd)
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

go vet ./...
go test -race -count=1 -timeout 15m ./... "$@"
