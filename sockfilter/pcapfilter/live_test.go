package pcapfilter_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// liveExprs use what only a live socket can tell.
var liveExprs = []string{
	"inbound", "outbound", "ifindex 2", "not ifindex 1",
	"inbound and tcp port 80", "outbound or ifindex 7", "ip and not outbound",
	"(inbound or udp) and ifindex 1", "outbound and host 10.0.0.1",
}

// TestCompileLive checks `inbound`, `outbound` and `ifindex` against
// libpcap's program for a live Ethernet socket (`tcpdump -ddd -i lo`,
// which reads skb->pkt_type and the interface index as ancillary data),
// both run in the VM on every frame of the corpus for every packet type
// and a few interface indexes: libpcap's converted by FromClassic, as the
// kernel converts it. Opening lo needs privileges; without them the test
// compares with what the ancillary data mean instead.
func TestCompileLive(t *testing.T) {
	frames := sampleFrames(t)
	dirs := []packet.Direction{packet.DirectionHost, packet.DirectionBroadcast, packet.DirectionMulticast,
		packet.DirectionOtherHost, packet.DirectionOutgoing}
	for _, expr := range liveExprs {
		t.Run(expr, func(t *testing.T) {
			insns, err := pcapfilter.Compile(expr, packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			got, err := vm.New(insns, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := liveReference(t, expr)
			bad := 0
			for _, dir := range dirs {
				for _, ifindex := range []int{1, 2, 7} {
					info := &packet.Info{Direction: dir, Ifindex: ifindex}
					for i, f := range frames {
						g, err := got.RunFrameInfo(f, packet.LinkEthernet, info)
						if err != nil {
							t.Fatalf("frame %d: %v", i, err)
						}
						if w := want(f, info); (g != 0) != w {
							if bad++; bad <= 3 {
								t.Errorf("frame %d (% x), %v, ifindex %d: Compile's program returns %#x, libpcap accepts: %v", i, f, dir, ifindex, g, w)
							}
						}
					}
				}
			}
		})
	}
}

// liveReference returns libpcap's verdict on a live socket for expr.
func liveReference(t *testing.T, expr string) func([]byte, *packet.Info) bool {
	t.Helper()
	out, err := exec.Command("tcpdump", "-ddd", "-i", "lo", "--", expr).Output()
	if err != nil {
		return meaningReference(t, expr)
	}
	classic, err := testutil.ParseDDD(string(out))
	if err != nil {
		t.Fatal(err)
	}
	insns, err := pcapfilter.FromClassicLinkRelative(classic)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vm.New(insns, nil)
	if err != nil {
		t.Fatal(err)
	}
	return func(f []byte, info *packet.Info) bool {
		r, err := v.RunFrameInfo(f, packet.LinkEthernet, info)
		if err != nil {
			t.Fatal(err)
		}
		return r != 0
	}
}

// meaningReference returns the verdict for expr from what inbound,
// outbound and ifindex mean and libpcap's offline program for the rest:
// each is replaced by the constant it is for the frame's Info.
func meaningReference(t *testing.T, expr string) func([]byte, *packet.Info) bool {
	t.Helper()
	testutil.RequireTool(t, "tcpdump")
	lp := testutil.NewLibpcap(t, testutil.LinkEthernet)
	progs := map[[2]int]func([]byte) int{}
	for _, out := range []bool{false, true} {
		for _, ifindex := range []int{1, 2, 7} {
			e := strings.NewReplacer("inbound", bstr(!out), "outbound", bstr(out),
				"ifindex 1", bstr(ifindex == 1), "ifindex 2", bstr(ifindex == 2), "ifindex 7", bstr(ifindex == 7)).Replace(expr)
			classic, err := lp.Compile(e)
			switch {
			case err != nil && strings.Contains(err.Error(), "expression rejects all packets"):
				progs[[2]int{b2i(out), ifindex}] = func([]byte) int { return 0 }
				continue
			case err != nil:
				t.Fatalf("%s: %v", e, err)
			}
			progs[[2]int{b2i(out), ifindex}] = testutil.ClassicVM(t, classic)
		}
	}
	return func(f []byte, info *packet.Info) bool {
		return progs[[2]int{b2i(info.Direction == packet.DirectionOutgoing), info.Ifindex}](f) != 0
	}
}

func bstr(b bool) string {
	if b {
		return "(1 = 1)"
	}
	return "(1 = 0)"
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
