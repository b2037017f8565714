// Package proxy is spartan's DNS front end: its own UDP and TCP listeners
// (Server, bound with IP_FREEBIND, replies from the address queried,
// pipelined TCP) behind a small wire-format Handler interface, and the
// node-local query path (Forwarder): client ACL, the local "spartan." zone,
// and per-zone upstream races through package upstream.
//
// The listeners and the query path are separate so that other handlers
// (master mode's authoritative server) reuse the listeners, and so that a
// cache can answer hits from the raw bytes before any parsing beyond the
// question.
package proxy
