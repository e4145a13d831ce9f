package testutil

import (
	"encoding/binary"
	"net/netip"
)

// Frames for the link-level grammar beyond IP (pcapfilter's llc.go):
// 802.3 frames with an 802.2 LLC header (the SAPs libpcap names, SNAP
// with AppleTalk's and encapsulated Ethernet's OUIs, I, S and U control
// fields of every command, ISO frames with CLNP, ES-IS and IS-IS PDUs),
// Novell's raw 802.3, the ethertypes of DECnet (with its routing header's
// padding and short and long forms), LAT, MOP, SCA, AppleTalk, AARP and
// IPX, and IPv4 and IPv6 packets to broadcast and multicast addresses.
func init() {
	registerMoreFrames("llc", (*frameGen).llcFrame)
	registerMoreFrames("llc-ethertypes", (*frameGen).linkTypeFrame)
	registerMoreFrames("llc-decnet", (*frameGen).decnetFrame)
	registerMoreFrames("cast", (*frameGen).castFrame)
}

var (
	// Destination MACs: unicast, broadcast, IPv4 and IPv6 multicast,
	// STP's and IS-IS's group addresses.
	genCastMACs = [][]byte{
		{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}, {0x33, 0x33, 0x00, 0x00, 0x00, 0x01},
		{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}, {0x01, 0x80, 0xc2, 0x00, 0x00, 0x14},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	genSAPs = []byte{0x42, 0xe0, 0xf0, 0xfe, 0xfe, 0xfe, 0xaa, 0x06, 0x00, 0xff, 0x04, 0x43}
	// Control bytes: U commands (with and without the P/F bit), S
	// commands, I frames.
	genControls = []byte{0x03, 0x13, 0x63, 0x73, 0x43, 0x0f, 0x1f, 0x6f, 0xe3, 0xf3, 0xaf, 0xbf, 0x87,
		0x01, 0x05, 0x09, 0x0d, 0x00, 0x02, 0x10, 0xfe}
	genSNAP = [][5]byte{
		{0x08, 0x00, 0x07, 0x80, 0x9b}, {0x00, 0x00, 0x00, 0x80, 0xf3}, {0x00, 0x00, 0x00, 0x81, 0x37},
		{0x00, 0x00, 0x00, 0x08, 0x00}, {0x08, 0x00, 0x07, 0x80, 0xf3}, {0x00, 0x00, 0x0c, 0x20, 0x00},
	}
	genNLPIDs    = []byte{0x81, 0x82, 0x83, 0x83, 0x83, 0x00, 0x8e}
	genISISTypes = []byte{15, 16, 17, 18, 20, 24, 25, 26, 27, 19, 0x2f}
	// Ethertypes of the link-level protocols, and the boundary between
	// 802.3 lengths and ethertypes.
	genLinkTypes = []uint16{0x6001, 0x6002, 0x6003, 0x6004, 0x6007, 0x809b, 0x80f3, 0x8137, 0x9000, 0x05dc, 0x05dd, 0x0600}
	// DECnet addresses area.node, as 16-bit words.
	genDECnet = []uint16{1<<10 | 2, 3<<10 | 4, 63<<10 | 1023, 1<<10 | 1, 1, 2<<10 | 1}
	genCastV4 = []string{"224.0.0.1", "239.255.255.250", "255.255.255.255", "10.0.0.255", "10.0.0.0",
		"0.0.0.0", "223.255.255.255", "10.0.0.1", "192.168.1.255"}
	genCastV6 = []string{"ff02::1", "ff05::1:3", "fe80::1", "2001:db8::1", "feff::1"}
)

// macHeader returns destination and source MACs, and sometimes a VLAN
// tag.
func (g *frameGen) macHeader() []byte {
	f := append([]byte{}, genCastMACs[g.pick(len(genCastMACs))]...)
	f = append(f, genMACs[g.pick(len(genMACs))]...)
	if g.chance(0.1) {
		f = binary.BigEndian.AppendUint16(f, 0x8100)
		f = binary.BigEndian.AppendUint16(f, genVLANs[g.pick(len(genVLANs))])
	}
	return f
}

// truncate cuts f, sometimes, to a length of at least min.
func (g *frameGen) truncate(f []byte, min int) []byte {
	if g.chance(0.15) && len(f) > min {
		f = f[:min+g.pick(len(f)-min)]
	}
	return f
}

// llcFrame returns an 802.3 frame: the length, an LLC header and what
// its SAPs carry.
func (g *frameGen) llcFrame() []byte {
	f := g.macHeader()
	dsap := genSAPs[g.pick(len(genSAPs))]
	ssap := dsap
	if g.chance(0.2) {
		ssap = genSAPs[g.pick(len(genSAPs))]
	}
	control := genControls[g.pick(len(genControls))]
	if g.chance(0.1) {
		control = byte(g.r.Uint32())
	}
	var body []byte
	switch {
	case dsap == 0xff && ssap == 0xff:
		// Novell raw 802.3: an IPX header's checksum 0xffff.
		body = append([]byte{0xff, 0xff}, g.bytes(28)...)
	case dsap == 0xaa:
		s := genSNAP[g.pick(len(genSNAP))]
		if g.chance(0.9) {
			control = 0x03
		}
		body = append([]byte{dsap, ssap, control}, s[:]...)
		body = append(body, g.bytes(8+g.pick(20))...)
	case dsap == 0xfe:
		nlpid := genNLPIDs[g.pick(len(genNLPIDs))]
		if g.chance(0.9) {
			control = 0x03
		}
		// NLPID, length indicator, version, ID length, PDU type.
		pdu := []byte{nlpid, 27, 1, 0, genISISTypes[g.pick(len(genISISTypes))]}
		if g.chance(0.1) {
			pdu[4] |= 0xe0
		}
		body = append([]byte{dsap, ssap, control}, pdu...)
		body = append(body, g.bytes(g.pick(30))...)
	default:
		body = append([]byte{dsap, ssap, control}, g.bytes(g.pick(40))...)
	}
	length := uint16(len(body))
	switch x := g.r.Float64(); {
	case x < 0.1:
		length = 1500
	case x < 0.15:
		length = uint16(g.pick(1501))
	case x < 0.2:
		length = 0
	}
	f = binary.BigEndian.AppendUint16(f, length)
	f = append(f, body...)
	return g.truncate(f, 15)
}

// linkTypeFrame returns a frame of one of the link-level ethertypes, or
// of the boundary values between lengths and ethertypes.
func (g *frameGen) linkTypeFrame() []byte {
	f := g.macHeader()
	f = binary.BigEndian.AppendUint16(f, genLinkTypes[g.pick(len(genLinkTypes))])
	if g.chance(0.3) {
		// An LLC-like start, so that SAP tests see their values
		// after an ethertype too.
		f = append(f, genSAPs[g.pick(len(genSAPs))], genSAPs[g.pick(len(genSAPs))], 0x03)
	}
	f = append(f, g.bytes(10+g.pick(40))...)
	return g.truncate(f, 15)
}

// decnetFrame returns a DECnet frame (ethertype 0x6003): the 2-byte
// length, then the routing header, with a byte of padding or none (a
// first byte 0x81) and the short or the long form, whose flags' low bits
// are 2 and 6.
func (g *frameGen) decnetFrame() []byte {
	f := g.macHeader()
	f = binary.BigEndian.AppendUint16(f, 0x6003)
	var h []byte
	if g.chance(0.5) {
		pad := byte(0x81)
		if g.chance(0.2) {
			pad = 0x80 | byte(g.pick(4))
		}
		h = append(h, pad)
	}
	long := g.chance(0.5)
	flags := byte(0x02)
	if long {
		flags = 0x06
	}
	if g.chance(0.3) {
		flags |= byte(g.pick(32)) << 3
	}
	if g.chance(0.1) {
		flags = byte(g.r.Uint32())
	}
	addr := func() []byte {
		a := genDECnet[g.pick(len(genDECnet))]
		return binary.LittleEndian.AppendUint16(nil, a)
	}
	h = append(h, flags)
	if long {
		// d-area, d-subarea, destination (HIORD AA-00-04-00 and the
		// address), s-area, s-subarea, source, then nl2, visits,
		// service class, protocol type.
		h = append(h, 0, 0, 0xaa, 0x00, 0x04, 0x00)
		h = append(h, addr()...)
		h = append(h, 0, 0, 0xaa, 0x00, 0x04, 0x00)
		h = append(h, addr()...)
		h = append(h, 0, byte(g.pick(64)), 0, 0)
	} else {
		// Destination, source, forward.
		h = append(h, addr()...)
		h = append(h, addr()...)
		h = append(h, byte(g.pick(64)))
	}
	h = append(h, g.bytes(g.pick(20))...)
	f = binary.LittleEndian.AppendUint16(f, uint16(len(h)))
	f = append(f, h...)
	return g.truncate(f, 15)
}

// castFrame returns an IPv4 or IPv6 packet (UDP) to a broadcast,
// multicast or unicast address, behind a broadcast, multicast or unicast
// MAC.
func (g *frameGen) castFrame() []byte {
	f := g.macHeader()
	tagged := len(f) > 12
	if g.chance(0.6) {
		f = binary.BigEndian.AppendUint16(f, 0x0800)
		ip := make([]byte, 20)
		ip[0], ip[8], ip[9] = 0x45, 64, 17
		binary.BigEndian.PutUint16(ip[2:], 28)
		copy(ip[12:], g.ipv4())
		dst := netip.MustParseAddr(genCastV4[g.pick(len(genCastV4))]).As4()
		copy(ip[16:], dst[:])
		f = append(f, ip...)
		f = append(f, g.bytes(8)...)
		if tagged {
			return g.truncate(f, 15)
		}
		return g.truncate(f, 34)
	}
	f = binary.BigEndian.AppendUint16(f, 0x86dd)
	ip := make([]byte, 40)
	ip[0], ip[6], ip[7] = 0x60, 17, 64
	binary.BigEndian.PutUint16(ip[4:], 8)
	copy(ip[8:], g.ipv6())
	dst := netip.MustParseAddr(genCastV6[g.pick(len(genCastV6))]).As16()
	copy(ip[24:], dst[:])
	f = append(f, ip...)
	f = append(f, g.bytes(8)...)
	if tagged {
		return g.truncate(f, 15)
	}
	return g.truncate(f, 54)
}
