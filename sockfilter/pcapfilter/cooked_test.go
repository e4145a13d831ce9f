package pcapfilter_test

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// cookedExprs are expressions about the cooked headers and the frames
// the "any" device gives, besides the expression list: the packet type
// and interface index, the protocol field with libpcap's 802.2 and 802.3
// handling, the header read as bytes, and what libpcap refuses on a
// cooked link.
var cookedExprs = []string{
	"inbound", "outbound", "not inbound", "inbound and arp", "outbound or icmp",
	"ifindex 1", "ifindex 2", "ifindex 3 and tcp", "not ifindex 0x2",
	"arp", "rarp", "not ip", "ip6", "not ip and not ip6", "ether proto 0x0806",
	"ether proto 4", "ether proto 1", "ether proto 0x06", "ether proto 0xfe", "ether proto 0xf0",
	"ether proto 0xe0", "ether proto 0x42", "ether proto 0xaa", "ether proto 0x809b", "ether proto 0x80f3",
	"ether proto 0x8137", "ether proto 0x8100", "ether proto 1500", "ether proto 0x0004 or arp",
	"link[0:2] = 4", "link[0:2] = 0x800", "ether[14:2] = 0x800", "ether[2:2] = 1", "link[10] = 4",
	"link[4:4] = 3", "ether[16] = 0x45", "ether[20] = 0x45", "link[0] = 0", "ether[6:4] != 0",
	"len > 60", "less 80", "greater 100 and inbound", "len - 20 > 40",
	"vlan", "ether host 1:2:3:4:5:6", "ether src 1:2:3:4:5:6", "ether dst 1:2:3:4:5:6",
	"host 10.0.0.1 and inbound", "tcp port 80 and outbound", "icmp and ifindex 2",
	"ether broadcast", "ether multicast", "ip multicast", "ip6 multicast", "llc", "stp", "ipx", "netbeui",
	"iso", "clnp", "isis and l1", "atalk", "aarp", "decnet host 1.2", "lat", "link proto 4", "fddi[0:2] = 4",
}

// cookedExpressions returns the expression list, the sample's
// expressions (testdata/sample) and cookedExprs.
func cookedExpressions(t *testing.T) []string {
	exprs := testutil.Expressions(t)
	for _, e := range sampleExprs(t) {
		exprs = append(exprs, e.expr)
	}
	return append(exprs, cookedExprs...)
}

// sllProtocol returns the protocol of the cooked header of an Ethernet
// frame, as eth_type_trans sets skb->protocol: the EtherType, or for an
// 802.3 frame ETH_P_802_3 (1) when its payload starts 0xffff (Novell
// raw), else ETH_P_802_2 (4).
func sllProtocol(eth []byte) uint16 {
	t := binary.BigEndian.Uint16(eth[12:])
	switch {
	case t >= 1536:
		return t
	case len(eth) >= 16 && eth[14] == 0xff && eth[15] == 0xff:
		return 1
	}
	return 4
}

// cookedFrame returns the frame of link (SLL or SLL2) with the header h
// for the payload.
func cookedFrame(link packet.LinkType, h *packet.SLLHeader, payload []byte) []byte {
	var f []byte
	if link == packet.LinkLinuxSLL {
		f = h.AppendSLL(f)
	} else {
		f = h.AppendSLL2(f)
	}
	return append(f, payload...)
}

