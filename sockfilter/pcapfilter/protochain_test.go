package pcapfilter_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// chainFrame returns an Ethernet frame of IPv6 with n destination-options
// headers (8 bytes each) before a TCP header.
func chainFrame(n int) []byte {
	f := make([]byte, 12, 14+40+8*n+20)
	f = binary.BigEndian.AppendUint16(f, 0x86dd)
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(8*n+20))
	ip[6] = 6
	if n > 0 {
		ip[6] = 60
	}
	f = append(f, ip...)
	for i := range n {
		next := byte(60)
		if i == n-1 {
			next = 6
		}
		f = append(f, next, 0, 1, 4, 0, 0, 0, 0)
	}
	return append(f, make([]byte, 20)...)
}

// TestProtochainBound pins the bound of the unrolled walk: an IPv6 packet
// whose TCP header follows up to 16 extension headers matches `ip6
// protochain 6`, as in libpcap (run as its user-space filter runs it);
// one with 17 or more does not, where libpcap's loop goes on.
func TestProtochainBound(t *testing.T) {
	testutil.RequireTool(t, "tcpdump")
	const expr = "ip6 protochain 6"
	classic, err := testutil.NewLibpcap(t, testutil.LinkEthernet).Compile(expr)
	if err != nil {
		t.Fatal(err)
	}
	libpcap := testutil.ClassicVM(t, classic)
	insns, err := pcapfilter.Compile(expr, packet.LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vm.New(insns, nil)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n <= 20; n++ {
		f := chainFrame(n)
		got, err := v.RunFrame(f, packet.LinkEthernet)
		if err != nil {
			t.Fatal(err)
		}
		if libpcap(f) == 0 {
			t.Fatalf("%d headers: libpcap's walk does not reach TCP", n)
		}
		if want := n <= 16; (got != 0) != want {
			t.Errorf("%d extension headers: the program returns %#x, want a match %v", n, got, want)
		}
		if n == 16 {
			// Cut before the last header's length byte: the
			// walk's load fails, and both reject.
			short := f[:14+40+8*n-7]
			got, _ := v.RunFrame(short, packet.LinkEthernet)
			if (got != 0) != (libpcap(short) != 0) {
				t.Errorf("%d headers, truncated: the program returns %#x, libpcap %d", n, got, libpcap(short))
			}
		}
	}
}

// TestEncapRawIP compiles the encapsulations for a raw IP link and
// compares their programs in the interpreter with libpcap's DLT_RAW
// programs on GenMoreFrames' frames without their Ethernet header:
// protochain and geneve start at the IP header, pppoes moves the headers
// as libpcap does though its own test never holds; mpls is refused by
// both.
func TestEncapRawIP(t *testing.T) {
	testutil.RequireTool(t, "tcpdump")
	lp := testutil.NewLibpcap(t, testutil.LinkRawIP)
	var frames [][]byte
	for _, f := range append(testutil.GenMoreFrames(5, 3000), testutil.GenFrames(6, 500)...) {
		if len(f) > 14 {
			frames = append(frames, f[14:])
		}
	}
	for _, expr := range []string{
		"protochain 6", "ip6 protochain 17", "ip protochain 51", "geneve", "geneve 5 and ip",
		"geneve and tcp port 80", "geneve and ether host 00:11:22:33:44:55", "geneve and geneve",
		"pppoes or ip", "pppoes or mpls and ip", "pppoed or ip6", "esp or ah", "vrrp", "mpls",
	} {
		t.Run(expr, func(t *testing.T) {
			classic, lerr := lp.Compile(expr)
			insns, err := pcapfilter.Compile(expr, packet.LinkRawIP)
			switch {
			case lerr != nil && err != nil:
				return
			case lerr != nil && strings.Contains(lerr.Error(), "rejects all packets"):
				classic = []bpf.Instruction{bpf.RetConstant{Val: 0}}
			case lerr != nil:
				t.Fatalf("Compile accepts what libpcap refuses: %v", lerr)
			case err != nil:
				t.Fatalf("Compile refuses what libpcap compiles: %v", err)
			}
			v, err := vm.New(insns, nil)
			if err != nil {
				t.Fatal(err)
			}
			ref := testutil.ClassicVM(t, classic)
			bad, accepted := 0, 0
			for i, f := range frames {
				want := ref(f)
				if want == testutil.NoVerdict {
					continue
				}
				if want != 0 {
					accepted++
				}
				got, err := v.RunFrame(f, packet.LinkRawIP)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if (got != 0) != (want != 0) {
					if bad++; bad <= 3 {
						t.Errorf("frame %d (% x): the program returns %#x, libpcap %d", i, f, got, want)
					}
				}
			}
			t.Logf("libpcap accepts %d of %d packets", accepted, len(frames))
		})
	}
}
