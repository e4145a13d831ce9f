package vm_test

import (
	"strings"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// The kernel differential tests run the same programs in the kernel, under
// (*sockfilter.Program).Test, and in the VM under RunTest, the view of the
// frame the kernel's test run has, and want the same r0 every time. They
// need privileges to load programs.

// kernelDiffFrames is the number of generated frames each expression runs
// on.
const kernelDiffFrames = 1500

// loadProgram loads insns into the kernel, closing it at the end of t.
func loadProgram(t testing.TB, insns asm.Instructions) *sockfilter.Program {
	t.Helper()
	p, err := sockfilter.Load(insns, nil)
	if err != nil {
		t.Fatalf("load:\n%v\n%v", insns, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestKernelExpressions compiles every expression of the test list with
// pcapfilter.Compile, for Ethernet and raw IP links, and runs it on the
// generated frames in the kernel and in the VM: 0 disagreements.
func TestKernelExpressions(t *testing.T) {
	testutil.RequirePrivileged(t)
	eth := testutil.GenFrames(7, kernelDiffFrames)
	frames := map[packet.LinkType][][]byte{packet.LinkEthernet: eth, packet.LinkRawIP: rawFrames(eth)}
	runs, skipped := 0, 0
	for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
		for _, expr := range testutil.Expressions(t) {
			t.Run(link.String()+"/"+expr, func(t *testing.T) {
				insns, err := pcapfilter.Compile(expr, link)
				if err != nil {
					t.Skipf("compile: %v", err)
				}
				prog := loadProgram(t, insns)
				v, err := vm.New(insns, &vm.Options{Kernel: true})
				if err != nil {
					t.Fatal(err)
				}
				bad := 0
				for i, f := range frames[link] {
					want, err := prog.Test(f, link)
					if err != nil {
						skipped++
						continue
					}
					runs++
					got, err := v.RunTest(f, link)
					if err != nil || got != want {
						if bad++; bad <= 3 {
							t.Errorf("frame %d (% x): VM %#x, %v; kernel %#x", i, f, got, err, want)
						}
					}
				}
				if bad > 0 {
					t.Errorf("%d disagreements; program:\n%v", bad, insns)
				}
			})
		}
	}
	t.Logf("%d runs compared, %d frames the kernel's test run refused", runs, skipped)
}

// randomPrograms is the number of random programs TestKernelRandomPrograms
// generates, and randomFrames the frames each runs on.
const (
	randomPrograms = 5000
	randomFrames   = 8
)

// TestKernelRandomPrograms generates random programs (progGen); those the
// kernel's verifier accepts run in the kernel and in the VM on random
// frames, and r0 must agree.
func TestKernelRandomPrograms(t *testing.T) {
	testutil.RequirePrivileged(t)
	frames := testutil.GenFrames(11, 400)
	loaded, refused, runs, bad := 0, 0, 0, 0
	refusals := map[string]int{}
	for seed := range uint64(randomPrograms) {
		insns := newProgGen(seed).generate()
		prog, err := sockfilter.Load(insns, nil)
		if err != nil {
			refused++
			msg := err.Error()
			if i := strings.LastIndex(msg, ": "); i >= 0 {
				msg = msg[i+2:]
			}
			refusals[msg]++
			continue
		}
		loaded++
		v, err := vm.New(insns, &vm.Options{Kernel: true})
		if err != nil {
			t.Fatalf("seed %d: the kernel loads it, vm.New refuses it: %v\n%v", seed, err, insns)
		}
		for i := range randomFrames {
			f := frames[(int(seed)*randomFrames+i)%len(frames)]
			want, err := prog.Test(f, packet.LinkEthernet)
			if err != nil {
				continue
			}
			runs++
			got, err := v.RunTest(f, packet.LinkEthernet)
			if err != nil || got != want {
				if bad++; bad <= 5 {
					t.Errorf("seed %d, frame % x: VM %#x, %v; kernel %#x\n%v", seed, f, got, err, want, insns)
				}
			}
		}
		prog.Close()
	}
	t.Logf("%d programs loaded, %d refused by the verifier; %d runs compared, %d disagreements", loaded, refused, runs, bad)
	t.Logf("refusals: %v", refusals)
	if loaded < randomPrograms/2 {
		t.Errorf("the verifier refused %d of %d programs: %v", refused, randomPrograms, refusals)
	}
}
