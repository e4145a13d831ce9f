package pcapfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/kconv"
	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	pvm "github.com/purebpf/purebpf/sockfilter/vm"
)

const (
	costFrames = 200 // frames of the corpus
	costRepeat = 100 // BPF_PROG_TEST_RUN repeats per frame
)

// costPair is an expression's two programs under BPF_PROG_TEST_RUN:
// Compile's as a socket filter, and libpcap's as the kernel converts it
// (kconv.Loadable) as a SCHED_CLS program, whose test run, like a packet
// socket, starts the packet at the link-layer header.
type costPair struct {
	ours, kernel int // program fds
	// lens are the two programs' instruction counts.
	oursLen, kernelLen int
	// live is Compile's program in sockfilter/vm if it reads `len`,
	// which under BPF_PROG_TEST_RUN counts from the network header.
	live *pvm.VM
}

// loadCostPair loads expr's two programs, closed at the end of tb.
func loadCostPair(tb testing.TB, lp *testutil.Libpcap, expr string) costPair {
	tb.Helper()
	insns, err := Compile(expr, packet.LinkEthernet)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := sockfilter.Load(insns, nil)
	if err != nil {
		tb.Fatalf("%q: %v", expr, err)
	}
	tb.Cleanup(func() { p.Close() })
	classic, err := lp.Compile(expr)
	if err != nil {
		tb.Fatal(err)
	}
	conv, err := kconv.Loadable(classic)
	if err != nil {
		tb.Fatalf("%q: %v", expr, err)
	}
	kfd, err := loadRaw(progSchedCLS, conv.Bytes(binary.NativeEndian))
	if err != nil {
		tb.Fatalf("%q: libpcap's program as the kernel converts it: %v", expr, err)
	}
	tb.Cleanup(func() { unix.Close(kfd) })
	full, err := kconv.Convert(classic, nil)
	if err != nil {
		tb.Fatal(err)
	}
	pair := costPair{ours: p.FD(), kernel: kfd, oursLen: slots(insns), kernelLen: len(full.Insns)}
	if readsLen(insns) {
		if pair.live, err = pvm.New(insns, nil); err != nil {
			tb.Fatal(err)
		}
	}
	return pair
}

// slots returns the 8-byte slots of insns.
func slots(insns asm.Instructions) int {
	n := 0
	for _, ins := range insns {
		n += ins.Slots()
	}
	return n
}

// loadRaw loads the encoded instructions code as a program of type typ.
func loadRaw(typ uint32, code []byte) (int, error) {
	attr := sys.ProgLoadAttr{
		ProgType: typ,
		InsnCnt:  uint32(len(code) / 8),
		Insns:    sys.SlicePointer(code),
		License:  sys.StringPointer("GPL"),
	}
	fd, err := sys.ProgLoad(&attr)
	if err != nil {
		log := make([]byte, 1<<20)
		attr.LogLevel, attr.LogSize, attr.LogBuf = sys.BPF_LOG_LEVEL1, uint32(len(log)), sys.SlicePointer(log)
		if fd2, err2 := sys.ProgLoad(&attr); err2 == nil {
			return fd2, nil
		}
		return -1, fmt.Errorf("load: %w\nverifier log (tail):\n%s", err, logTail(unix.ByteSliceToString(log), 2000))
	}
	return fd, nil
}

// testRun runs the program fd repeat times on data and returns its
// return value and the kernel's mean time of a run, in ns.
func testRun(fd int, data []byte, repeat uint32) (uint32, uint32, error) {
	for {
		attr := sys.ProgTestRunAttr{ProgFD: uint32(fd), DataSizeIn: uint32(len(data)), DataIn: sys.SlicePointer(data), Repeat: repeat}
		err := sys.ProgTestRun(&attr)
		if errors.Is(err, unix.EINTR) {
			continue // the programs have no side effects: run them again
		}
		if err != nil {
			return 0, 0, err
		}
		return attr.Retval, attr.Duration, nil
	}
}

// costCorpus returns the frames of testutil.GenFrames that
// BPF_PROG_TEST_RUN accepts.
func costCorpus(tb testing.TB, fd int) [][]byte {
	tb.Helper()
	var frames [][]byte
	for _, f := range testutil.GenFrames(16, 4*costFrames) {
		if _, _, err := testRun(fd, f, 1); err == nil {
			frames = append(frames, f)
		}
		if len(frames) == costFrames {
			break
		}
	}
	return frames
}

