// Package e2e holds end-to-end tests that run spartan the way it runs in
// production: real binaries on a small cluster of network namespaces
// (masters in master mode against a fake Mesos master, external
// resolvers, agents with the node-local proxy and the watchdog), queried
// with real clients (dig, glibc's getent) while parts of the cluster fail.
// The tests need root and "ip netns"; they skip, saying why, without them.
package e2e
