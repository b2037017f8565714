// Package internal_test checks how spartan's packages depend on each
// other: imports run one way, down the layers below, as CoreDNS's plugins
// sit on plugin/pkg.
package internal_test

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/spartan-dns/spartan/"

// layers ranks every package of the module. A package may import only
// packages of a lower rank; a new package must be given one here.
//
//	0  the foundation, importing nothing of ours: the wire format, the
//	   configuration, metrics, resolv.conf handling
//	1  the building blocks: listeners, the cache, upstream races, zones
//	2  what a process runs: the forwarding proxy, master mode, the
//	   service glue, the watchdog
//	3  commands, the benchmark tools, and the packages of the end-to-end
//	   and unit-file tests
var layers = map[string]int{
	"internal/dnswire":     0,
	"internal/config":      0,
	"internal/metrics":     0,
	"internal/resolvconf":  0,
	"internal/testsupport": 0,
	"internal/httpserve":   0,
	"bench/internal/wire":  0,

	"internal/server":      1,
	"internal/proxy/cache": 1,
	"internal/upstream":    1,
	"internal/zones":       1,
	"internal/mesosleader": 1,

	"internal/proxy":       2,
	"internal/zones/mesos": 2,
	"internal/service":     2,
	"internal/watchdog":    2,

	"cmd/spartan":            3,
	"cmd/watchdog":           3,
	"bench/cmd/fakemesos":    3,
	"bench/cmd/loadgen":      3,
	"bench/cmd/udpresponder": 3,
	"e2e":                    3,
	"systemd":                3,
}

// testOnly are packages that exist only for tests: no package's non-test
// files may import them.
var testOnly = map[string]bool{"internal/testsupport": true}

// TestImportsRunDownward fails when a package imports one in its own
// layer or above, imports a test-only package outside its tests, or has
// no layer.
func TestImportsRunDownward(t *testing.T) {
	pkgs := modulePackages(t)
	require.NotEmpty(t, pkgs)
	var problems []string
	for dir, p := range pkgs {
		rank, ok := layers[dir]
		if !ok {
			if len(p.GoFiles) > 0 {
				problems = append(problems, dir+": no layer; give it one in layers_test.go")
			}
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			switch depRank, known := layers[dep]; {
			case testOnly[dep]:
				problems = append(problems, dir+" imports "+dep+", which is for tests only")
			case !known:
				problems = append(problems, dir+" imports "+dep+", which has no layer")
			case depRank >= rank:
				problems = append(problems, dir+" (layer "+strconv.Itoa(rank)+") imports "+dep+" (layer "+strconv.Itoa(depRank)+")")
			}
		}
	}
	for dir := range layers {
		if _, ok := pkgs[dir]; !ok {
			problems = append(problems, dir+": in layers_test.go but not in the tree")
		}
	}
	sort.Strings(problems)
	require.Empty(t, problems, "imports must run down the layers")
}

// TestTestSupportImportsNothingOfOurs keeps the test helpers usable by
// every package's tests, the lowest layer's included, without a cycle.
func TestTestSupportImportsNothingOfOurs(t *testing.T) {
	p := modulePackages(t)["internal/testsupport"]
	require.NotNil(t, p)
	for _, imp := range p.Imports {
		require.False(t, strings.HasPrefix(imp, module), "testsupport imports %s", imp)
	}
}

// modulePackages reads the imports of every package below the module root,
// keyed by directory relative to it, with the build constraints of this
// platform.
func modulePackages(t *testing.T) map[string]*build.Package {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "the module root is the parent of internal/")
	pkgs := map[string]*build.Package{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		p, err := build.Default.ImportDir(path, build.ImportComment)
		if err != nil {
			if _, none := err.(*build.NoGoError); none {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		pkgs[filepath.ToSlash(rel)] = p
		return nil
	})
	require.NoError(t, err)
	return pkgs
}
