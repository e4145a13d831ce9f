package vm_test

import (
	"math"
	"testing"
	"time"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// BenchmarkExpressions runs every expression of the test list over a
// corpus of generated Ethernet frames, in one run:
//
//   - vm: pcapfilter.Compile's program in this VM (RunFrame);
//   - xnet: libpcap's classic program for the same expression
//     (`tcpdump -ddd`, which needs no privileges) in
//     golang.org/x/net/bpf's VM;
//   - kernel: the compiled program under the kernel's BPF_PROG_TEST_RUN
//     (sockfilter.Program.Test, JIT), a reference that includes a system
//     call per frame; it needs privileges.
//
// An operation runs every expression on the corpus benchPasses times in a
// row, as a filter runs over the frames of a capture file. ns/frame is the
// mean over all runs; geomean-ns/frame is the geometric mean over the
// expressions of each one's ns/frame, whose ratio between vm and xnet is
// the geometric mean of the speed-ups; interleaved runs both VMs on each
// expression in turn and reports that speed-up. Run it with
//
//	go test ./sockfilter/vm -run '^$' -bench Expressions -benchtime 3s
func BenchmarkExpressions(b *testing.B) {
	frames := testutil.GenFrames(3, benchFrames)
	exprs := testutil.Expressions(b)
	lp := testutil.NewLibpcap(b, testutil.LinkEthernet)
	vms := make([]*vm.VM, len(exprs))
	classic := make([]*bpf.VM, len(exprs))
	for i, expr := range exprs {
		insns, err := pcapfilter.Compile(expr, packet.LinkEthernet)
		if err != nil {
			b.Fatalf("%s: %v", expr, err)
		}
		if vms[i], err = vm.New(insns, nil); err != nil {
			b.Fatalf("%s: %v", expr, err)
		}
		prog, err := lp.Compile(expr)
		if err != nil {
			b.Fatal(err)
		}
		if classic[i], err = bpf.NewVM(negateAsMul(prog)); err != nil {
			b.Fatalf("%s: x/net/bpf: %v", expr, err)
		}
		for _, f := range frames {
			got, err := vms[i].RunFrame(f, packet.LinkEthernet)
			want, err2 := classic[i].Run(f)
			if err != nil || err2 != nil || (got != 0) != (want != 0) {
				b.Fatalf("%s: frame % x: the VM returns %#x, %v; libpcap's program %d, %v", expr, f, got, err, want, err2)
			}
		}
	}
	b.Run("vm", func(b *testing.B) {
		benchEach(b, len(exprs), len(frames), func(i int) {
			for _, f := range frames {
				if _, err := vms[i].RunFrame(f, packet.LinkEthernet); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("xnet", func(b *testing.B) {
		benchEach(b, len(exprs), len(frames), func(i int) {
			for _, f := range frames {
				if _, err := classic[i].Run(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("interleaved", func(b *testing.B) {
		// Both VMs on each expression in turn, so that the load of a
		// shared machine weighs on both alike: the speed-up is the
		// geometric mean of each expression's ratio.
		b.ReportAllocs()
		spentVM := make([]time.Duration, len(exprs))
		spentX := make([]time.Duration, len(exprs))
		for b.Loop() {
			for i := range exprs {
				start := time.Now()
				for range benchPasses {
					for _, f := range frames {
						vms[i].RunFrame(f, packet.LinkEthernet)
					}
				}
				mid := time.Now()
				for range benchPasses {
					for _, f := range frames {
						classic[i].Run(f)
					}
				}
				spentVM[i] += mid.Sub(start)
				spentX[i] += time.Since(mid)
			}
		}
		logVM, logX := 0.0, 0.0
		for i := range exprs {
			logVM += math.Log(float64(spentVM[i]))
			logX += math.Log(float64(spentX[i]))
		}
		n := float64(len(exprs))
		perFrame := float64(b.N * len(frames) * benchPasses)
		b.ReportMetric(math.Exp(logVM/n)/perFrame, "vm-geomean-ns/frame")
		b.ReportMetric(math.Exp(logX/n)/perFrame, "xnet-geomean-ns/frame")
		b.ReportMetric(math.Exp((logX-logVM)/n), "speedup")
	})
	b.Run("kernel", func(b *testing.B) {
		testutil.RequirePrivileged(b)
		progs := make([]*sockfilter.Program, len(exprs))
		for i, expr := range exprs {
			insns, _ := pcapfilter.Compile(expr, packet.LinkEthernet)
			progs[i] = loadProgram(b, insns)
		}
		benchEach(b, len(exprs), len(frames), func(i int) {
			for _, f := range frames {
				if _, err := progs[i].Test(f, packet.LinkEthernet); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// benchFrames is the size of the benchmark's frame corpus, and
// benchPasses the number of times an operation runs it for each
// expression.
const (
	benchFrames = 256
	benchPasses = 8
)

// benchEach runs run(i) for each of n expressions in every operation and
// reports ns/frame and the geometric mean over the expressions.
func benchEach(b *testing.B, n, frames int, run func(i int)) {
	b.ReportAllocs()
	spent := make([]time.Duration, n)
	ops := 0
	for b.Loop() {
		for i := range n {
			start := time.Now()
			for range benchPasses {
				run(i)
			}
			spent[i] += time.Since(start)
		}
		ops++
	}
	var total time.Duration
	logSum := 0.0
	for _, d := range spent {
		total += d
		logSum += math.Log(float64(d) / float64(ops*frames*benchPasses))
	}
	b.ReportMetric(float64(total)/float64(ops*n*frames*benchPasses), "ns/frame")
	b.ReportMetric(math.Exp(logSum/float64(n)), "geomean-ns/frame")
}

// negateAsMul replaces NegateA, which golang.org/x/net/bpf's VM does not
// run, with the equal multiplication by 0xffffffff.
func negateAsMul(insns []bpf.Instruction) []bpf.Instruction {
	out := append([]bpf.Instruction(nil), insns...)
	for i, ins := range out {
		if _, ok := ins.(bpf.NegateA); ok {
			out[i] = bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: 0xffffffff}
		}
	}
	return out
}

// BenchmarkRun measures one run of small programs in each view.
func BenchmarkRun(b *testing.B) {
	insns, err := pcapfilter.Compile("tcp port 80", packet.LinkEthernet)
	if err != nil {
		b.Fatal(err)
	}
	v, err := vm.New(insns, nil)
	if err != nil {
		b.Fatal(err)
	}
	frame := testutil.GenFrames(1, 1)[0]
	b.Run("RunFrame", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v.RunFrame(frame, packet.LinkEthernet)
		}
	})
	b.Run("RunTest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v.RunTest(frame, packet.LinkEthernet)
		}
	})
	loop := newVM(b, "r0 = 0\nr1 = 1000\nloop:\nr0 += r1\nr1 -= 1\nif r1 != 0x0 goto loop\nexit\n", nil)
	b.Run("RunMemory/loop3000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			loop.RunMemory(nil)
		}
	})
}
