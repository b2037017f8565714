// Package dnswire works on DNS messages in wire format, without building a
// dns.Msg: it parses a client's question in place (Query), checks and
// walks an upstream's reply (CheckReply, ParseResponse), and writes
// replies by copying a stored message and patching its ID, flags,
// question casing, TTLs and OPT record (Response.AppendReply and its
// siblings, AppendError). The cache, the upstream race, the authoritative
// zones and the query path all build on it; it imports nothing of
// spartan's.
//
// Every reader here bounds its walk by the message length and accepts
// compression pointers only to a preceding label start, so a hostile
// message costs at most one pass over its bytes and never a panic. The
// question parser and the reply check allocate nothing.
package dnswire
