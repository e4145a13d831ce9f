package vm

import "github.com/purebpf/purebpf/sockfilter/packet"

// The offsets of skb->data, the link-layer header and the network header
// in a frame that starts with a Linux cooked header, as a capture file on
// the "any" device has it: the header takes the link-layer header's place.
var (
	sllBases  = [4]int{baseData: 0, baseMAC: 0, baseNet: packet.SLLHeaderLen}
	sll2Bases = [4]int{baseData: 0, baseMAC: 0, baseNet: packet.SLL2HeaderLen}
)

// cooked sets up what the socket buffer says of a frame of a Linux cooked
// link (packet.LinkLinuxSLL, LinkLinuxSLL2) from its header: skb->protocol
// from the protocol field, skb->pkt_type from the packet type, and for
// SLL2 skb->ifindex from the interface index (SLL has none: info's
// Ifindex stays), with skb->ingress_ifindex the same unless the frame was
// outgoing. A frame too short for its header keeps what info said of it;
// its loads past the end fail.
func (fc *frameCtx) cooked(f []byte, link packet.LinkType) {
	h, err := packet.ParseSLL(f, link)
	if err != nil {
		return
	}
	fc.protocol = h.Protocol
	fc.pktType = h.PacketType
	if link == packet.LinkLinuxSLL2 {
		fc.ifindex = uint32(h.Ifindex)
	}
	fc.inIf = 0
	if h.PacketType != 4 { // PACKET_OUTGOING
		fc.inIf = fc.ifindex
	}
}