// llcPayloads returns 802.2 and 802.3 payloads for the protocols libpcap
// looks into: the SAPs it checks (IP, ISO, NetBEUI, IPX, STP) and SNAP
// headers of IPX, AppleTalk and AARP, with random bytes after them.
func llcPayloads(r *rand.Rand, n int) (protos []uint16, payloads [][]byte) {
	saps := []byte{0x06, 0xfe, 0xf0, 0xe0, 0x42, 0xaa, 0x04, 0x01}
	snaps := [][5]byte{{0, 0, 0, 0x81, 0x37}, {0x08, 0, 0x07, 0x80, 0x9b}, {0, 0, 0, 0x80, 0xf3}, {0, 0, 0, 0x08, 0x00}, {0x08, 0, 0x07, 0x80, 0xf3}}
	for range n {
		p := make([]byte, 4+r.IntN(40))
		for i := range p {
			p[i] = byte(r.UintN(256))
		}
		proto := uint16(4)
		switch r.IntN(5) {
		case 0: // the same SAP twice
			s := saps[r.IntN(len(saps))]
			p[0], p[1] = s, s
		case 1:
			p[0] = saps[r.IntN(len(saps))]
		case 2: // SNAP
			if len(p) < 8 {
				p = append(p, make([]byte, 8-len(p))...)
			}
			s := snaps[r.IntN(len(snaps))]
			p[0], p[1], p[2] = 0xaa, 0xaa, 3
			if r.IntN(8) == 0 {
				p[2] = 0x13
			}
			copy(p[3:], s[:])
		case 3:
			proto = 1
			p[0], p[1] = 0xff, 0xff
		default:
			proto = []uint16{0x8137, 0x809b, 0x80f3, 0x0001, 0x0004, 0x0042, 0x05dc}[r.IntN(7)]
		}
		protos = append(protos, proto)
		payloads = append(payloads, p)
	}
	return protos, payloads
}

// genCookedFrames returns cooked frames of link made from the generated
// Ethernet frames: the header from the Ethernet header (its protocol as
// the kernel gives it, the source address), a random packet type,
// interface index and hardware type; LLC frames; and some of them cut
// short, down to inside the header.
func genCookedFrames(link packet.LinkType, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 17))
	eths := testutil.GenFrames(seed, 1500)
	eths = append(eths, testutil.GenMoreFrames(seed+1, 1500)...)
	header := func(proto uint16, src []byte) *packet.SLLHeader {
		h := &packet.SLLHeader{Protocol: proto, PacketType: uint8(r.IntN(5)), AddrLen: 6,
			Ifindex: 1 + r.IntN(4), HAType: []uint16{1, 772, 776, 65534}[r.IntN(4)]}
		if r.IntN(20) == 0 {
			h.PacketType = uint8(5 + r.IntN(3))
		}
		if r.IntN(20) == 0 {
			h.Ifindex = int(r.Uint32() >> 1)
		}
		copy(h.Addr[:], src)
		return h
	}
	var frames [][]byte
	for _, e := range eths {
		if len(e) < 14 {
			continue
		}
		frames = append(frames, cookedFrame(link, header(sllProtocol(e), e[6:12]), e[14:]))
	}
	protos, payloads := llcPayloads(r, 800)
	for i, p := range payloads {
		frames = append(frames, cookedFrame(link, header(protos[i], nil), p))
	}
	n := len(frames)
	for i := range n / 8 {
		f := frames[(i*7919)%n]
		frames = append(frames, f[:r.IntN(len(f)+1)])
	}
	return frames
}

// rejectsAll reports whether libpcap's error says the expression rejects
// every packet, which Compile compiles to a program that returns 0.
func rejectsAll(err error) bool {
	return err != nil && strings.Contains(err.Error(), "expression rejects all packets")
}

// TestCompileCookedOffline compiles the expressions for LINUX_SLL and
// LINUX_SLL2 capture files (CompileOptions.Offline) and checks, in the
// VM, that each program gives libpcap's verdict (`tcpdump -ddd -r` of a
// file of that link type) on every cooked frame of a generated corpus,
// and that Compile refuses what libpcap refuses.
func TestCompileCookedOffline(t *testing.T) {
	testutil.RequireTool(t, "tcpdump")
	for _, link := range []packet.LinkType{packet.LinkLinuxSLL, packet.LinkLinuxSLL2} {
		t.Run(link.String(), func(t *testing.T) {
			lp := testutil.NewLibpcap(t, uint16(link))
			frames := genCookedFrames(link, uint64(link))
			compiled := 0
			for _, expr := range cookedExpressions(t) {
				classic, lerr := lp.Compile(expr)
				if rejectsAll(lerr) {
					classic, lerr = []bpf.Instruction{bpf.RetConstant{Val: 0}}, nil
				}
				insns, err := pcapfilter.CompileWith(expr, link, &pcapfilter.CompileOptions{Offline: true})
				switch {
				case lerr != nil && err == nil:
					t.Errorf("%q: Compile accepts what libpcap refuses (%v)", expr, lerr)
					continue
				case lerr != nil:
					continue
				case err != nil:
					t.Errorf("%q: Compile refuses what libpcap compiles: %v", expr, err)
					continue
				}
				compiled++
				v, err := vm.New(insns, nil)
				if err != nil {
					t.Fatal(err)
				}
				libpcap := testutil.ClassicVM(t, classic)
				bad := 0
				for i, f := range frames {
					got, err := v.RunFrame(f, link)
					if err != nil {
						t.Fatalf("%q: frame %d: %v", expr, i, err)
					}
					if want := libpcap(f); (got != 0) != (want != 0) {
						if bad++; bad <= 3 {
							t.Errorf("%q: frame %d (% x): Compile's program returns %#x in the VM, libpcap's %d", expr, i, f, got, want)
						}
					}
				}
				if bad > 0 {
					t.Errorf("%q: %d disagreements of %d frames; program:\n%v", expr, bad, len(frames), insns)
				}
			}
			t.Logf("%d expressions compiled and compared on %d frames", compiled, len(frames))
		})
	}
}

