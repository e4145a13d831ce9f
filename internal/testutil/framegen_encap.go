package testutil

import "encoding/binary"

// GenMoreFrames' encapsulations: MPLS, PPPoE discovery and session,
// Geneve, IPv6 extension-header chains for protochain, and the IP
// protocols of `ah`, `esp`, `pim`, `vrrp` and `carp`.

func init() {
	registerMoreFrames("encap-mpls", (*frameGen).mplsFrame)
	registerMoreFrames("encap-pppoed", (*frameGen).pppoedFrame)
	registerMoreFrames("encap-pppoes", (*frameGen).pppoesFrame)
	registerMoreFrames("encap-geneve", (*frameGen).geneveFrame)
	registerMoreFrames("encap-ip6chain", (*frameGen).ip6ChainFrame)
	registerMoreFrames("encap-ipproto", (*frameGen).ipProtoFrame)
}

var (
	genMPLSLabels = []uint32{0, 1, 100, 200, 0xfffff}
	genPPPoEIDs   = []uint16{0, 1, 2, 3, 0x1234, 0xffff}
	genVNIs       = []uint32{0, 1, 5, 100, 0xffffff}
)

// ethHeader returns an Ethernet header with up to one VLAN tag before the
// EtherType etype.
func (g *frameGen) ethHeader(etype uint16) []byte {
	f := append([]byte{}, genMACs[g.pick(len(genMACs))]...)
	f = append(f, genMACs[g.pick(len(genMACs))]...)
	if g.chance(0.15) {
		f = binary.BigEndian.AppendUint16(f, 0x8100)
		f = binary.BigEndian.AppendUint16(f, genVLANs[g.pick(len(genVLANs))])
	}
	return binary.BigEndian.AppendUint16(f, etype)
}

// truncate cuts f short somewhere after its first 14 bytes, sometimes,
// keeping what BPF_PROG_TEST_RUN needs of an untagged IPv4 or IPv6 frame
// (as GenFrames does).
func (g *frameGen) truncate(f []byte) []byte {
	min := 15
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		min = 34
	case 0x86dd:
		min = 54
	}
	if g.chance(0.15) && len(f) > min {
		return f[:min+g.pick(len(f)-min)]
	}
	return f
}

// ipPacket returns an IPv4 or IPv6 packet as GenFrames makes them, and its
// version.
func (g *frameGen) ipPacket() ([]byte, int) {
	if g.chance(0.5) {
		return g.ipv4Packet(), 4
	}
	return g.ipv6Packet(), 6
}

// ipv4With returns an IPv4 header of protocol proto, sometimes with
// options, followed by body.
func (g *frameGen) ipv4With(proto uint8, body []byte) []byte {
	ihl := 5
	if g.chance(0.2) {
		ihl += 1 + g.pick(3)
	}
	h := make([]byte, 4*ihl)
	h[0] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(body)))
	if g.chance(0.1) {
		binary.BigEndian.PutUint16(h[6:], uint16(1+g.pick(0x1ffe)))
	}
	h[8] = 64
	h[9] = proto
	copy(h[12:], g.ipv4())
	copy(h[16:], g.ipv4())
	for i := 20; i < len(h); i++ {
		h[i] = 1
	}
	return append(h, body...)
}

// ipv6With returns an IPv6 header whose next header is next, followed by
// body.
func (g *frameGen) ipv6With(next uint8, body []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(body)))
	h[6] = next
	h[7] = 64
	copy(h[8:], g.ipv6())
	copy(h[24:], g.ipv6())
	return append(h, body...)
}

// mplsFrame is an MPLS unicast frame with one to three labels, the
// bottom-of-stack bit on the last one (or, sometimes, on none or the
// first), over IPv4, IPv6 or something else.
func (g *frameGen) mplsFrame() []byte {
	f := g.ethHeader(0x8847)
	n := 1 + g.pick(3)
	bos := n - 1
	if g.chance(0.15) {
		bos = []int{-1, 0}[g.pick(2)]
	}
	for i := range n {
		label := genMPLSLabels[g.pick(len(genMPLSLabels))]
		if g.chance(0.1) {
			label = g.r.Uint32() & 0xfffff
		}
		e := label<<12 | uint32(g.pick(8))<<9 | 64
		if i == bos {
			e |= 1 << 8
		}
		f = binary.BigEndian.AppendUint32(f, e)
	}
	switch x := g.r.Float64(); {
	case x < 0.45:
		f = append(f, g.ipv4Packet()...)
	case x < 0.85:
		f = append(f, g.ipv6Packet()...)
	default:
		f = append(f, g.bytes(10+g.pick(40))...)
	}
	return g.truncate(f)
}

