package pcapfilter

import (
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// protochainExprs are the protochain expressions the kernel tests run:
// they are not in testdata/expressions.txt, whose tests convert libpcap's
// programs for the kernel, which cannot run the backward jump of
// libpcap's walk.
var protochainExprs = []string{
	"protochain 6", "ip protochain 17", "ip6 protochain 58", "ip6 protochain 44",
	"ip protochain 51", "protochain 6 and tcp port 80", "not protochain 17 and ip6",
	"mpls and ip protochain 6", "pppoes and ip6 protochain 6", "vlan and protochain 6",
}

// TestProtochainKernel loads Compile's program of each protochain
// expression (its walk unrolled: see protochain.go), runs it under
// sockfilter.Program.Test on GenFrames' and GenMoreFrames' frames, and
// compares its verdicts with libpcap's program, run with libpcap's
// user-space semantics (testutil.ClassicVM); then splices it for every
// target of TestSpliceDifferential and compares those programs' verdicts
// too.
func TestProtochainKernel(t *testing.T) {
	testutil.RequirePrivileged(t)
	lp := testutil.NewLibpcap(t, testutil.LinkEthernet)
	frames := append(testutil.GenFrames(1, exprDiffFrames), testutil.GenMoreFrames(2, exprDiffFrames)...)
	layout, cast, haveTargets := kernelTargets()
	for _, expr := range protochainExprs {
		t.Run(expr, func(t *testing.T) {
			classic, err := lp.Compile(expr)
			if err != nil {
				t.Fatal(err)
			}
			ref := testutil.ClassicVM(t, classic)
			want := make([]int, len(frames))
			for i, f := range frames {
				want[i] = ref(f)
			}
			insns, err := Compile(expr, packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			prog := loadForTest(t, insns, func() (*sockfilter.Program, error) { return sockfilter.Load(insns, nil) })
			runs, accepted, bad := 0, 0, 0
			for i, f := range frames {
				if want[i] == testutil.NoVerdict {
					continue
				}
				got, err := prog.Test(f, packet.LinkEthernet)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				runs++
				if want[i] != 0 {
					accepted++
				}
				if (got != 0) != (want[i] != 0) {
					if bad++; bad <= 3 {
						t.Errorf("frame %d (% x): Compile's program returns %#x, libpcap's %d", i, f, got, want[i])
					}
				}
			}
			if accepted == 0 || accepted == runs {
				t.Errorf("libpcap accepts %d of %d frames: the corpus does not tell the verdicts apart", accepted, runs)
			}
			if !haveTargets {
				t.Logf("%d frames agree (libpcap accepts %d); no kernel BTF for the splice targets", runs-bad, accepted)
				return
			}
			for _, tg := range spliceTargets(layout, cast) {
				if tg.link != packet.LinkEthernet {
					continue
				}
				sp, err := CompileSplice(expr, tg.link, &tg.opts)
				if err != nil {
					t.Errorf("%s: %v", tg.name, err)
					continue
				}
				fd, err := loadTyped(t, tg.progType, tg.wrap(sp))
				if err != nil {
					t.Errorf("%s: %v", tg.name, err)
					continue
				}
				sbad := 0
				for i, f := range frames {
					if want[i] == testutil.NoVerdict {
						continue
					}
					data := runInput(tg.link, f)
					ret, err := spliceRun(fd, data)
					if errTooShort(err, data) {
						continue
					}
					if err != nil {
						t.Fatalf("%s: frame %d: %v", tg.name, i, err)
					}
					w := tg.noMatch
					if want[i] != 0 {
						w = tg.match
					}
					if ret != w {
						if sbad++; sbad <= 3 {
							t.Errorf("%s: frame %d (% x): returns %d, want %d", tg.name, i, f, ret, w)
						}
					}
				}
			}
			t.Logf("%d frames agree with libpcap (it accepts %d); %d instructions", runs-bad, accepted, len(insns))
		})
	}
}
