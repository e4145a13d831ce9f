package pcapfilter

import (
	"errors"
	"runtime"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// hugeMax is, for each shape of hugeShapes, the largest number of terms
// Compile takes: one more is refused with ErrTooComplex. Each is pinned
// by TestCompileHuge, so that a change to the limits or to what the
// optimiser makes of these shapes shows here.
var hugeMax = map[string]int{
	"arith_add":    8192, // maxArith: each `+ len` is two operations
	"arith_div":    2341, // a jump to the reject block reaches 32767 expanded instructions
	"tcp_or_arith": 3638, // the same, for the jump of `tcp` to the accept block
	"ports":        712,  // maxTests: 23 tests a port (gen_port: one copy a protocol)
	"hosts":        1820, // 9 tests a host
	"bytes":        8191, // 2 tests a term
	"mixed":        1087, // jumps
	"ranges":       468,  // maxTests: 35 tests a range
	"vlans":        1638, // maxTests
	"groups":       2730, // maxTests
	"parens":       198,  // maxDepth
	"not":          199,  // maxDepth
}

// hugeBudget is the most a call of Compile may allocate, in bytes.
const hugeBudget = 100 << 20

// TestCompileHuge compiles each shape of hugeShapes at the largest size
// the limits take, at one term more, and at about 1 MB: Compile must
// return a program that assembles and whose jumps reach once the kernel
// has expanded it (TestCompileHugeLoads loads them), or refuse with an
// *Error wrapping ErrTooComplex (the keyword shape: an unknown keyword),
// and allocate less than hugeBudget bytes doing it. The bytes allocated
// are runtime.MemStats.TotalAlloc, which counts every allocation (garbage
// included): the same for every run. Time is measured by
// BenchmarkCompileHuge.
func TestCompileHuge(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles expressions of up to 2 MB: skipped in -short mode")
	}
	for _, s := range hugeShapes {
		max, ok := hugeMax[s.name]
		sizes := []int{megabyteTerms(s.expr)}
		if ok {
			sizes = append(sizes, max, max+1)
		}
		for _, n := range sizes {
			expr := s.expr(n)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			insns, err := Compile(expr, packet.LinkEthernet)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s, %d terms, %d bytes: %d instructions, %.1f MB allocated, error %.100v", s.name, n, len(expr), len(insns), float64(alloc)/(1<<20), err)
			if alloc > hugeBudget {
				t.Errorf("%s, %d terms: Compile allocated %d bytes, more than %d", s.name, n, alloc, hugeBudget)
			}
			wantProgram := ok && n <= max
			switch {
			case wantProgram && err != nil:
				t.Errorf("%s, %d terms: %v; want a program", s.name, n, err)
			case wantProgram:
				checkHugeProgram(t, s.name, n, insns)
			case err == nil:
				t.Errorf("%s, %d terms: compiled to %d instructions; want it refused", s.name, n, len(insns))
			case s.name == "keyword":
				if _, ok := errors.AsType[*Error](err); !ok {
					t.Errorf("%s: error %v is not an *Error", s.name, err)
				}
			case !errors.Is(err, ErrTooComplex):
				t.Errorf("%s, %d terms: error %v does not wrap ErrTooComplex", s.name, n, err)
			}
			if err != nil && len(err.Error()) > maxErrorLen {
				t.Errorf("%s, %d terms: the error is %d bytes long", s.name, n, len(err.Error()))
			}
		}
	}
}

// megabyteTerms returns the number of terms that makes expr about 1 MB
// long.
func megabyteTerms(expr func(int) string) int {
	per := float64(len(expr(1000))) / 1000
	return int(float64(1<<20)/per) + 1
}

// checkHugeProgram checks that insns assembles and keeps its jumps within
// reach once the kernel has expanded it.
func checkHugeProgram(t *testing.T, name string, n int, insns asm.Instructions) {
	t.Helper()
	if _, err := insns.Assemble(); err != nil {
		t.Errorf("%s, %d terms: the program does not assemble: %v", name, n, err)
	}
	if i, d := farJump(insns); i >= 0 {
		t.Errorf("%s, %d terms: a jump across %d expanded instructions", name, n, d)
	}
}

// TestCompileHugeLoads loads the largest program of each shape: the
// verifier must accept each, which checks xlatedLen against the running
// kernel.
func TestCompileHugeLoads(t *testing.T) {
	testutil.RequirePrivileged(t)
	if testing.Short() {
		t.Skip("loads programs of up to 40,000 instructions: skipped in -short mode")
	}
	for _, s := range hugeShapes {
		max, ok := hugeMax[s.name]
		if !ok {
			continue
		}
		insns, err := Compile(s.expr(max), packet.LinkEthernet)
		if err != nil {
			t.Errorf("%s, %d terms: %v", s.name, max, err)
			continue
		}
		p, err := sockfilter.Load(insns, nil)
		if err != nil {
			t.Errorf("%s, %d terms: the kernel refuses the program of %d instructions: %v", s.name, max, len(insns), err)
			continue
		}
		p.Close()
	}
}
