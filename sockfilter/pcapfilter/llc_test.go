package pcapfilter_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// linkLevelExprs are expressions of the link-level grammar (llc.go) to
// try on a raw-IP link, where libpcap refuses some and compiles the others
// to programs that reject every frame or test the IP version.
var linkLevelExprs = []string{
	"llc", "llc i", "llc u", "llc rr", "stp", "ipx", "netbeui", "iso", "isis", "clnp", "esis", "l1",
	"l2", "iih", "lsp", "snp", "csnp", "psnp", "atalk", "aarp", "decnet", "lat", "sca", "moprc", "mopdl",
	"decnet host 1.2", "decnet src 3.4", "ether proto 100", "ether proto \\stp", "ether proto 0x809b",
	"link proto 0x42", "iso proto 0x83", "not stp", "ip or stp", "not llc", "fddi host 00:11:22:33:44:55",
	"broadcast", "multicast", "ether broadcast", "ether multicast", "ip multicast", "ip6 multicast",
	"ip6 broadcast", "tcp multicast", "not ip multicast", "ip6 multicast or ip multicast",
	"fddi[0] = 0x45", "decnet[0] = 1", "atalk[2:2] = 1", "ether proto \\loopback",
}

// rawFrames returns IPv4 and IPv6 packets without their Ethernet header:
// GenFrames' and GenMoreFrames' (which have multicast and broadcast
// destinations) untagged ones.
func rawFrames() [][]byte {
	var frames [][]byte
	for _, f := range append(testutil.GenFrames(5, 2000), testutil.GenMoreFrames(6, 2000)...) {
		if et := uint16(f[12])<<8 | uint16(f[13]); (et == 0x0800 || et == 0x86dd) && len(f) > 14 {
			frames = append(frames, f[14:])
		}
	}
	return frames
}

// libpcapVerdicts compiles expr with libpcap, taking "expression rejects
// all packets" for the program that does.
func libpcapCompile(lp *testutil.Libpcap, expr string) ([]bpf.Instruction, error) {
	classic, err := lp.Compile(expr)
	if err != nil && strings.Contains(err.Error(), "expression rejects all packets") {
		return []bpf.Instruction{bpf.RetConstant{Val: 0}}, nil
	}
	return classic, err
}

// compareVM checks that insns, run in the interpreter on frames of link,
// gives classic's verdict on each, and returns how many classic accepts.
func compareVM(t *testing.T, insns asm.Instructions, classic []bpf.Instruction, frames [][]byte, link packet.LinkType) int {
	t.Helper()
	v, err := vm.New(insns, nil)
	if err != nil {
		t.Fatal(err)
	}
	libpcap := testutil.ClassicVM(t, classic)
	accepted, bad := 0, 0
	for i, f := range frames {
		got, err := v.RunFrame(f, link)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		want := libpcap(f)
		if want != 0 {
			accepted++
		}
		if (got != 0) != (want != 0) {
			if bad++; bad <= 3 {
				t.Errorf("frame %d (% x): the program returns %#x, libpcap's %d", i, f, got, want)
			}
		}
	}
	return accepted
}

// TestLinkLevelRawIP checks the link-level words on a raw-IP link against
// libpcap's DLT_RAW programs: refused where libpcap refuses them, and
// otherwise libpcap's verdict (reject every frame, or test the IP version)
// on every frame.
func TestLinkLevelRawIP(t *testing.T) {
	testutil.RequireTool(t, "tcpdump")
	lp := testutil.NewLibpcap(t, testutil.LinkRawIP)
	frames := rawFrames()
	for _, expr := range linkLevelExprs {
		t.Run(expr, func(t *testing.T) {
			classic, lerr := libpcapCompile(lp, expr)
			insns, err := pcapfilter.CompileWith(expr, packet.LinkRawIP, &pcapfilter.CompileOptions{Offline: true})
			switch {
			case lerr != nil && err == nil:
				t.Fatalf("Compile accepts what libpcap refuses (%v)", lerr)
			case lerr != nil:
				return
			case err != nil:
				t.Fatalf("Compile refuses what libpcap compiles: %v", err)
			}
			compareVM(t, insns, classic, frames, packet.LinkRawIP)
		})
	}
}

