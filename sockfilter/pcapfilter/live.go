package pcapfilter

import (
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// What only a live socket can tell: the direction of a frame (`inbound`,
// `outbound`) and the interface it is on (`ifindex N`). libpcap's Linux
// programs read them as ancillary data (SKF_AD_PKTTYPE, SKF_AD_IFINDEX);
// the eBPF program reads the same fields of struct __sk_buff, pkt_type and
// ifindex. A capture file has neither, and libpcap refuses them there;
// so does CompileOptions.Offline.

// packetOutgoing is PACKET_OUTGOING (linux/if_packet.h).
const packetOutgoing = 4

func init() {
	for _, w := range []string{"inbound", "outbound", "ifindex"} {
		keywords[w] = true
	}
}

// linkDescription is libpcap's description of the link type, for the
// messages it gives for a capture file.
func (p *parser) linkDescription() string {
	if p.link == packet.LinkRawIP {
		return "Raw IP"
	}
	return "Ethernet"
}

// parseLive parses `inbound`, `outbound` or `ifindex N` after its keyword
// t (gen_inbound, gen_ifindex).
func (p *parser) parseLive(t token) (pred, *Error) {
	if t.text == "ifindex" {
		n := p.peek()
		v, ok := parseNumber(n.text)
		switch {
		case n.kind == tokWord && isBigNumber(n.text):
			return nil, p.fail(n, "%s", errBigNumber(n.text))
		case n.kind != tokWord || !ok:
			return nil, p.fail(n, "expected an interface index after \"ifindex\", found %s", n)
		}
		p.next()
		if p.opts.Offline {
			return nil, p.fail(t, "ifindex not supported on %s when reading savefiles", p.linkDescription())
		}
		return test(&val{kind: valCtx, off: int32(skb.Ifindex), size: 4}, cmpEq, v), nil
	}
	if p.opts.Offline {
		return nil, p.fail(t, "inbound/outbound not supported on %s when reading savefiles", p.linkDescription())
	}
	out := test(&val{kind: valCtx, off: int32(skb.PktType), size: 4}, cmpEq, packetOutgoing)
	if t.text == "inbound" {
		return not(out), nil
	}
	return out, nil
}
