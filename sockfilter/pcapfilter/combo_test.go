package pcapfilter_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// comboExprsEnv sets the number of random combinations TestCompileCombos
// compiles (comboExprs by default), and comboSeedEnv its seed: for a
// longer run, PUREBPF_COMBO_EXPRS=5000 go test -run Combos.
const (
	comboExprsEnv = "PUREBPF_COMBO_EXPRS"
	comboSeedEnv  = "PUREBPF_COMBO_SEED"
)

// comboExprs is the number of random combinations of a default run.
const comboExprs = 300

// comboStrictEnv, set to 1, makes TestCompileCombos fail on every
// disagreement of a random combination, not only past comboTolerance.
const comboStrictEnv = "PUREBPF_COMBO_STRICT"

// comboAllEnv, set to 1, makes TestCompileCombos combine the
// expressions with the words of comboUnsettled too.
const comboAllEnv = "PUREBPF_COMBO_ALL"

// comboUnsettled are the words of the grammar still being written (issue
// 16) whose combinations differ from libpcap on whole frames, not only
// short ones: after `geneve`, `mpls` or `pppoes`, libpcap reads every
// later primitive of the expression in the encapsulated packet (`geneve
// or broadcast` is true of a frame whose inner destination is broadcast,
// not of one whose outer destination is), and protochain. A default run
// leaves the expressions with them out.
var comboUnsettled = []string{"geneve", "mpls", "pppoe", "protochain"}

// comboTolerance is the share of random combinations that may disagree
// with libpcap (each is logged): the optimiser decides what libpcap's
// fold_edge decides, but its graph is not libpcap's, and about 0.1% of
// the combinations still differ on some frame (7 of 6,000, seeds 100 to
// 105; see comboResidual). The optimiser that decided more than libpcap's did
// differed on 5 to 8% of them.
const comboTolerance = 0.01

// comboResidual are combinations, as small as found, on which Compile's
// program and libpcap's still differ on short frames, with why; the test
// logs whether they still do (and, with comboStrictEnv, fails):
var comboResidual = []string{
	// libpcap 1.10's optimiser is wrong here: its program rejects an
	// IPv6 TCP frame from port 8080 to another port, which `tcpdump -O`
	// (unoptimised) accepts, as Compile's program does.
	"not (((tcp port (80 or 443)) or not ((port (80 or 443 or 8080)) or (src net loopback))) or (not (ip6 or vlan)))",
	// libpcap does not decide `tcp[13] == 2` from a true `tcp[tcpflags]
	// == tcp-syn|tcp-ack` (a constant computed by arithmetic), though it
	// decides it from a true `tcp[13] == 0x12`; Compile's threading
	// decides both, drops the test and its load, and accepts a 14-byte
	// IPv4 frame libpcap's program rejects.
	"((host 10.0.0.1 and tcp) or not (tcp[tcpflags] == tcp-syn|tcp-ack)) or not (tcp[13] == 0x02)",
}

// comboCuts are the lengths every frame of the corpus is also cut to
// (those shorter than it): a classic load past the end of the frame
// rejects it, so a program that drops, or adds, a load that libpcap's
// keeps, or does not have, differs on frames this short.
var comboCuts = []int{14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 26, 28, 30, 32, 33, 34, 36, 38, 40, 42, 46, 50, 54, 58, 60}

