package vm_test

import (
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// The unprivileged differential test of the compiler: its programs run in
// the VM as a live packet socket runs them (RunFrame), libpcap's programs
// for the same expressions (`tcpdump -ddd`, which needs no privileges) in
// golang.org/x/net/bpf's VM, on the same frames. It needs neither root
// nor a kernel that loads programs, so that a developer without root runs
// it too; CI runs it as nobody.

// libpcapDiffFrames is the number of generated frames each expression
// runs on, besides the frames of testdata/frames.
const libpcapDiffFrames = 2000

// TestLibpcapDifferential runs every expression of the test list,
// compiled for Ethernet and for raw IP links, on the generated frames and
// the test frames of that link type, in the VM and libpcap's program in
// x/net/bpf's VM: 0 disagreements. An expression one compiler refuses for
// a link type the other must refuse too.
//
// The two divergences from libpcap the compiler keeps on purpose (see the
// pcapfilter package doc) do not appear in the test list; TestLibpcapDivergences
// pins them.
func TestLibpcapDifferential(t *testing.T) {
	testutil.RequireTool(t, "tcpdump")
	eth := testutil.GenFrames(13, libpcapDiffFrames)
	raw := rawFrames(eth)
	for _, f := range testutil.FramesOf(t, testutil.LinkEthernet) {
		eth = append(eth, f.Data)
	}
	for _, f := range testutil.FramesOf(t, testutil.LinkRawIP) {
		raw = append(raw, f.Data)
	}
	links := []struct {
		link   packet.LinkType
		pcap   uint16
		frames [][]byte
	}{
		{packet.LinkEthernet, testutil.LinkEthernet, eth},
		{packet.LinkRawIP, testutil.LinkRawIP, raw},
	}
	runs := 0
	for _, l := range links {
		lp := testutil.NewLibpcap(t, l.pcap)
		for _, expr := range testutil.Expressions(t) {
			t.Run(l.link.String()+"/"+expr, func(t *testing.T) {
				insns, err := pcapfilter.Compile(expr, l.link)
				classic, lerr := lp.Compile(expr)
				if lerr != nil && strings.Contains(lerr.Error(), "expression rejects all packets") {
					// tcpdump prints no program for that: it is `ret #0`.
					classic, lerr = []bpf.Instruction{bpf.RetConstant{Val: 0}}, nil
				}
				switch {
				case err != nil && lerr != nil:
					return // both refuse it for this link type
				case err != nil:
					t.Fatalf("Compile refuses what libpcap compiles: %v", err)
				case lerr != nil:
					t.Fatalf("libpcap refuses what Compile compiles: %v", lerr)
				}
				v, err := vm.New(insns, nil)
				if err != nil {
					t.Fatal(err)
				}
				libpcap := testutil.ClassicVM(t, classic)
				bad := 0
				for i, f := range l.frames {
					got, err := v.RunFrame(f, l.link)
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					want := libpcap(f)
					runs++
					if (got != 0) != (want != 0) {
						if bad++; bad <= 3 {
							t.Errorf("frame %d (% x): Compile's program returns %#x in the VM, libpcap's %d", i, f, got, want)
						}
					}
				}
				if bad > 0 {
					t.Errorf("%d disagreements of %d frames; program:\n%v", bad, len(l.frames), insns)
				}
			})
		}
	}
	t.Logf("%d runs compared", runs)
}

// TestLibpcapDivergences pins the two places where the compiler departs
// from libpcap 1.10 on purpose, and is right: in `X op Y` arithmetic
// libpcap keeps only the left operand's protocol test, so that its
// program reads an IPv6 or ARP frame's bytes as an IPv4 header's; and its
// user-space filter (which x/net/bpf's VM follows) gives 0 for a shift by
// 32 or more, where the kernel, and so a live tcpdump, masks the count to
// 5 bits.
func TestLibpcapDivergences(t *testing.T) {
	testutil.RequireTool(t, "tcpdump")
	lp := testutil.NewLibpcap(t, testutil.LinkEthernet)
	ipv6 := frameHex(`
		001122334455 66778899aabb 86dd
		6000000000083a40 fe800000000000000000000000000001 fe800000000000000000000000000002
		8000000000000000`)
	for _, tc := range []struct {
		name, expr    string
		frame         []byte
		keep, libpcap bool // the VM's verdict, and libpcap's program's
	}{
		// IPv6's hop limit is byte 22, which libpcap's program takes for
		// the IPv4 TTL: 0x40 > 0.
		{"arithmetic keeps the left protocol test", "0 + ip[8] > 0", ipv6, false, true},
		// A TTL of 64 shifted by UDP's 17 + 15 = 32: the kernel shifts
		// by 0, libpcap's user space gives 0.
		{"shift by 32", "ip[8] >> (ip[9] + 15) = 64", udpFrame, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			insns, err := pcapfilter.Compile(tc.expr, packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			v, err := vm.New(insns, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.RunFrame(tc.frame, packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			classic, err := lp.Compile(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			want := testutil.ClassicVM(t, classic)(tc.frame)
			if (got != 0) != tc.keep || (want != 0) != tc.libpcap {
				t.Errorf("%s: the VM keeps the frame: %v (want %v); libpcap's program: %v (want %v)",
					tc.expr, got != 0, tc.keep, want != 0, tc.libpcap)
			}
		})
	}
}

// rawFrames returns the IP packets of the Ethernet frames without a VLAN
// tag, as raw IP frames.
func rawFrames(frames [][]byte) [][]byte {
	var raw [][]byte
	for _, f := range frames {
		if len(f) <= wire.EthernetHeaderLen {
			continue
		}
		switch uint16(f[12])<<8 | uint16(f[13]) {
		case wire.EtherTypeIPv4, wire.EtherTypeIPv6:
			if ip := f[wire.EthernetHeaderLen:]; ip[0]>>4 == 4 || ip[0]>>4 == 6 {
				raw = append(raw, ip)
			}
		}
	}
	return raw
}
