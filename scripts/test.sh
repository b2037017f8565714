#!/usr/bin/env bash
# Runs spartan's whole test suite. As root it first installs the tools the
# end-to-end tests drive (dig, ip, getent, unshare, systemd's tools) when
# they are missing; without them those tests skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dig >/dev/null || need+=(dnsutils)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
command -v getent >/dev/null || need+=(libc-bin)
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ "${#need[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

go vet ./...
go test -race -count=1 -timeout 15m ./... "$@"
