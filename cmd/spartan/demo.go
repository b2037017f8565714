package main

import "github.com/spartan-dns/spartan/internal/config"

// Demo settings: a proxy any machine can run without a cluster.
const (
	demoListen        = "127.0.0.1:5353"
	demoUpstreamsFile = "/etc/resolv.conf"
)

// applyDemo turns the defaults into the -demo configuration: listen on
// 127.0.0.1:5353, take "." from the host's resolv.conf (loopback
// resolvers are kept, since the demo itself listens on loopback), no
// metrics endpoint.
//
// Hook for master mode: the embedded sample cluster zone (so that
// leader.mesos and friends answer in the demo) is added here, by setting
// cfg.Master with its embedded state.
func applyDemo(cfg *config.Config) {
	cfg.Listen = []string{demoListen}
	cfg.Upstreams = nil
	cfg.UpstreamsFile = demoUpstreamsFile
	cfg.Metrics = ""
}
