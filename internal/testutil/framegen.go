package testutil

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
)

// GenFrames generates n varied Ethernet frames from a seeded RNG for the
// differential tests of the compiler and the interpreter: IPv4 (with options, first and later
// fragments) and IPv6 (with extension headers) carrying TCP, UDP, SCTP,
// ICMP, ICMPv6 and others; ARP and RARP; other ethertypes; up to two VLAN
// tags; frames truncated anywhere the kernel's BPF_PROG_TEST_RUN still
// takes them. Addresses, ports and types come from small pools so that
// expressions match a good fraction.
func GenFrames(seed uint64, n int) [][]byte {
	g := &frameGen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	frames := make([][]byte, 0, n)
	for len(frames) < n {
		frames = append(frames, g.frame())
	}
	return frames
}

type frameGen struct{ r *rand.Rand }

var (
	genMACs = [][]byte{
		{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}, {0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x01, 0x02, 0x03, 0x04, 0x05, 0x06},
	}
	genIPv4  = []string{"10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.1", "192.168.1.100", "172.16.5.4", "8.8.8.8"}
	genIPv6  = []string{"::1", "fe80::1", "2001:db8::1", "2001:db8::2", "2001:db8:1::5", "fe80::aa:1"}
	genPorts = []uint16{80, 443, 53, 67, 68, 22, 1024, 8080, 12345, 90, 1023}
	genVLANs = []uint16{1, 100, 200, 4095}
)

func (g *frameGen) pick(n int) int { return g.r.IntN(n) }

func (g *frameGen) chance(p float64) bool { return g.r.Float64() < p }

func (g *frameGen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

func (g *frameGen) ipv4() []byte {
	a := netip.MustParseAddr(genIPv4[g.pick(len(genIPv4))]).As4()
	return a[:]
}

func (g *frameGen) ipv6() []byte {
	a := netip.MustParseAddr(genIPv6[g.pick(len(genIPv6))]).As16()
	return a[:]
}

func (g *frameGen) port() uint16 {
	if g.chance(0.1) {
		return uint16(g.r.Uint32())
	}
	return genPorts[g.pick(len(genPorts))]
}

func (g *frameGen) frame() []byte {
	f := append([]byte{}, genMACs[g.pick(len(genMACs))]...)
	f = append(f, genMACs[g.pick(len(genMACs))]...)
	tags := 0
	switch x := g.r.Float64(); {
	case x < 0.2:
		tags = 1
	case x < 0.3:
		tags = 2
	}
	for range tags {
		tpid := []uint16{0x8100, 0x88a8, 0x9100}[g.pick(3)]
		tci := genVLANs[g.pick(len(genVLANs))] | uint16(g.pick(8))<<13
		f = binary.BigEndian.AppendUint16(f, tpid)
		f = binary.BigEndian.AppendUint16(f, tci)
	}
	var payload []byte
	var etype uint16
	switch x := g.r.Float64(); {
	case x < 0.45:
		etype, payload = 0x0800, g.ipv4Packet()
	case x < 0.75:
		etype, payload = 0x86dd, g.ipv6Packet()
	case x < 0.87:
		etype, payload = 0x0806, g.arpPacket()
	case x < 0.92:
		etype, payload = 0x8035, g.arpPacket()
	default:
		etype, payload = []uint16{0x88cc, 0x0842, 0x8847, 0x0600}[g.pick(4)], g.bytes(10+g.pick(40))
	}
	f = binary.BigEndian.AppendUint16(f, etype)
	f = append(f, payload...)
	if g.chance(0.15) {
		min := 15
		if tags == 0 {
			switch etype {
			case 0x0800:
				min = 34
			case 0x86dd:
				min = 54
			}
		}
		if len(f) > min {
			f = f[:min+g.pick(len(f)-min)]
		}
	}
	return f
}

func (g *frameGen) transport(proto uint8) []byte {
	var h []byte
	switch proto {
	case 6:
		sport, dport := g.port(), g.port()
		if g.chance(0.1) {
			dport = sport
		}
		h = binary.BigEndian.AppendUint16(h, sport)
		h = binary.BigEndian.AppendUint16(h, dport)
		h = append(h, g.bytes(8)...)
		flags := []byte{0x02, 0x12, 0x10, 0x11, 0x04, 0x18, byte(g.r.Uint32())}[g.pick(7)]
		doff := 5
		if g.chance(0.3) {
			doff += 1 + g.pick(3)
		}
		h = append(h, byte(doff<<4), flags)
		h = append(h, g.bytes(6)...)
		for len(h) < 4*doff {
			h = append(h, 1) // NOP options
		}
		if g.chance(0.3) {
			h = append(h, "GET / HTTP/1.1\r\n"...)
		}
	case 17, 132:
		h = binary.BigEndian.AppendUint16(h, g.port())
		h = binary.BigEndian.AppendUint16(h, g.port())
		h = append(h, g.bytes(4)...)
	case 1:
		h = append(h, []byte{0, 8, 3, 11, 5, 13, byte(g.r.Uint32())}[g.pick(7)], byte(g.pick(3)))
		h = append(h, g.bytes(6)...)
	case 58:
		h = append(h, []byte{128, 129, 135, 136, 1, 133, byte(g.r.Uint32())}[g.pick(7)], byte(g.pick(3)))
		h = append(h, g.bytes(6)...)
	default:
		h = g.bytes(8)
	}
	n := g.pick(24)
	if g.chance(0.3) {
		n = 60 + g.pick(100)
	}
	return append(h, g.bytes(n)...)
}

func (g *frameGen) ipProto() uint8 {
	if g.chance(0.08) {
		return uint8(g.r.Uint32())
	}
	return []uint8{6, 6, 17, 17, 1, 132, 2, 47}[g.pick(8)]
}

func (g *frameGen) ipv4Packet() []byte {
	ihl := 5
	if g.chance(0.2) {
		ihl += 1 + g.pick(3)
	}
	proto := g.ipProto()
	if g.chance(0.05) {
		proto = 58
	}
	body := g.transport(proto)
	h := make([]byte, 4*ihl)
	h[0] = 0x40 | byte(ihl)
	if g.chance(0.03) {
		h[0] = byte(g.pick(16))<<4 | byte(ihl)
	}
	h[1] = byte(g.pick(4)) << 2
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(body)))
	binary.BigEndian.PutUint16(h[4:], uint16(g.r.Uint32()))
	var frag uint16
	switch x := g.r.Float64(); {
	case x < 0.1:
		frag = 0x2000 // MF, first fragment
	case x < 0.2:
		frag = uint16(1+g.pick(0x1ffe)) | uint16(g.pick(2))<<13 // a later fragment
	case x < 0.6:
		frag = 0x4000 // DF
	}
	binary.BigEndian.PutUint16(h[6:], frag)
	h[8] = []byte{1, 63, 64, 128, 255}[g.pick(5)]
	h[9] = proto
	copy(h[12:], g.ipv4())
	copy(h[16:], g.ipv4())
	for i := 20; i < len(h); i++ {
		h[i] = 1 // NOP options
	}
	return append(h, body...)
}