// testRunHeader returns the cooked header the "any" device's socket
// would give a frame as BPF_PROG_TEST_RUN runs it (see vm.RunTest): the
// frame is received on lo (ifindex 1), the protocol as eth_type_trans
// sets it, the packet type from the destination address (PACKET_HOST for
// lo's all-zeros address, PACKET_MULTICAST for a group address,
// PACKET_OTHERHOST else).
func testRunHeader(eth []byte) *packet.SLLHeader {
	h := &packet.SLLHeader{Protocol: sllProtocol(eth), Ifindex: 1, HAType: 772, AddrLen: 6, PacketType: 3}
	copy(h.Addr[:], eth[6:12])
	switch {
	case [6]byte(eth[:6]) == [6]byte{}:
		h.PacketType = 0
	case eth[0]&1 != 0:
		h.PacketType = 2
	}
	return h
}

// liveCases compiles each expression for the live socket of link and for
// its capture file, and returns those libpcap compiles for the file that
// the live form compiles too, with libpcap's program; an expression the
// live form refuses must read a part of the header it cannot.
func liveCases(t *testing.T, link packet.LinkType) (exprs []string, classics [][]bpf.Instruction) {
	lp := testutil.NewLibpcap(t, uint16(link))
	for _, expr := range cookedExpressions(t) {
		classic, lerr := lp.Compile(expr)
		if rejectsAll(lerr) {
			classic, lerr = []bpf.Instruction{bpf.RetConstant{Val: 0}}, nil
		}
		// libpcap's netmask for a capture file, for `ip broadcast`.
		insns, err := pcapfilter.CompileWith(expr, link, &pcapfilter.CompileOptions{Netmask: netip.IPv4Unspecified()})
		if err != nil {
			var ce *pcapfilter.Error
			if !errors.As(err, &ce) {
				t.Fatalf("%q: error %v is not a *pcapfilter.Error", expr, err)
			}
			if lerr == nil && !strings.Contains(err.Error(), "live socket does not have") {
				t.Errorf("%q: the live form refuses what libpcap compiles: %v", expr, err)
			}
			continue
		}
		if lerr != nil {
			if link == packet.LinkLinuxSLL && strings.Contains(expr, "ifindex") {
				continue // libpcap refuses it for the file only: live, it reads SKF_AD_IFINDEX
			}
			t.Errorf("%q: the live form compiles what libpcap refuses (%v)", expr, lerr)
			continue
		}
		if _, err := insns.Assemble(); err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		exprs = append(exprs, expr)
		classics = append(classics, classic)
	}
	return exprs, classics
}

