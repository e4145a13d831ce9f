package pcapfilter_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// sampleExpr is one line of a file of testdata/sample: an expression that
// libpcap 1.10 compiles, or, after "!", one that it refuses on a capture
// file, which Compile must then refuse too.
type sampleExpr struct {
	file, expr string
	line       int
	refused    bool
}

// sampleExprs reads the expressions of testdata/sample/*.txt: one a line,
// blank lines and lines starting with # skipped.
func sampleExprs(t *testing.T) []sampleExpr {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "sample", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []sampleExpr
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for line := range strings.Lines(string(b)) {
			n++
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' {
				continue
			}
			e := sampleExpr{file: filepath.Base(name), line: n, expr: line}
			if rest, ok := strings.CutPrefix(line, "!"); ok {
				e.expr, e.refused = strings.TrimSpace(rest), true
			}
			exprs = append(exprs, e)
		}
	}
	return exprs
}

// sampleFrames are the frames the sample is run on: GenFrames' and
// GenMoreFrames', and the named frames of testdata/frames.
func sampleFrames(t *testing.T) [][]byte {
	frames := testutil.GenFrames(31, 1500)
	frames = append(frames, testutil.GenMoreFrames(32, 2500)...)
	for _, f := range testutil.FramesOf(t, testutil.LinkEthernet) {
		frames = append(frames, f.Data)
	}
	return frames
}

// TestCompileSample compiles every expression of the sample of everyday
// filters (testdata/sample: the examples of pcap-filter(7) and tcpdump(8),
// cheat sheets, and the grammar beyond IP), for Ethernet, as a capture
// file would be filtered (CompileOptions' Offline), and checks that
// Compile refuses exactly what libpcap refuses and that, in the
// interpreter, each program gives libpcap's verdict on every frame of a
// corpus with the encapsulations the sample names. It needs no
// privileges: libpcap's programs come from `tcpdump -ddd -r`.
func TestCompileSample(t *testing.T) {
	testutil.RequireTool(t, "tcpdump")
	exprs := sampleExprs(t)
	if len(exprs) == 0 {
		t.Fatal("no expressions in testdata/sample")
	}
	lp := testutil.NewLibpcap(t, testutil.LinkEthernet)
	frames := sampleFrames(t)
	compiled := 0
	for _, e := range exprs {
		t.Run(e.expr, func(t *testing.T) {
			classic, lerr := lp.Compile(e.expr)
			if lerr != nil && strings.Contains(lerr.Error(), "expression rejects all packets") {
				classic, lerr = []bpf.Instruction{bpf.RetConstant{Val: 0}}, nil
			}
			insns, err := pcapfilter.CompileWith(e.expr, packet.LinkEthernet, &pcapfilter.CompileOptions{Offline: true})
			switch {
			case e.refused && lerr == nil:
				t.Fatalf("%s:%d is marked refused, but libpcap compiles it", e.file, e.line)
			case e.refused && err == nil:
				t.Fatalf("%s:%d: Compile accepts what libpcap refuses (%v)", e.file, e.line, lerr)
			case e.refused:
				return
			case lerr != nil:
				t.Fatalf("%s:%d: libpcap refuses it: %v (mark the line with !)", e.file, e.line, lerr)
			case err != nil:
				t.Fatalf("%s:%d: Compile refuses what libpcap compiles: %v", e.file, e.line, err)
			}
			compiled++
			v, err := vm.New(insns, nil)
			if err != nil {
				t.Fatal(err)
			}
			libpcap := testutil.ClassicVM(t, classic)
			bad, accepted := 0, 0
			for i, f := range frames {
				got, err := v.RunFrame(f, packet.LinkEthernet)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				want := libpcap(f)
				if want == testutil.NoVerdict {
					continue // libpcap's protochain walk would not end
				}
				if want != 0 {
					accepted++
				}
				if (got != 0) != (want != 0) {
					if bad++; bad <= 3 {
						t.Errorf("frame %d (% x): Compile's program returns %#x in the VM, libpcap's %d", i, f, got, want)
					}
				}
			}
			if bad > 0 {
				t.Errorf("%s:%d: %d disagreements of %d frames; program:\n%v", e.file, e.line, bad, len(frames), insns)
			}
		})
	}
	t.Logf("%d expressions, %d compiled and compared on %d frames", len(exprs), compiled, len(frames))
}