// zeroProgram is `r0 = 0; exit`.
var zeroProgram = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Exit()}

// checkJIT skips tb unless the JIT compiled p: the benchmark is of what
// the kernel runs, compiled. (net.core.bpf_jit_enable is not visible
// from a network namespace other than the first.)
func checkJIT(tb testing.TB, p *sockfilter.Program) {
	tb.Helper()
	info, err := p.Info()
	if err != nil {
		tb.Fatal(err)
	}
	if info.JITSize == 0 {
		b, err := os.ReadFile("/proc/sys/net/core/bpf_jit_enable")
		tb.Skipf("the BPF JIT is off (net.core.bpf_jit_enable: %q, %v)", b, err)
	}
}

// BenchmarkKernelCost measures, for each expression of
// testdata/expressions.txt, the kernel's run time per frame of Compile's
// program and of libpcap's classic program as the kernel converts it
// (internal/kconv, loaded in the form kconv.Loadable describes), each
// frame of a corpus of testutil.GenFrames run costRepeat times under
// BPF_PROG_TEST_RUN with the JIT on, the two programs in turn. It
// checks that the two give the same verdict on every frame (but for
// Compile's programs that read `len`, which under the test run counts
// from the network header; TestKconvLoadableVerdicts checks those), and
// reports, per expression, ns/frame of each (ours-ns, kernel-ns) and their
// ratio, and the fixed cost of a test run: the time of `r0 = 0; exit`
// for each program type, run in turn with the two. The last
// sub-benchmark, geomean, reports the geometric mean of the ratios over
// the expressions, the worst, and floor-ratio, the geometric mean a
// program that cost nothing beyond the fixed cost would get (fixed /
// kernel-ns), and prints the table. The kernel reports a run's mean time in whole nanoseconds.
//
//	ip netns exec NAME go test ./sockfilter/pcapfilter -run '^$' -bench KernelCost -benchtime 20x
func BenchmarkKernelCost(b *testing.B) {
	testutil.RequirePrivileged(b)
	lp := testutil.NewLibpcap(b, testutil.LinkEthernet)
	zs, err := sockfilter.Load(zeroProgram, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer zs.Close()
	checkJIT(b, zs)
	zcode, err := zeroProgram.Assemble()
	if err != nil {
		b.Fatal(err)
	}
	ztc, err := loadRaw(progSchedCLS, zcode)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(ztc)
	frames := costCorpus(b, zs.FD())

	// run returns the mean ns per frame of fds over the corpus, in turn.
	run := func(b *testing.B, live *pvm.VM, fds ...int) []float64 {
		sum := make([]float64, len(fds))
		verdict := make([]uint32, len(fds))
		for _, f := range frames {
			for i, fd := range fds {
				v, d, err := testRun(fd, f, costRepeat)
				if err != nil {
					b.Fatalf("test run: %v", err)
				}
				sum[i] += float64(d)
				verdict[i] = v
			}
			if live == nil && (verdict[0] != 0) != (verdict[1] != 0) {
				b.Fatalf("the programs disagree on frame %x: Compile's returns %d, libpcap's %d", f, verdict[0], verdict[1])
			}
		}
		for i := range sum {
			sum[i] /= float64(len(frames))
		}
		return sum
	}
	type result struct {
		expr               string
		ours, kernel       float64
		zsock, ztc         float64 // `r0 = 0; exit`, run with them
		oursLen, kernelLen int
	}
	var results []result
	for _, expr := range testutil.Expressions(b) {
		pair := loadCostPair(b, lp, expr)
		b.Run(expr, func(b *testing.B) {
			var s [4]float64
			for b.Loop() {
				r := run(b, pair.live, pair.ours, pair.kernel, zs.FD(), ztc)
				for i := range s {
					s[i] += r[i]
				}
			}
			n := float64(b.N)
			r := result{expr, s[0] / n, s[1] / n, s[2] / n, s[3] / n, pair.oursLen, pair.kernelLen}
			b.ReportMetric(r.ours, "ours-ns/frame")
			b.ReportMetric(r.kernel, "kernel-ns/frame")
			b.ReportMetric(r.ours/r.kernel, "ratio")
			b.ReportMetric(r.zsock, "fixed-ns/frame")
			results = slices.DeleteFunc(results, func(x result) bool { return x.expr == expr })
			results = append(results, r)
		})
	}
	b.Run("geomean", func(b *testing.B) {
		for b.Loop() {
		}
		var lr, lfloor, netOurs, netKernel, fixS, fixT float64
		worst := results[0]
		var t strings.Builder
		fmt.Fprintf(&t, "%-60s %6s %6s %8s %8s %6s %7s %6s\n", "expression", "insns", "kconv", "ours-ns", "pcap-ns", "ratio", "net-ns", "fixed")
		for _, r := range results {
			lr += math.Log(r.ours / r.kernel)
			lfloor += math.Log(r.zsock / r.kernel)
			netOurs += r.ours - r.zsock
			netKernel += r.kernel - r.ztc
			fixS += r.zsock
			fixT += r.ztc
			if r.ours/r.kernel > worst.ours/worst.kernel {
				worst = r
			}
			fmt.Fprintf(&t, "%-60s %6d %6d %8.1f %8.1f %6.3f %+7.1f %6.1f\n", r.expr, r.oursLen, r.kernelLen, r.ours, r.kernel, r.ours/r.kernel, r.ours-r.kernel, r.zsock)
		}
		n := float64(len(results))
		fmt.Fprintf(&t, "fixed cost of a test run (r0 = 0; exit), mean: socket filter %.1f ns, SCHED_CLS %.1f ns\n", fixS/n, fixT/n)
		fmt.Fprintf(&t, "over %d expressions: geomean ratio %.3f, worst %.3f (%s)\n", len(results), math.Exp(lr/n), worst.ours/worst.kernel, worst.expr)
		fmt.Fprintf(&t, "a program costing nothing beyond the test run would get a geomean ratio of %.3f\n", math.Exp(lfloor/n))
		fmt.Fprintf(&t, "mean cost net of the fixed cost: Compile's %.1f ns, the kernel's conversion of libpcap's %.1f ns\n", netOurs/n, netKernel/n)
		os.Stdout.WriteString(t.String()) // b.Log would truncate the table
		b.ReportMetric(math.Exp(lr/n), "geomean-ratio")
		b.ReportMetric(worst.ours/worst.kernel, "worst-ratio")
		b.ReportMetric(math.Exp(lfloor/n), "floor-ratio")
		b.ReportMetric(fixS/n, "fixed-ns")
	})
}

// TestKconvLoadableVerdicts checks the form BenchmarkKernelCost times:
// for every expression, libpcap's program converted by kconv.Loadable
// and run as a SCHED_CLS program gives libpcap's verdict (the classic
// VM's) on every frame of the corpus, and Compile's program the same
// verdict under Program.Test.
func TestKconvLoadableVerdicts(t *testing.T) {
	testutil.RequirePrivileged(t)
	lp := testutil.NewLibpcap(t, testutil.LinkEthernet)
	zs, err := sockfilter.Load(zeroProgram, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zs.Close()
	frames := costCorpus(t, zs.FD())
	for _, expr := range testutil.Expressions(t) {
		pair := loadCostPair(t, lp, expr)
		classic, err := lp.Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		vm := testutil.ClassicVM(t, classic)
		for _, f := range frames {
			want := vm(f) != 0
			k, _, err := testRun(pair.kernel, f, 1)
			if err != nil {
				t.Fatal(err)
			}
			o, _, err := testRun(pair.ours, f, 1)
			if err != nil {
				t.Fatal(err)
			}
			if pair.live != nil {
				// `len` counts from the network header under the test
				// run: Compile's verdict there is the VM's under
				// RunTest, and on a packet socket (RunFrame) libpcap's.
				tv, err := pair.live.RunTest(f, packet.LinkEthernet)
				if err != nil {
					t.Fatal(err)
				}
				if tv != o {
					t.Errorf("%q on %x: Compile's program returns %d under the test run, %d in vm.RunTest", expr, f, o, tv)
				}
				if o, err = pair.live.RunFrame(f, packet.LinkEthernet); err != nil {
					t.Fatal(err)
				}
			}
			if (k != 0) != want || (o != 0) != want {
				t.Errorf("%q on %x: libpcap %v, its kernel conversion %d, Compile's %d", expr, f, want, k, o)
			}
		}
	}
}
