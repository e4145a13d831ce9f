package vm_test

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

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
// expression in turn, timed on the thread's CPU clock, and reports that
// speed-up (see benchInterleaved), the figure to quote on a shared
// machine. Run it with
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
		benchInterleaved(b, exprs, len(frames), func(i int) {
			for _, f := range frames {
				vms[i].RunFrame(f, packet.LinkEthernet)
			}
		}, func(i int) {
			for _, f := range frames {
				classic[i].Run(f)
			}
		})
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

// benchInterleaved runs both VMs on each of n expressions in turn, vm(i)
// then xnet(i) benchPasses times over the corpus of frames, in every
// operation, so that the load of a shared machine weighs on both alike.
// It times each of those runs on the thread's CPU clock
// (CLOCK_THREAD_CPUTIME_ID), which leaves out the time other processes
// take the CPU, and reports for each VM the geometric mean over the
// expressions of the median ns/frame, and of the 10th percentile (the
// runs other load disturbed least); the speed-ups are their ratios, the
// geometric means of each expression's. wall-speedup is the same from
// the total wall time of each expression's runs, as a check. The
// samples it keeps allocate: the vm sub-benchmark and TestNoAllocs show
// that a run does not. With -test.v it logs each expression's figures.
func benchInterleaved(b *testing.B, exprs []string, frames int, vm, xnet func(i int)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n := len(exprs)
	samplesVM := make([][]float64, n)
	samplesX := make([][]float64, n)
	wallVM := make([]time.Duration, n)
	wallX := make([]time.Duration, n)
	perRun := float64(frames * benchPasses)
	for b.Loop() {
		for i := range n {
			w0, c0 := time.Now(), threadCPU()
			for range benchPasses {
				vm(i)
			}
			w1, c1 := time.Now(), threadCPU()
			for range benchPasses {
				xnet(i)
			}
			w2, c2 := time.Now(), threadCPU()
			samplesVM[i] = append(samplesVM[i], float64(c1-c0)/perRun)
			samplesX[i] = append(samplesX[i], float64(c2-c1)/perRun)
			wallVM[i] += w1.Sub(w0)
			wallX[i] += w2.Sub(w1)
		}
	}
	var logMedVM, logMedX, logMinVM, logMinX, logWall float64
	type row struct {
		expr   string
		vm, xn float64
	}
	var rows []row
	for i := range n {
		slices.Sort(samplesVM[i])
		slices.Sort(samplesX[i])
		medVM, medX := samplesVM[i][len(samplesVM[i])/2], samplesX[i][len(samplesX[i])/2]
		logMedVM += math.Log(medVM)
		logMedX += math.Log(medX)
		logMinVM += math.Log(fastest(samplesVM[i]))
		logMinX += math.Log(fastest(samplesX[i]))
		logWall += math.Log(float64(wallX[i]) / float64(wallVM[i]))
		rows = append(rows, row{exprs[i], medVM, medX})
	}
	if testing.Verbose() {
		// The table of each expression's median ns/frame, slowest
		// speed-up first.
		slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.xn/a.vm, b.xn/b.vm) })
		var t strings.Builder
		for _, r := range rows {
			fmt.Fprintf(&t, "%7.1f %7.1f %5.2f  %s\n", r.vm, r.xn, r.xn/r.vm, r.expr)
		}
		b.Logf("median ns/frame: vm, xnet, speed-up, expression\n%s", t.String())
	}
	k := float64(n)
	b.ReportMetric(math.Exp(logMedVM/k), "vm-ns/frame")
	b.ReportMetric(math.Exp(logMedX/k), "xnet-ns/frame")
	b.ReportMetric(math.Exp((logMedX-logMedVM)/k), "speedup")
	b.ReportMetric(math.Exp(logMinVM/k), "vm-q10-ns/frame")
	b.ReportMetric(math.Exp(logMinX/k), "xnet-q10-ns/frame")
	b.ReportMetric(math.Exp((logMinX-logMinVM)/k), "q10-speedup")
	b.ReportMetric(math.Exp(logWall/k), "wall-speedup")
}

// fastest returns the 10th percentile of sorted samples, leaving out
// those the thread's clock did not see advance.
func fastest(sorted []float64) float64 {
	i, _ := slices.BinarySearch(sorted, math.SmallestNonzeroFloat64)
	positive := sorted[i:]
	if len(positive) == 0 {
		return math.NaN()
	}
	return positive[len(positive)/10]
}

// threadCPU returns the CPU time the calling thread has used.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
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
