package packet

import (
	"strconv"

	"github.com/purebpf/purebpf/internal/wire"
)

// Layer names a header Parse decodes: where a *ParseError is, and where
// Parse stopped in a frame it could not decode wholly (Record.ErrLayer).
// The zero Layer, LayerNone, names none.
type Layer uint8

// The layers, in the order Parse meets them.
const (
	LayerNone     Layer = iota
	LayerFrame          // the frame as a whole: empty, or of a link type Parse does not know
	LayerEthernet       // the Ethernet II header
	LayerSLL            // a Linux cooked capture header, v1
	LayerSLL2           // a Linux cooked capture header, v2
	LayerVLAN           // an IEEE 802.1Q or 802.1ad tag
	LayerIP             // the first byte of a LinkRawIP frame, which says the IP version
	LayerIPv4           // the IPv4 header with its options
	LayerIPv6           // the fixed IPv6 header
	LayerIPv6Ext        // an IPv6 extension header
	LayerTCP            // the TCP header with its options
	LayerUDP            // the UDP header
	LayerICMP           // the 8-byte ICMP header
	LayerICMPv6         // the 8-byte ICMPv6 header
	LayerARP            // the ARP packet
)

var layerNames = [...]string{
	LayerNone:     "none",
	LayerFrame:    "frame",
	LayerEthernet: "ethernet",
	LayerSLL:      "sll",
	LayerSLL2:     "sll2",
	LayerVLAN:     "vlan",
	LayerIP:       "ip",
	LayerIPv4:     "ipv4",
	LayerIPv6:     "ipv6",
	LayerIPv6Ext:  "ipv6 extension",
	LayerTCP:      "tcp",
	LayerUDP:      "udp",
	LayerICMP:     "icmp",
	LayerICMPv6:   "icmpv6",
	LayerARP:      "arp",
}

// String returns the layer's name, as ParseError's message and
// AppendJSON's "truncated" and "malformed" fields give it: "frame",
// "ethernet", "sll", "sll2", "vlan", "ip", "ipv4", "ipv6", "ipv6
// extension", "tcp", "udp", "icmp", "icmpv6", "arp", or "none".
func (l Layer) String() string {
	if int(l) < len(layerNames) {
		return layerNames[l]
	}
	return "Layer(" + strconv.Itoa(int(l)) + ")"
}

// tcpdumpName returns the name tcpdump gives the layer in its mark for a
// frame cut short, "[|tcp]": its printer's protocol name. For an IPv6
// extension header it depends on which one, proto.
func (l Layer) tcpdumpName(proto uint8) string {
	switch l {
	case LayerEthernet:
		return "ether"
	case LayerIP, LayerIPv4:
		return "ip"
	case LayerIPv6:
		return "ip6"
	case LayerICMPv6:
		return "icmp6"
	case LayerIPv6Ext:
		switch proto {
		case wire.IPProtoHopOpts:
			return "hbhopt"
		case wire.IPProtoDstOpts:
			return "dstopt"
		case wire.IPProtoRouting:
			return "rt6"
		case wire.IPProtoFragment:
			return "frag6"
		case wire.IPProtoAH:
			return "ah"
		}
		return "ip6"
	}
	return l.String()
}
