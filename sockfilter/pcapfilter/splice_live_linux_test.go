package pcapfilter

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/btf"
	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The ProbeReadKernel form, live: a raw tracepoint program on
// net_dev_queue (include/trace/events/net.h: __dev_queue_xmit fires it
// with the struct sk_buff it transmits) runs the spliced filter on every
// frame a packet socket sends on lo in a network namespace of the test's
// own, and counts the frames it sees and those that match in an array
// map. Raw tracepoints are what this kind of kernel offers: on the test
// machine kprobes are compiled out and BTF-attached tracing programs
// (fentry, tp_btf) refused; TestSpliceKprobeLoads still loads the same
// filter in a kprobe program. The tracepoint fires for every network
// namespace: the program counts only the frames whose skb->mark is the
// test's, which the sending socket sets with SO_MARK.

// liveMark is the mark the test's frames carry.
const liveMark = 0x5bf1_7e57

// rawTracepointOpen wraps bpf(2) BPF_RAW_TRACEPOINT_OPEN: it attaches the
// program fd to the tracepoint name until the returned fd is closed.
func rawTracepointOpen(name string, fd int) (int, error) {
	const cmdRawTracepointOpen sys.Cmd = 17
	cname := append([]byte(name), 0)
	attr := struct {
		name   sys.Pointer
		progFD uint32
		_      uint32
		cookie uint64
	}{name: sys.SlicePointer(cname), progFD: uint32(fd)}
	r, err := sys.BPF(cmdRawTracepointOpen, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(cname)
	return int(r), err
}

// newCountMap returns an array map of two u64 counters, closed at the end
// of t.
func newCountMap(t testing.TB) int {
	t.Helper()
	fd, err := sys.MapCreate(&sys.MapCreateAttr{MapType: sys.BPF_MAP_TYPE_ARRAY, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	if err != nil {
		t.Fatalf("create map: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// counter returns counter key of the map fd, setting it to 0.
func counter(t testing.TB, fd int, key uint32) uint64 {
	t.Helper()
	var v, zero uint64
	attr := sys.MapElemAttr{MapFD: uint32(fd), Key: sys.NewPointer(unsafe.Pointer(&key)), Value: sys.NewPointer(unsafe.Pointer(&v))}
	if err := sys.MapLookupElem(&attr); err != nil {
		t.Fatalf("map lookup: %v", err)
	}
	attr.Value = sys.NewPointer(unsafe.Pointer(&zero))
	if err := sys.MapUpdateElem(&attr); err != nil {
		t.Fatalf("map update: %v", err)
	}
	return v
}

// countInsns emits `map[key]++` for the map fd (clobbering r0 to r5 and
// fp-16), falling through.
func countInsns(fd int, key int32) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -16, key, asm.Word),
		asm.LoadMapFD(asm.R1, int32(fd)),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.Call(asm.FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, "").WithOffset(2),
		asm.Mov.Imm(asm.R1, 1),
		asm.AtomicAdd.Mem(asm.R0, 0, asm.R1, asm.DWord),
	}
}

// tracepointProgram returns the program around the filter: r6 = skb, its
// mark checked, counter 0 for every frame of the test's, counter 1 for
// those the filter matches.
func tracepointProgram(filter asm.Instructions, mapFD int, markOff int16) asm.Instructions {
	p := asm.Instructions{
		asm.LoadMem(asm.R6, asm.R1, 0, asm.DWord), // args[0]: struct sk_buff *
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -8),
		asm.Mov.Imm(asm.R2, 4),
		asm.Mov.Reg(asm.R3, asm.R6),
		asm.Add.Imm(asm.R3, int32(markOff)),
		asm.Call(asm.FnProbeReadKernel),
		asm.JNE.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.Word),
		asm.JNE.Imm32(asm.R0, liveMark, "out"),
	}
	p = append(p, countInsns(mapFD, 0)...)
	p = append(p, filter...)
	hit := countInsns(mapFD, 1)
	hit[0] = hit[0].WithLabel("hit")
	p = append(p, hit...)
	return append(p, asm.Mov.Imm(asm.R0, 0).WithLabel("out"), asm.Exit())
}

// markedSender returns a packet socket on lo in ns whose frames carry
// liveMark, and lo's index there.
func markedSender(t *testing.T, ns *testutil.NetNS) (fd, ifindex int) {
	t.Helper()
	ns.Do(t, func() {
		ifi, err := net.InterfaceByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		ifindex = ifi.Index
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(os.NewSyscallError("socket", err))
		}
	})
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, liveMark); err != nil {
		t.Fatalf("SO_MARK: %v", err)
	}
	return fd, ifindex
}