// comboFixed are combinations TestCompileCombos always checks: each was
// compiled to a program that accepts frames too short for a load that
// libpcap's program keeps (and which rejects them), when the optimiser
// decided order tests from equalities (a true `ether[12:2] == 0x6003`
// decides `ether[12:2] > 1500`, which libpcap's does not), so that an
// earlier test's two ways met and it was removed with its load.
var comboFixed = []string{
	"not (decnet host 1.2 and stp)",
	"not (decnet dst 63.1023 or moprc and aarp)",
	"not (ip host 10.0.0.1 and ether[12:2] < 0x600)",
	"(proto 17) or ((not (llc ua) or not (ether proto 0xe0)) and (not (atalk or aarp) or (src net 0.0.0.0/0)))",
	"not ((tcp src port 1024 or tcp dst port 80) and ((decnet[2] & 7 = 2) or ((not multicast) and (llc i))))",
	// dropImplied left a test of ip dst 192.168.1.100 with its two ways
	// the same, mergeTails found its value in r0, and the test, with no
	// code, had no label for the jump into it (`goto n35`): the program
	// did not assemble.
	// merge made equal tests one in every round, libpcap's
	// intern_blocks only once its jump threading is done: the `not llc`
	// test and the `llc sabme` one are the same test with the same
	// successors, so the DECnet test before them has its two ways the
	// same, and the next round's threading removed it and its load at
	// [16]; libpcap keeps it, its ways being two blocks until the end.
	"(((decnet dst 3.4) or not (llc sabme)) and (not llc))",
	"(ip6 and tcp port 80) or not ((host 10.0.0.2 and (192.168.1.1 or 192.168.1.100)) or not (udp port syslog)) or not (tcp port 80 or 443)",
}

// TestCompileCombos compiles random combinations (and, or, not,
// parentheses) of the expressions of testdata/expressions.txt and
// testdata/sample, with Compile and with libpcap, and checks that the two
// programs give the same verdict, in the interpreter and in
// golang.org/x/net/bpf's VM, on every frame of a corpus and on its short
// truncations (comboCuts). Combinations are where the optimiser's
// inferences across terms meet: a test decided by what an earlier term
// knows makes the branches of other tests coincide, which removes them and
// their loads, and a truncated frame tells whether libpcap's optimiser
// removes the same loads. The combinations of comboFixed must agree on
// every frame, and all but comboTolerance of the random ones (all with
// PUREBPF_COMBO_STRICT=1); each disagreement is logged. It needs no
// privileges.
func TestCompileCombos(t *testing.T) {
	testutil.RequireTool(t, "tcpdump")
	n := comboExprs
	if s := os.Getenv(comboExprsEnv); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("%s=%q: %v", comboExprsEnv, s, err)
		}
	}
	seed := uint64(16)
	if s := os.Getenv(comboSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", comboSeedEnv, s, err)
		}
	}
	if testing.Short() {
		n /= 10
	}
	// The primitives: those Compile compiles (TestCompileSample checks
	// that it compiles all that libpcap compiles), without the unsettled
	// ones unless PUREBPF_COMBO_ALL=1.
	all := os.Getenv(comboAllEnv) == "1"
	prims := testutil.Expressions(t)
	for _, e := range sampleExprs(t) {
		if !e.refused {
			prims = append(prims, e.expr)
		}
	}
	prims = slices.DeleteFunc(prims, func(e string) bool {
		_, err := pcapfilter.CompileWith(e, packet.LinkEthernet, &pcapfilter.CompileOptions{Offline: true})
		return err != nil || !all && slices.ContainsFunc(comboUnsettled, func(w string) bool { return strings.Contains(e, w) })
	})
	frames := comboFrames(testutil.GenFrames(seed, 300), testutil.GenMoreFrames(seed, 600))
	lp := testutil.NewLibpcap(t, testutil.LinkEthernet)
	strict := os.Getenv(comboStrictEnv) == "1"
	for _, expr := range comboFixed {
		if bad := comboCheck(t, lp, expr, frames); bad != "" {
			t.Error(bad)
		}
	}
	for _, expr := range comboResidual {
		switch bad := comboCheck(t, lp, expr, frames); {
		case bad == "":
			t.Logf("%q: agrees now: remove it from comboResidual", expr)
		case strict:
			t.Error(bad)
		default:
			t.Logf("known difference: %s", bad)
		}
	}
	gen := &comboGen{r: rand.New(rand.NewPCG(seed, 17)), prims: prims}
	var disagree []string
	for range n {
		if bad := comboCheck(t, lp, gen.expr(3), frames); bad != "" {
			disagree = append(disagree, bad)
			if strict && len(disagree) <= 20 {
				t.Error(bad)
			} else if len(disagree) <= 20 {
				t.Log(bad)
			}
		}
	}
	t.Logf("%d random combinations (seed %d) on %d frames: %d disagree", n, seed, len(frames), len(disagree))
	if max := int(math.Ceil(comboTolerance * float64(n))); !strict && len(disagree) > max {
		t.Errorf("%d of %d random combinations disagree with libpcap, more than %d (%.0f%%)", len(disagree), n, max, 100*comboTolerance)
	}
}

