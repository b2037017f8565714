// Package proxy is spartan's node-local query path (Forwarder) and the
// node assembled around it (Node): client ACL, the local "spartan." zone,
// the response cache's fast path, and per-zone upstream races through
// package upstream. The Forwarder is a server.Handler and
// server.FastHandler: the listeners of package server feed it raw
// messages, and it answers in wire format through package dnswire, so a
// cache hit is answered from the raw bytes before any parsing beyond the
// question.
//
// query.go walks through a query's steps in order; forwarder.go holds the
// Forwarder's options and lifecycle, tables.go how upstream tables are
// swapped and retired, local.go the local zone and the queries the wire
// parser does not take, node.go the assembly from a configuration, and
// upstreams.go the upstream groups built from it.
package proxy