// pppoeHeader returns a PPPoE header of code and session id whose payload
// is n bytes long.
func pppoeHeader(code byte, id uint16, n int) []byte {
	h := []byte{0x11, code}
	h = binary.BigEndian.AppendUint16(h, id)
	return binary.BigEndian.AppendUint16(h, uint16(n))
}

// pppoedFrame is a PPPoE discovery frame (PADI, PADO, PADR, PADS, PADT).
func (g *frameGen) pppoedFrame() []byte {
	code := []byte{0x09, 0x07, 0x19, 0x65, 0xa7}[g.pick(5)]
	tags := []byte{0x01, 0x01, 0, 0} // Service-Name, empty
	tags = append(tags, g.bytes(g.pick(20))...)
	f := g.ethHeader(0x8863)
	f = append(f, pppoeHeader(code, genPPPoEIDs[g.pick(len(genPPPoEIDs))], len(tags))...)
	return g.truncate(append(f, tags...))
}

// pppoesFrame is a PPPoE session frame carrying PPP: IPv4, IPv6, MPLS,
// Geneve in IP, LCP or another protocol.
func (g *frameGen) pppoesFrame() []byte {
	var proto uint16
	var payload []byte
	switch x := g.r.Float64(); {
	case x < 0.4:
		proto, payload = 0x0021, g.ipv4Packet()
	case x < 0.7:
		proto, payload = 0x0057, g.ipv6Packet()
	case x < 0.8:
		ip, _ := g.ipPacket()
		proto, payload = 0x0281, binary.BigEndian.AppendUint32(nil, 100<<12|1<<8|64)
		payload = append(payload, ip...)
	case x < 0.85:
		etype, ip := g.geneveIP(false)
		proto, payload = map[uint16]uint16{0x0800: 0x0021, 0x86dd: 0x0057, 0x8847: 0x0281}[etype], ip
	default:
		proto = []uint16{0xc021, 0x8021, 0x0806, 0x8864, 0x8863, uint16(g.r.Uint32())}[g.pick(6)]
		payload = g.bytes(4 + g.pick(40))
	}
	id := genPPPoEIDs[g.pick(len(genPPPoEIDs))]
	if g.chance(0.1) {
		id = uint16(g.r.Uint32())
	}
	ppp := binary.BigEndian.AppendUint16(nil, proto)
	ppp = append(ppp, payload...)
	f := g.ethHeader(0x8864)
	f = append(f, pppoeHeader(0, id, len(ppp))...)
	return g.truncate(append(f, ppp...))
}

// geneveFrame is a Geneve frame over UDP port 6081, in IPv4 or IPv6
// (sometimes inside MPLS), with 0 to 4 words of options, a VNI, and inside
// an Ethernet frame (protocol 0x6558: as GenFrames makes them, or MPLS or
// PPPoE) or a bare IP packet; sometimes version 1 or another port.
func (g *frameGen) geneveFrame() []byte {
	etype, ip := g.geneveIP(true)
	return g.truncate(append(g.ethHeader(etype), ip...))
}