// TestIPBroadcast checks `ip broadcast` against libpcap: refused live
// without a netmask, as libpcap refuses it with PCAP_NETMASK_UNKNOWN;
// with tcpdump's netmask for a capture file, 0.0.0.0 (Offline's without
// a Netmask), libpcap's program; with another, the test of the host part
// that libpcap writes for it.
func TestIPBroadcast(t *testing.T) {
	testutil.RequireTool(t, "tcpdump")
	for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
		for _, opts := range []*pcapfilter.CompileOptions{nil, {Netmask: netip.MustParseAddr("ffff::")}} {
			_, err := pcapfilter.CompileWith("ip broadcast", link, opts)
			if err == nil || !strings.Contains(err.Error(), "netmask not known") {
				t.Errorf("ip broadcast live with %+v on %v: %v, want the error that the netmask is not known", opts, link, err)
			}
		}
	}
	offline, err := pcapfilter.CompileWith("ip broadcast", packet.LinkEthernet, &pcapfilter.CompileOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	zero, err := pcapfilter.CompileWith("ip broadcast", packet.LinkEthernet, &pcapfilter.CompileOptions{Netmask: netip.IPv4Unspecified()})
	if err != nil {
		t.Fatal(err)
	}
	if offline.String() != zero.String() {
		t.Errorf("Offline without a Netmask:\n%v\nwant Netmask 0.0.0.0's:\n%v", offline, zero)
	}
	eth := append(testutil.GenFrames(7, 1000), testutil.GenMoreFrames(8, 3000)...)
	for _, tt := range []struct {
		link    packet.LinkType
		tlink   uint16
		frames  [][]byte
		netmask string
		same    string // what libpcap's program for the netmask is
	}{
		{packet.LinkEthernet, testutil.LinkEthernet, eth, "0.0.0.0", "ip broadcast"},
		{packet.LinkRawIP, testutil.LinkRawIP, rawFrames(), "0.0.0.0", "ip broadcast"},
		{packet.LinkEthernet, testutil.LinkEthernet, eth, "255.255.255.0", "ip and (ip[16:4] & 0xff = 0 or ip[16:4] & 0xff = 0xff)"},
		{packet.LinkEthernet, testutil.LinkEthernet, eth, "255.255.0.0", "ip and (ip[16:4] & 0xffff = 0 or ip[16:4] & 0xffff = 0xffff)"},
		{packet.LinkRawIP, testutil.LinkRawIP, rawFrames(), "255.255.255.0", "ip and (ip[16:4] & 0xff = 0 or ip[16:4] & 0xff = 0xff)"},
		{packet.LinkEthernet, testutil.LinkEthernet, eth, "255.255.255.255", "ip and ip[16:4] & 0 = 0"},
	} {
		t.Run(tt.link.String()+"/"+tt.netmask, func(t *testing.T) {
			lp := testutil.NewLibpcap(t, tt.tlink)
			classic, err := lp.Compile(tt.same)
			if err != nil {
				t.Fatal(err)
			}
			for _, expr := range []string{"ip broadcast", "not ip broadcast", "ip broadcast or ip multicast"} {
				insns, err := pcapfilter.CompileWith(expr, tt.link, &pcapfilter.CompileOptions{Offline: true, Netmask: netip.MustParseAddr(tt.netmask)})
				if err != nil {
					t.Fatal(err)
				}
				want := classic
				if expr != "ip broadcast" {
					if want, err = lp.Compile(strings.Replace(expr, "ip broadcast", "("+tt.same+")", 1)); err != nil {
						t.Fatal(err)
					}
				}
				if n := compareVM(t, insns, want, tt.frames, tt.link); n == 0 && expr == "ip broadcast" {
					t.Errorf("%s: no frame is a broadcast: the test proves nothing", expr)
				}
			}
		})
	}
}

// TestLinkLevelErrors checks that the link-level words that libpcap
// refuses in a context get an error that says what is wrong there, not
// a syntax error further on.
func TestLinkLevelErrors(t *testing.T) {
	for _, tt := range []struct{ expr, want string }{
		{"tcp multicast", "multicast takes ether, ip or ip6"},
		{"arp broadcast", "broadcast takes ether, ip or ip6"},
		{"ip6 broadcast", "IPv6 has no broadcast"},
		{"llc foo", "unknown LLC type name"},
		{"stp host 10.0.0.1", "has no addresses"},
		{"decnet port 1", "DECnet has no ports"},
		{"decnet host foo", "DECnet names are not resolved"},
		{"decnet host 1.2/8", "takes no mask"},
		{"decnet proto 1", "not specifiable"},
		{"lat proto 1", "does not encapsulate"},
		{"iso proto \\tcp", "unknown OSI protocol"},
		{"fddi", "link layer applied in wrong context"},
		{"link", "link layer applied in wrong context"},
		{"ether proto stp", `expected a protocol number after "proto"`},
	} {
		_, err := pcapfilter.CompileWith(tt.expr, packet.LinkEthernet, &pcapfilter.CompileOptions{Offline: true})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want an error saying %q", tt.expr, err, tt.want)
		}
	}
	for _, tt := range []struct{ expr, want string }{
		{"llc", "no LLC header"},
		{"llc s", "no LLC header"},
		{"broadcast", "needs an Ethernet link"},
		{"ether multicast", "needs an Ethernet link"},
		{"wlan host 00:11:22:33:44:55", "needs an Ethernet link"},
	} {
		_, err := pcapfilter.CompileWith(tt.expr, packet.LinkRawIP, &pcapfilter.CompileOptions{Offline: true})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q on raw IP: %v, want an error saying %q", tt.expr, err, tt.want)
		}
	}
}

// TestCompileSpliceLinkLevel checks that a network-layer start refuses
// the link-level words, which need the link-layer header or match only
// frames with no IP packet, and takes ip and ip6 multicast.
func TestCompileSpliceLinkLevel(t *testing.T) {
	opts := pcapfilter.SpliceOptions{Access: pcapfilter.DirectAccess, PacketStart: asm.R2, PacketEnd: asm.R3}
	for _, expr := range []string{"llc", "llc u", "stp", "ipx", "iso", "isis", "l1", "decnet", "decnet host 1.2",
		"atalk", "lat", "ether proto 100", "broadcast", "multicast", "fddi host 00:11:22:33:44:55", "ip and multicast"} {
		_, err := pcapfilter.CompileSplice(expr, packet.LinkRawIP, &opts)
		if !errors.Is(err, pcapfilter.ErrLinkLayer) {
			t.Errorf("CompileSplice(%q, LinkRawIP): %v, want an error wrapping ErrLinkLayer", expr, err)
		}
		if _, err := pcapfilter.CompileSplice(expr, packet.LinkEthernet, &opts); err != nil {
			t.Errorf("CompileSplice(%q, LinkEthernet): %v", expr, err)
		}
	}
	for _, expr := range []string{"ip multicast", "ip6 multicast", "not stp", "ip or stp"} {
		if _, err := pcapfilter.CompileSplice(expr, packet.LinkRawIP, &opts); err != nil {
			t.Errorf("CompileSplice(%q, LinkRawIP): %v", expr, err)
		}
	}
}
