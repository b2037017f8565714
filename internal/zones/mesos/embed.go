package mesos

import _ "embed"

// DemoState is a sample Mesos master state (the one Mesos-DNS's own tests
// use): the cluster zone served by -demo.
//
//go:embed demo-state.json
var DemoState []byte