// TestCompileCookedLive checks the live form of the cooked links, the
// program for the "any" device's socket, in the VM's view of
// BPF_PROG_TEST_RUN (vm.RunTest: skb->data at the network header, as on
// the "any" socket): on every generated Ethernet frame, its verdict must
// be that of libpcap's program for the cooked link on the frame with the
// cooked header that socket would give it (testRunHeader); and on their
// IP packets run as the socket gives them, with random directions and
// interface indexes, as libpcap's on the packet with that header.
func TestCompileCookedLive(t *testing.T) {
	testutil.RequireTool(t, "tcpdump")
	eths := testutil.GenFrames(41, 1500)
	eths = append(eths, testutil.GenMoreFrames(42, 1500)...)
	for _, link := range []packet.LinkType{packet.LinkLinuxSLL, packet.LinkLinuxSLL2} {
		t.Run(link.String(), func(t *testing.T) {
			exprs, classics := liveCases(t, link)
			for i, expr := range exprs {
				insns, err := pcapfilter.CompileWith(expr, link, &pcapfilter.CompileOptions{Netmask: netip.IPv4Unspecified()})
				if err != nil {
					t.Fatal(err)
				}
				v, err := vm.New(insns, nil)
				if err != nil {
					t.Fatal(err)
				}
				libpcap := testutil.ClassicVM(t, classics[i])
				bad := 0
				for j, e := range eths {
					if len(e) < 14 {
						continue
					}
					got, err := v.RunTest(e, packet.LinkEthernet)
					if err != nil {
						t.Fatalf("%q: frame %d: %v", expr, j, err)
					}
					want := libpcap(cookedFrame(link, testRunHeader(e), e[14:]))
					if (got != 0) != (want != 0) {
						if bad++; bad <= 3 {
							t.Errorf("%q: frame %d (% x): the live program returns %#x, libpcap's %d", expr, j, e, got, want)
						}
					}
				}
				// An IP packet as the "any" socket gives it, with a
				// direction and an interface index (RunFrameInfo of
				// LinkRawIP: skb->data at the network header, the
				// protocol from the IP version).
				r := rand.New(rand.NewPCG(uint64(i), 3))
				for j, e := range eths {
					if len(e) < 15 {
						continue
					}
					et := binary.BigEndian.Uint16(e[12:])
					if !(et == 0x0800 && e[14]>>4 == 4 || et == 0x86dd && e[14]>>4 == 6) {
						continue
					}
					h := &packet.SLLHeader{Protocol: et, Ifindex: 1 + r.IntN(3), HAType: 1, AddrLen: 6, PacketType: uint8(r.IntN(5))}
					info := &packet.Info{Ifindex: h.Ifindex, Direction: h.Direction()}
					got, err := v.RunFrameInfo(e[14:], packet.LinkRawIP, info)
					if err != nil {
						t.Fatalf("%q: frame %d: %v", expr, j, err)
					}
					want := libpcap(cookedFrame(link, h, e[14:]))
					if (got != 0) != (want != 0) {
						if bad++; bad <= 3 {
							t.Errorf("%q: IP packet %d (% x) %+v: the live program returns %#x, libpcap's %d", expr, j, e[14:], info, got, want)
						}
					}
				}
				if bad > 0 {
					t.Errorf("%q: %d disagreements; program:\n%v", expr, bad, insns)
				}
			}
			t.Logf("%d expressions compared", len(exprs))
		})
	}
}

// TestCompileCookedKernel is TestCompileCookedLive in the kernel: each
// live program is loaded and run under BPF_PROG_TEST_RUN
// (sockfilter.Program.Test), where, as on the "any" device's socket,
// skb->data is the network header, and must give libpcap's verdict on the
// frame with the cooked header the socket would give it.
func TestCompileCookedKernel(t *testing.T) {
	testutil.RequirePrivileged(t)
	testutil.RequireTool(t, "tcpdump")
	eths := testutil.GenFrames(43, 600)
	eths = append(eths, testutil.GenMoreFrames(44, 300)...)
	for _, link := range []packet.LinkType{packet.LinkLinuxSLL, packet.LinkLinuxSLL2} {
		t.Run(link.String(), func(t *testing.T) {
			exprs, classics := liveCases(t, link)
			for i, expr := range exprs {
				insns, err := pcapfilter.CompileWith(expr, link, &pcapfilter.CompileOptions{Netmask: netip.IPv4Unspecified()})
				if err != nil {
					t.Fatal(err)
				}
				prog, err := sockfilter.Load(insns, nil)
				if err != nil {
					t.Fatalf("%q: load:\n%v\n%v", expr, insns, err)
				}
				libpcap := testutil.ClassicVM(t, classics[i])
				bad := 0
				for j, e := range eths {
					if len(e) < 14 {
						continue
					}
					got, err := prog.Test(e, packet.LinkEthernet)
					if err != nil {
						t.Fatalf("%q: frame %d: %v", expr, j, err)
					}
					want := libpcap(cookedFrame(link, testRunHeader(e), e[14:]))
					if (got != 0) != (want != 0) {
						if bad++; bad <= 3 {
							t.Errorf("%q: frame %d (% x): the live program returns %#x in the kernel, libpcap's %d", expr, j, e, got, want)
						}
					}
				}
				prog.Close()
				if bad > 0 {
					t.Errorf("%q: %d disagreements; program:\n%v", expr, bad, insns)
				}
			}
			t.Logf("%d expressions compared on %d frames", len(exprs), len(eths))
		})
	}
}

