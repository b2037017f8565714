#!/bin/sh
# install.sh: install spartan's binaries, systemd units and sample
# configuration in the standard places.
#
#   scripts/install.sh [BINDIR_WITH_BUILT_BINARIES]
#
# Environment:
#   DESTDIR   staging root for packaging (default: empty, the live system)
#   PREFIX    default /usr/local; units are rewritten to point at it
#   SYSCONFDIR default /etc
#   UNITDIR   default $PREFIX/lib/systemd/system (/usr/lib/systemd/system
#             when PREFIX is /usr)
#   GO        go command used to build when no binary directory is given
#
# Existing configuration files are never overwritten. On a live install
# (no DESTDIR) /etc/spartan/upstreams.conf is seeded from the nameservers
# of the current /etc/resolv.conf, loopback stubs left out (from
# /run/systemd/resolve/resolv.conf when only systemd-resolved's stub is
# there). Under DESTDIR (a package's staging tree, for other machines) it
# is the commented sample: the build host's resolvers mean nothing on the
# nodes, so it names none, and spartan does not start until it does.
#
# Nothing is enabled or started: the last lines say how.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
GO=${GO:-go}

bindir=${1:-}
if [ -z "$bindir" ]; then
	bindir=$(mktemp -d)
	trap 'rm -rf "$bindir"' EXIT
	(cd "$here" && "$GO" build -trimpath -o "$bindir/spartan" ./cmd/spartan &&
		"$GO" build -trimpath -o "$bindir/watchdog" ./cmd/watchdog)
fi
[ -x "$bindir/spartan" ] || { echo "install.sh: no spartan binary in $bindir" >&2; exit 1; }
[ -x "$bindir/watchdog" ] || { echo "install.sh: no watchdog binary in $bindir" >&2; exit 1; }

install -d "$DESTDIR$PREFIX/bin" "$DESTDIR$PREFIX/lib/spartan" "$DESTDIR$UNITDIR" \
	"$DESTDIR$SYSCONFDIR/spartan"
install -m 0755 "$bindir/spartan" "$DESTDIR$PREFIX/bin/spartan"
install -m 0755 "$bindir/watchdog" "$DESTDIR$PREFIX/bin/spartan-watchdog"
install -m 0755 "$here/systemd/spartan-iface" "$DESTDIR$PREFIX/lib/spartan/spartan-iface"

# Units name /usr/local and /etc; rewrite them for the chosen prefixes.
for u in spartan.service spartan.socket spartan-iface.service spartan-watchdog.service; do
	sed -e "s#/usr/local/#$PREFIX/#g" -e "s#/etc/spartan/#$SYSCONFDIR/spartan/#g" \
		"$here/systemd/$u" >"$DESTDIR$UNITDIR/$u"
	chmod 0644 "$DESTDIR$UNITDIR/$u"
done

conf() { # conf SRC NAME: install a sample unless the file exists
	dst="$DESTDIR$SYSCONFDIR/spartan/$2"
	if [ -e "$dst" ]; then
		echo "install.sh: keeping existing $dst" >&2
		return 0
	fi
	sed -e "s#/etc/spartan/#$SYSCONFDIR/spartan/#g" "$1" >"$dst"
	chmod 0644 "$dst"
}
conf "$here/systemd/spartan.json" spartan.json
conf "$here/systemd/spartan-master.json" spartan-master.json
conf "$here/systemd/spartan.env" spartan.env

ups="$DESTDIR$SYSCONFDIR/spartan/upstreams.conf"
if [ ! -e "$ups" ]; then
	if [ -z "$DESTDIR" ] && [ -r /etc/resolv.conf ]; then
		# With systemd-resolved's stub (only 127.0.0.53) the servers it
		# forwards to are listed in its own resolv.conf.
		src=/etc/resolv.conf
		if ! awk '$1 == "nameserver" && $2 !~ /^(127\.|::1$)/ { found = 1 } END { exit !found }' "$src" &&
			[ -r /run/systemd/resolve/resolv.conf ]; then
			src=/run/systemd/resolve/resolv.conf
		fi
		{
			head -n 5 "$here/systemd/upstreams.conf" | grep '^#'
			echo "# Seeded from $src at install time."
			awk '$1 == "nameserver" && $2 !~ /^(127\.|::1$)/ { print "nameserver", $2 }' "$src"
		} >"$ups"
		chmod 0644 "$ups"
	else
		conf "$here/systemd/upstreams.conf" upstreams.conf
		echo "install.sh: $ups is the sample and names no resolver:" \
			"list the nodes' resolvers there (nameserver lines), or spartan will not start" >&2
	fi
fi

echo "installed spartan under ${DESTDIR:-/} (prefix $PREFIX); nothing is enabled yet. Next, on the node:"
echo "  systemctl daemon-reload && systemctl enable --now spartan.socket spartan.service spartan-watchdog.service"