// comboCheck compiles expr both ways and returns a description of the
// first frame the two programs disagree on, or "". That one of the two
// refuses it, or that the interpreter refuses Compile's program, is an
// error of t.
func comboCheck(t *testing.T, lp *testutil.Libpcap, expr string, frames [][]byte) string {
	t.Helper()
	classic, lerr := lp.Compile(expr)
	if lerr != nil && strings.Contains(lerr.Error(), "expression rejects all packets") {
		classic, lerr = []bpf.Instruction{bpf.RetConstant{Val: 0}}, nil
	}
	insns, err := pcapfilter.CompileWith(expr, packet.LinkEthernet, &pcapfilter.CompileOptions{Offline: true})
	switch {
	case lerr != nil && err != nil:
		return ""
	case lerr != nil:
		t.Errorf("%q: libpcap refuses it (%v), Compile compiles it", expr, lerr)
		return ""
	case err != nil:
		t.Errorf("%q: Compile refuses what libpcap compiles: %v", expr, err)
		return ""
	}
	v, err := vm.New(insns, nil)
	if err != nil {
		t.Errorf("%q: the interpreter refuses Compile's program: %v\n%v", expr, err, insns)
		return ""
	}
	libpcap := testutil.ClassicVM(t, classic)
	bad := 0
	var first string
	for _, f := range frames {
		got, err := v.RunFrame(f, packet.LinkEthernet)
		if err != nil {
			t.Fatalf("%q: % x: %v", expr, f, err)
		}
		if want := libpcap(f); (got != 0) != (want != 0) {
			if bad++; bad == 1 {
				first = fmt.Sprintf("frame (%d bytes) % x: Compile's program returns %#x, libpcap's %d", len(f), f, got, want)
			}
		}
	}
	if bad == 0 {
		return ""
	}
	return fmt.Sprintf("%q: %d of %d frames disagree; %s", expr, bad, len(frames), first)
}

// comboFrames returns the frames of sets, and each cut to the lengths of
// comboCuts shorter than it, each distinct frame once.
func comboFrames(sets ...[][]byte) [][]byte {
	seen := make(map[string]bool)
	var out [][]byte
	add := func(f []byte) {
		if !seen[string(f)] {
			seen[string(f)] = true
			out = append(out, f)
		}
	}
	for _, s := range sets {
		for _, f := range s {
			add(f)
			for _, n := range comboCuts {
				if n < len(f) {
					add(f[:n])
				}
			}
		}
	}
	return out
}

// comboGen makes random combinations of prims.
type comboGen struct {
	r     *rand.Rand
	prims []string
}

// expr returns a combination at most depth operators deep.
func (g *comboGen) expr(depth int) string {
	var e string
	if depth == 0 || g.r.IntN(3) == 0 {
		e = "(" + g.prims[g.r.IntN(len(g.prims))] + ")"
	} else {
		op := " and "
		if g.r.IntN(2) == 0 {
			op = " or "
		}
		e = "(" + g.expr(depth-1) + op + g.expr(depth-1) + ")"
	}
	if g.r.IntN(3) == 0 {
		e = "not " + e
	}
	return e
}