// TestCompileCookedErrors checks what the cooked links refuse: what
// libpcap refuses on them (`vlan`, `ether host`, `ifindex` in an SLL
// file), and, live, the parts of the header the "any" device's socket
// does not have, each with a message saying so at the right column.
func TestCompileCookedErrors(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		link    packet.LinkType
		offline bool
		column  int
		msg     string
	}{
		{"tcp or vlan", packet.LinkLinuxSLL2, false, 8, `"vlan" needs an Ethernet link`},
		{"ether host 1:2:3:4:5:6", packet.LinkLinuxSLL, true, 12, "ether host needs an Ethernet link"},
		{"ether src 1:2:3:4:5:6", packet.LinkLinuxSLL2, false, 11, "ether host needs an Ethernet link"},
		{"ip and ifindex 2", packet.LinkLinuxSLL, true, 8, "ifindex not supported on Linux cooked v1 when reading savefiles"},
		{"ifindex", packet.LinkLinuxSLL2, true, 8, `expected an interface index after "ifindex"`},
		{"ifindex 4294967296", packet.LinkLinuxSLL2, false, 9, "interface index 4294967296 is out of range"},
		{"link[2:2] = 1", packet.LinkLinuxSLL2, false, 1, `link[2:2] reads a part of the Linux cooked v2 header that the "any" device's live socket does not have: only "link[0:2]" (protocol), "link[4:4]" (interface index) and "link[10:1]" (packet type) can be read live`},
		{"ip and ether[6:4] = 1", packet.LinkLinuxSLL, false, 8, `ether[6:4] reads a part of the Linux cooked v1 header`},
		{"link[0] = 0", packet.LinkLinuxSLL, false, 1, `only "link[0:2]" (packet type) and "link[14:2]" (protocol) can be read live`},
		{"ether[ip[0] & 0xf] = 1", packet.LinkLinuxSLL2, false, 1, "ether[...] at a variable offset may read the Linux cooked v2 header"},
	} {
		_, err := pcapfilter.CompileWith(tc.expr, tc.link, &pcapfilter.CompileOptions{Offline: tc.offline})
		var ce *pcapfilter.Error
		if !errors.As(err, &ce) || ce.Column != tc.column || !strings.Contains(ce.Msg, tc.msg) {
			t.Errorf("CompileWith(%q, %v, offline %v): %v, want %q at column %d", tc.expr, tc.link, tc.offline, err, tc.msg, tc.column)
		}
	}
	// The same reads of the header compile offline, where it is in the
	// frame, and the header's fields compile live.
	for _, expr := range []string{"link[2:2] = 1", "ether[6:4] = 1", "ether[ip[0] & 0xf] = 1", "link[0] = 0"} {
		for _, link := range []packet.LinkType{packet.LinkLinuxSLL, packet.LinkLinuxSLL2} {
			if _, err := pcapfilter.CompileWith(expr, link, &pcapfilter.CompileOptions{Offline: true}); err != nil {
				t.Errorf("CompileWith(%q, %v, Offline): %v", expr, link, err)
			}
		}
	}
	for _, expr := range []string{"link[0:2] = 0x800", "link[4:4] = 2", "link[10] = 4", "ether[20] = 0x45", "ether[20:4] != 0", "ifindex 3"} {
		if _, err := pcapfilter.Compile(expr, packet.LinkLinuxSLL2); err != nil {
			t.Errorf("Compile(%q, LinuxSLL2): %v", expr, err)
		}
	}
}