func (g *frameGen) ipv6Packet() []byte {
	final := []uint8{6, 6, 17, 17, 58, 58, 132, 59}[g.pick(8)]
	if g.chance(0.05) {
		final = uint8(g.r.Uint32())
	}
	var ext []byte
	next := final
	if g.chance(0.3) {
		// A chain of one or two extension headers, built back to front.
		for range 1 + g.pick(2) {
			kind := []uint8{0, 43, 44, 60}[g.pick(4)]
			var e []byte
			if kind == 44 {
				e = []byte{next, 0, byte(g.pick(2)), byte(g.pick(4)), 0, 0, 0, 1}
			} else {
				e = append([]byte{next, 0}, g.bytes(6)...)
			}
			ext = append(e, ext...)
			next = kind
		}
	}
	body := append(ext, g.transport(final)...)
	h := make([]byte, 40)
	h[0] = 0x60 | byte(g.pick(16))
	binary.BigEndian.PutUint16(h[4:], uint16(len(body)))
	h[6] = next
	h[7] = []byte{1, 64, 255}[g.pick(3)]
	copy(h[8:], g.ipv6())
	copy(h[24:], g.ipv6())
	return append(h, body...)
}

func (g *frameGen) arpPacket() []byte {
	h := []byte{0, 1, 8, 0, 6, 4, 0, byte(1 + g.pick(4))}
	h = append(h, genMACs[g.pick(len(genMACs))]...)
	h = append(h, g.ipv4()...)
	h = append(h, genMACs[g.pick(len(genMACs))]...)
	h = append(h, g.ipv4()...)
	return h
}
