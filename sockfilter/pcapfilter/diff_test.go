package pcapfilter

import (
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
	pvm "github.com/purebpf/purebpf/sockfilter/vm"
)

// The differential tests compare Compile's programs, run by the kernel
// under sockfilter.Program.Test, with libpcap's programs for the same expressions,
// run by golang.org/x/net/bpf's VM on the whole frame. libpcap's programs
// come from the tcpdump on PATH (`tcpdump -ddd -r file.pcap EXPR`): reading
// a capture file, libpcap generates its in-band VLAN code, as for frames
// whose tags are in the frame. Nothing is cached outside the test's
// temporary directory.

// exprDiffFrames is the number of generated frames each expression is
// tested on.
const exprDiffFrames = 2500

// readsLen reports whether insns reads skb->len.
func readsLen(insns asm.Instructions) bool {
	for _, ins := range insns {
		if ins.OpCode == skb.Len.Load(0, 0).OpCode && ins.Offset == int16(skb.Len) && (ins.Src == asm.R1 || ins.Src == asm.R6) {
			return true
		}
	}
	return false
}

// loadForTest loads insns, closing the program at the end of t.
func loadForTest(t testing.TB, insns interface{ String() string }, load func() (*sockfilter.Program, error)) *sockfilter.Program {
	t.Helper()
	p, err := load()
	if err != nil {
		t.Fatalf("load:\n%s\n%v", insns, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestCompileDifferential runs every expression of the list compiled by
// Compile, and libpcap's program converted by FromClassicLinkRelative,
// under sockfilter.Program.Test on the generated frames, and libpcap's program in
// golang.org/x/net/bpf's VM on the same frames: all verdicts must agree.
// Compile's programs that read `len` are compared with libpcap's in
// sockfilter/vm's view of a live packet socket (RunFrame), and under
// Program.Test with vm.RunTest (see Compile on `len`).
func TestCompileDifferential(t *testing.T) {
	testutil.RequirePrivileged(t)
	lp := testutil.NewLibpcap(t, testutil.LinkEthernet)
	// GenMoreFrames' frames, for the grammar beyond IP (LLC, DECnet,
	// broadcast and multicast destinations, ...).
	frames := append(testutil.GenFrames(1, exprDiffFrames), testutil.GenMoreFrames(1, exprDiffFrames/2)...)
	for _, expr := range testutil.Expressions(t) {
		t.Run(expr, func(t *testing.T) {
			classic, err := lp.Compile(expr)
			if err != nil {
				t.Fatal(err)
			}
			vm := testutil.ClassicVM(t, classic)
			insns, err := Compile(expr, packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			prog := loadForTest(t, insns, func() (*sockfilter.Program, error) { return sockfilter.Load(insns, nil) })
			// A program that reads `len` (skb->len) sees a frame 14 bytes
			// shorter under Program.Test than on a packet socket: its
			// verdict under Test must be the VM's under RunTest, and the
			// VM's with the live socket's view, RunFrame, libpcap's.
			var live *pvm.VM
			if readsLen(insns) {
				if live, err = pvm.New(insns, nil); err != nil {
					t.Fatal(err)
				}
			}
			conv, err := FromClassicLinkRelative(classic)
			if err != nil {
				t.Fatal(err)
			}
			convProg := loadForTest(t, conv, func() (*sockfilter.Program, error) { return sockfilter.Load(conv, nil) })
			matched, convMatched, accepted, bad := 0, 0, 0, 0
			for i, f := range frames {
				ret := vm(f)
				want := ret != 0
				got, err := prog.Test(f, packet.LinkEthernet)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if live != nil {
					tv, err := live.RunTest(f, packet.LinkEthernet)
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					if tv != got {
						t.Errorf("frame %d (% x): Compile's program returns %#x under Program.Test, %#x in vm.RunTest", i, f, got, tv)
					}
					if got, err = live.RunFrame(f, packet.LinkEthernet); err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
				}
				if want {
					accepted++
				}
				if (got != 0) == want {
					matched++
				} else if bad++; bad <= 3 {
					t.Errorf("frame %d (% x): Compile's program returns %#x, libpcap's %d", i, f, got, ret)
				}
				if got != 0 && got != skb.AcceptAll {
					t.Errorf("frame %d: accepted with %#x, want skb.AcceptAll", i, got)
				}
				conv, err := convProg.Test(f, packet.LinkEthernet)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if (conv != 0) == want && (conv == 0 || conv == uint32(ret)) {
					convMatched++
				} else if bad++; bad <= 3 {
					t.Errorf("frame %d (% x): FromClassicLinkRelative's program returns %#x, libpcap's %d", i, f, conv, ret)
				}
			}
			t.Logf("Compile %d/%d matched, FromClassicLinkRelative %d/%d matched (libpcap accepts %d)",
				matched, len(frames), convMatched, len(frames), accepted)
			if t.Failed() {
				t.Logf("Compile's program:\n%v", insns)
			}
		})
	}
}