// TestSpliceProbeReadLive splices a sample of the expressions with
// ProbeReadKernel into the net_dev_queue program, from the link-layer
// header (skb->mac_header) and from the network header
// (skb->network_header, which a packet socket's send puts after the 14
// bytes of an Ethernet header, as the test run does), sends every frame
// of a corpus on lo, and compares the counts with libpcap's verdicts on
// the same frames: the program must see every frame sent, and match as
// many as libpcap accepts.
func TestSpliceProbeReadLive(t *testing.T) {
	testutil.RequirePrivileged(t)
	layout, err := KernelSkbLayout()
	if err != nil {
		t.Skipf("no struct sk_buff layout: %v", err)
	}
	spec, err := btf.LoadKernel()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	skbID, err := spec.Find(btf.KindStruct, "sk_buff")
	if err != nil {
		t.Fatal(err)
	}
	mark, err := spec.Field(skbID, "mark")
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var named [][]byte
	for _, f := range testutil.FramesOf(t, testutil.LinkEthernet) {
		named = append(named, f.Data)
	}
	for _, f := range append(append(testutil.GenFrames(2, 400), testutil.GenMoreFrames(3, 100)...), named...) {
		if len(f) >= wire.EthernetHeaderLen {
			frames = append(frames, f)
		}
	}
	ns := testutil.NewNetNS(t)
	sock, ifindex := markedSender(t, ns)
	mapFD := newCountMap(t)
	exprs := testutil.Expressions(t)
	for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
		lp := testutil.NewLibpcap(t, uint16(link))
		for i := 0; i < len(exprs); i += 9 {
			expr := exprs[i]
			t.Run(fmt.Sprintf("%v/%s", link, expr), func(t *testing.T) {
				opts := SpliceOptions{Access: ProbeReadKernel, Context: asm.R6, Layout: layout,
					StackOffset: 16, Match: "hit", NoMatch: "out"}
				filter, err := CompileSplice(expr, link, &opts)
				if errors.Is(err, ErrLinkLayer) && link == packet.LinkRawIP {
					t.Logf("refused for a network-layer start, as it should be: %v", err)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				classic, err := lp.Compile(expr)
				if err != nil {
					t.Fatal(err)
				}
				vm := testutil.ClassicVM(t, classic)
				prog := tracepointProgram(filter, mapFD, int16(mark.Offset/8))
				fd, err := loadTyped(t, progRawTracepoint, prog)
				if err != nil {
					t.Fatal(err)
				}
				tp, err := rawTracepointOpen("net_dev_queue", fd)
				if err != nil {
					t.Fatalf("attach to net_dev_queue: %v", err)
				}
				counter(t, mapFD, 0)
				counter(t, mapFD, 1)
				want := 0
				for _, f := range frames {
					p := f
					if link == packet.LinkRawIP {
						p = f[wire.EthernetHeaderLen:]
					}
					if vm(p) != 0 {
						want++
					}
					if err := unix.Sendto(sock, f, 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
						t.Fatalf("send %d bytes: %v", len(f), err)
					}
				}
				unix.Close(tp)
				seen, matched := counter(t, mapFD, 0), counter(t, mapFD, 1)
				if seen != uint64(len(frames)) || matched != uint64(want) {
					t.Errorf("the tracepoint saw %d frames and matched %d; sent %d, of which libpcap accepts %d", seen, matched, len(frames), want)
				}
				t.Logf("%d frames sent and seen, %d matched", seen, matched)
			})
		}
	}
}

// kprobeArg0 is the offset in struct pt_regs of the first argument of a
// function, which a kprobe program's context is.
var kprobeArg0 = map[string]int16{"amd64": 112, "arm64": 0, "riscv64": 80, "s390x": 24, "ppc64le": 24, "loong64": 32}

// TestSpliceTracingLoads splices every expression with ProbeReadKernel,
// from both starts, into a kprobe program (BPF_PROG_TYPE_KPROBE, the
// struct sk_buff * the first argument of the probed function, as pwru
// reads it) and a raw tracepoint program: the verifier must accept them
// all. Kprobes cannot be attached on the test machine (CONFIG_KPROBES is
// off); the raw tracepoint runs live in TestSpliceProbeReadLive.
func TestSpliceTracingLoads(t *testing.T) {
	testutil.RequirePrivileged(t)
	layout, err := KernelSkbLayout()
	if err != nil {
		t.Skipf("no struct sk_buff layout: %v", err)
	}
	arg0, ok := kprobeArg0[runtime.GOARCH]
	if !ok {
		t.Skipf("no pt_regs layout for %s", runtime.GOARCH)
	}
	mapFD := newCountMap(t)
	loaded := 0
	for _, expr := range testutil.Expressions(t) {
		for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
			opts := SpliceOptions{Access: ProbeReadKernel, Context: asm.R6, Layout: layout, StackOffset: 16, Match: "hit", NoMatch: "out"}
			filter, err := CompileSplice(expr, link, &opts)
			if errors.Is(err, ErrLinkLayer) && link == packet.LinkRawIP {
				continue
			}
			if err != nil {
				t.Errorf("%q (%v): %v", expr, link, err)
				continue
			}
			tp := tracepointProgram(filter, mapFD, 0)
			kp := append(asm.Instructions{asm.LoadMem(asm.R6, asm.R1, arg0, asm.DWord),
				asm.Mov.Reg(asm.R1, asm.R6)}, tp[1:]...)
			for _, p := range []struct {
				typ   uint32
				insns asm.Instructions
			}{{progRawTracepoint, tp}, {progKprobe, kp}} {
				if _, err := loadTyped(t, p.typ, p.insns); err != nil {
					t.Errorf("%q (%v), program type %d: %v", expr, link, p.typ, err)
					continue
				}
				loaded++
			}
		}
	}
	t.Logf("%d programs loaded", loaded)
}