// geneveIP returns the packet of a geneveFrame and its EtherType; nest
// lets the frame inside be another Geneve frame.
func (g *frameGen) geneveIP(nest bool) (uint16, []byte) {
	opts := g.pick(5)
	var proto uint16
	var inner []byte
	switch x := g.r.Float64(); {
	case x < 0.1 && nest:
		etype, ip := g.geneveIP(false)
		proto, inner = 0x6558, append(g.ethHeader(etype), ip...)
	case x < 0.5:
		proto, inner = 0x6558, g.frame()
	case x < 0.6:
		proto, inner = 0x6558, g.mplsFrame()
	case x < 0.7:
		proto, inner = 0x6558, g.pppoesFrame()
	case x < 0.8:
		proto, inner = 0x0800, g.ipv4Packet()
	case x < 0.85:
		// A DNS query.
		proto, inner = 0x0800, g.ipv4With(17, []byte{0x30, 0x39, 0, 53, 0, 20, 0, 0, 1, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	default:
		proto, inner = 0x86dd, g.ipv6Packet()
	}
	ver := byte(0)
	if g.chance(0.05) {
		ver = 1
	}
	vni := genVNIs[g.pick(len(genVNIs))]
	if g.chance(0.1) {
		vni = g.r.Uint32() & 0xffffff
	}
	h := []byte{ver<<6 | byte(opts), 0}
	h = binary.BigEndian.AppendUint16(h, proto)
	h = binary.BigEndian.AppendUint32(h, vni<<8)
	h = append(h, g.bytes(4*opts)...)
	h = append(h, inner...)
	dport := uint16(6081)
	if g.chance(0.05) {
		dport = g.port()
	}
	udp := binary.BigEndian.AppendUint16(nil, g.port())
	udp = binary.BigEndian.AppendUint16(udp, dport)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(h)))
	udp = append(udp, 0, 0)
	udp = append(udp, h...)
	var ip []byte
	etype := uint16(0x0800)
	if g.chance(0.6) {
		ip = g.ipv4With(17, udp)
	} else {
		etype, ip = 0x86dd, g.ipv6With(17, udp)
	}
	if g.chance(0.1) {
		// Over one MPLS label.
		etype, ip = 0x8847, append(binary.BigEndian.AppendUint32(nil, 100<<12|1<<8|64), ip...)
	}
	return etype, ip
}

// extChain returns a chain of up to max IPv6 extension headers (hop-by-hop,
// routing, fragment, destination options, AH) before final, built back
// to front, and the protocol of its first header.
func (g *frameGen) extChain(max int, final uint8, ah bool) ([]byte, uint8) {
	var chain []byte
	next := final
	for range g.pick(max + 1) {
		kinds := []uint8{0, 43, 44, 60}
		if ah {
			kinds = append(kinds, 51, 51)
		}
		kind := kinds[g.pick(len(kinds))]
		var e []byte
		switch kind {
		case 44:
			e = []byte{next, 0, byte(g.pick(2)), byte(g.pick(4)), 0, 0, 0, 1}
		case 51:
			// Payload length: the header's length in 4-byte words
			// minus 2; 12 bytes of ICV make it 4.
			words := 3 + 2*g.pick(3)
			e = []byte{next, byte(words - 2), 0, 0}
			e = append(e, g.bytes(4*words-4)...)
		default:
			n := g.pick(3)
			e = append([]byte{next, byte(n)}, g.bytes(8*n+6)...)
		}
		chain = append(e, chain...)
		next = kind
	}
	return chain, next
}

// finalProto is the protocol at the end of an extension-header chain.
func (g *frameGen) finalProto() uint8 {
	if g.chance(0.1) {
		return uint8(g.r.Uint32())
	}
	return []uint8{6, 6, 17, 58, 59, 50, 132}[g.pick(7)]
}

// ip6ChainFrame is an IPv6 packet with a chain of zero to six extension
// headers, or sometimes an IPv4 packet starting with AH headers.
func (g *frameGen) ip6ChainFrame() []byte {
	final := g.finalProto()
	if g.chance(0.2) {
		chain, next := g.extChain(2, final, true)
		body := append(chain, g.transport(final)...)
		if next == final {
			next = 51
			body = append([]byte{final, 4, 0, 0}, append(g.bytes(20), body...)...)
		}
		return g.truncate(append(g.ethHeader(0x0800), g.ipv4With(next, body)...))
	}
	chain, next := g.extChain(6, final, g.chance(0.5))
	body := append(chain, g.transport(final)...)
	return g.truncate(append(g.ethHeader(0x86dd), g.ipv6With(next, body)...))
}

// ipProtoFrame is IPv4 or IPv6 (sometimes behind a fragment header) of
// protocol ESP, AH, PIM or VRRP/CARP.
func (g *frameGen) ipProtoFrame() []byte {
	proto := []uint8{50, 51, 103, 112}[g.pick(4)]
	body := g.bytes(8 + g.pick(40))
	if g.chance(0.5) {
		return g.truncate(append(g.ethHeader(0x0800), g.ipv4With(proto, body)...))
	}
	next := proto
	if g.chance(0.3) {
		body = append([]byte{proto, 0, 0, 0, 0, 0, 0, 1}, body...)
		next = 44
	}
	return g.truncate(append(g.ethHeader(0x86dd), g.ipv6With(next, body)...))
}
