package vm_test

import (
	"testing"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// TestCookedFrames checks RunFrame and RunFrameInfo on frames of the
// Linux cooked links: the header in the link-layer header's place, the
// network header after it, and the socket buffer's protocol, packet type
// and (SLL2) interface indexes from the header, whatever info says.
func TestCookedFrames(t *testing.T) {
	h := packet.SLLHeader{Protocol: 0x0800, Ifindex: 7, HAType: 1, PacketType: 4, AddrLen: 6, Addr: [8]byte{2, 0, 0, 0, 0, 1}}
	ip := udpFrame[14:]
	sll := append(h.AppendSLL(nil), ip...)
	sll2 := append(h.AppendSLL2(nil), ip...)
	cases := []struct {
		name     string
		src      string
		sll, sl2 uint32
	}{
		{"len", prog("r0 = *(u32 *)(r1 +0)"), uint32(len(sll)), uint32(len(sll2))},
		{"protocol", prog("r0 = *(u32 *)(r1 +16)"), 0x0008, 0x0008},
		{"pkt_type", prog("r0 = *(u32 *)(r1 +4)"), 4, 4},
		{"ifindex", prog("r0 = *(u32 *)(r1 +40)"), 0, 7},
		{"ingress_ifindex of an outgoing frame", prog("r0 = *(u32 *)(r1 +36)"), 0, 0},
		{"data is the header", pkt("r0 = *(u16 *)skb[0]"), 4, 0x0800},
		{"link-layer header is the header", pkt("r0 = *(u16 *)skb[-2097152]"), 4, 0x0800},
		{"network header after it", pkt("r0 = *(u8 *)skb[-1048576]"), 0x45, 0x45},
		{"IP destination from the network header", pkt("r0 = *(u32 *)skb[-1048560]"), 0x0a000002, 0x0a000002},
		{"past the end", pkt("r0 = *(u8 *)skb[-1048540]", "r0 = 1"), 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVM(t, tc.src, nil)
			for _, c := range []struct {
				link  packet.LinkType
				frame []byte
				want  uint32
			}{{packet.LinkLinuxSLL, sll, tc.sll}, {packet.LinkLinuxSLL2, sll2, tc.sl2}} {
				if got, err := v.RunFrame(c.frame, c.link); err != nil || got != c.want {
					t.Errorf("%v: RunFrame = %#x, %v; want %#x", c.link, got, err, c.want)
				}
				// The header wins over info, whose Length still counts,
				// and whose Ifindex SLL, which has none, keeps.
				info := &packet.Info{Ifindex: 3, Direction: packet.DirectionHost, Length: len(c.frame)}
				if c.link == packet.LinkLinuxSLL && tc.name == "ifindex" {
					c.want = 3
				}
				if got, err := v.RunFrameInfo(c.frame, c.link, info); err != nil || got != c.want {
					t.Errorf("%v: RunFrameInfo = %#x, %v; want %#x", c.link, got, err, c.want)
				}
			}
		})
	}
	// A frame shorter than its header runs, its loads failing.
	v := newVM(t, pkt("r0 = *(u32 *)(r6 +0)"), nil)
	if got, err := v.RunFrame(sll2[:10], packet.LinkLinuxSLL2); err != nil || got != 10 {
		t.Errorf("short frame: %#x, %v; want 10", got, err)
	}
}
