// Package testsupport holds the helpers that tests across spartan share to
// run real servers and processes on loopback: fake DNS upstreams with
// configurable misbehaviour (upstream.go), a binary builder, a dig wrapper
// and a child-process runner (binary.go), a fake Mesos master with its
// operator API event stream (mesos.go, mesosstream.go, mesosv1.go), a real
// ZooKeeper server and a client writing Mesos masters' nodes to it
// (zookeeper.go),
// network namespaces (netns.go), multi-node topologies of namespaces on a
// bridge with dig and getent run from a node (cluster.go), sd_notify and socket-activation stand-ins
// (notify.go, activation.go), a Prometheus scraper (prometheus.go), a
// socket-option reader (sockopt.go), a raw HTTP/1.1 client connection
// (httpconn.go), a certificate authority issuing server certificates
// (tlsca.go), a real unbound serving DNS over TLS, a TLS server that
// never completes a handshake, one that never answers and a TLS front for
// a fake upstream (dot.go), and builders of DNS queries
// and upstream replies for wire-format tests (dnsmsg.go).
//
// Every helper takes a testing.TB and releases what it started through
// t.Cleanup, so a test never has to remember to stop anything.
package testsupport
