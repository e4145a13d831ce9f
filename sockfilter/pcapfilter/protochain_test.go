package pcapfilter_test

import (
	"encoding/binary"
	"testing"

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
