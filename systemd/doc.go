// Package systemd holds spartan's systemd units, the node interface helper
// (spartan-iface), the sample configuration installed under /etc/spartan,
// and the tests that verify them: systemd-analyze verify on the units as
// installed, and the interface helper in a network namespace.
package systemd
