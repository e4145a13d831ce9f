package pcapfilter

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The primitives, spelled out as libpcap 1.10's gencode.c spells them.

// nl returns the offset of the network-layer header from the link-layer
// header, after the `vlan` keywords parsed so far.
func (p *parser) nl() int32 {
	if p.link == packet.LinkRawIP {
		return 0
	}
	if p.cooked() {
		return cookedHeaderLen(p.link) + p.shift
	}
	return wire.EthernetHeaderLen + p.shift
}

// linkType returns the test that the link-layer payload is of ethertype t.
// On a raw-IP link it tests the IP version nibble, and no other type
// matches (gen_linktype for DLT_RAW).
func (p *parser) linkType(t uint16) pred {
	if p.cooked() {
		return p.cookedLinkType(t)
	}
	if p.link == packet.LinkRawIP {
		version := aluVal(aluAnd, linkLoad(0, 1), constVal(0xf0))
		switch t {
		case wire.EtherTypeIPv4:
			return test(version, cmpEq, 0x40)
		case wire.EtherTypeIPv6:
			return test(version, cmpEq, 0x60)
		}
		return predConst(false)
	}
	return test(linkLoad(wire.EtherTypeOff+p.shift, 2), cmpEq, uint32(t))
}

// ipProto returns `ip proto v`.
func (p *parser) ipProto(v uint8) pred {
	return and(p.linkType(wire.EtherTypeIPv4), test(linkLoad(p.nl()+9, 1), cmpEq, uint32(v)))
}

// ip6Proto returns `ip6 proto v`: the fixed header's next header is v, or
// a fragment header (44) directly follows it and its next header is v, as
// libpcap 1.10.3 generates.
func (p *parser) ip6Proto(v uint8) pred {
	nl := p.nl()
	nh := linkLoad(nl+6, 1)
	return and(p.linkType(wire.EtherTypeIPv6), or(test(nh, cmpEq, uint32(v)),
		and(test(nh, cmpEq, 44), test(linkLoad(nl+40, 1), cmpEq, uint32(v)))))
}

// noFrag returns the test that an IPv4 packet is the first or only
// fragment: its fragment offset is zero.
func (p *parser) noFrag() pred {
	return not(test(linkLoad(p.nl()+6, 2), cmpSet, 0x1fff))
}

// dirOp combines the source and destination tests of a direction.
func dirOp(dir string, src, dst func() pred) pred {
	switch dir {
	case "src":
		return src()
	case "dst":
		return dst()
	case "src and dst":
		return and(src(), dst())
	}
	return or(src(), dst())
}

// parseValue parses the value of a primitive with qualifiers q; t, already
// consumed, is its first token.
func (p *parser) parseValue(q qual, t token) (pred, *Error) {
	if x, ok, err := p.linkValue(q, t); ok {
		return x, err
	}
	switch q.typ {
	case "port", "portrange":
		return p.parsePort(q, t)
	case "net":
		return p.parseNet(q, t)
	}
	if q.proto == "ether" || q.proto == "link" {
		mac, ok := parseMAC(t.text)
		if !ok {
			return nil, p.fail(t, "expected a MAC address such as 00:11:22:33:44:55, found %s", t)
		}
		if p.link != packet.LinkEthernet {
			return nil, p.fail(t, "ether host needs an Ethernet link")
		}
		return p.etherHost(q.dir, mac), nil
	}
	if strings.Contains(t.text, ":") {
		a, err := netip.ParseAddr(t.text)
		if strings.Contains(t.text, "/") {
			return nil, p.fail(t, `a prefix length needs "net": net %s`, trunc(t.text))
		}
		if err != nil || !a.Is6() || a.Zone() != "" {
			return nil, p.fail(t, "%s is not an IPv6 address", t)
		}
		if p.peek().isOp("/") {
			return nil, p.fail(p.peek(), `a prefix length needs "net": net %s/N`, trunc(t.text))
		}
		if q.proto != "" && q.proto != "ip6" {
			return nil, p.fail(t, "%q qualifier applied to an IPv6 host", q.proto)
		}
		b := a.As16()
		return p.host6(q.dir, b, [16]byte{0: 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), nil
	}
	if t.text != "" && (t.text[0] < '0' || t.text[0] > '9') {
		if q.typ == "" && q.dir == "" && q.proto == "" {
			return nil, p.fail(t, "unknown keyword %s", t)
		}
		return nil, p.fail(t, "%s is not a numeric IP address: host names are not resolved", t)
	}
	a, err := netip.ParseAddr(t.text)
	if err != nil || !a.Is4() {
		return nil, p.fail(t, "expected an IPv4 address such as 10.0.0.1, found %s", t)
	}
	if p.peek().isOp("/") || p.peek().isWord("mask") {
		return nil, p.fail(p.peek(), `a mask needs "net": net %s/N`, trunc(t.text))
	}
	return p.host4(q, t, a.As4(), 0xffffffff)
}

// host4 returns the IPv4 host or network test for the qualifiers q: IPv4,
// and for no protocol qualifier also ARP and RARP (gen_host, Q_DEFAULT).
func (p *parser) host4(q qual, t token, addr [4]byte, mask uint32) (pred, *Error) {
	a := binary.BigEndian.Uint32(addr[:]) & mask
	nl := p.nl()
	op := func(etype uint16, srcOff, dstOff int32) pred {
		cmp := func(off int32) func() pred {
			return func() pred {
				if mask == 0 {
					// A zero mask matches any address; libpcap's
					// optimiser drops the load, so a frame too short
					// for the address still matches.
					return predConst(true)
				}
				v := linkLoad(nl+off, 4)
				if mask != 0xffffffff {
					v = aluVal(aluAnd, v, constVal(mask))
				}
				return test(v, cmpEq, a)
			}
		}
		return and(p.linkType(etype), dirOp(q.dir, cmp(srcOff), cmp(dstOff)))
	}
	switch q.proto {
	case "":
		return or(op(wire.EtherTypeIPv4, 12, 16), op(wire.EtherTypeARP, 14, 24), op(wire.EtherTypeRARP, 14, 24)), nil
	case "ip":
		return op(wire.EtherTypeIPv4, 12, 16), nil
	case "arp":
		return op(wire.EtherTypeARP, 14, 24), nil
	case "rarp":
		return op(wire.EtherTypeRARP, 14, 24), nil
	}
	return nil, p.fail(t, "%q qualifier applied to an IPv4 host or network", q.proto)
}

// host6 returns the IPv6 host or network test: the address words whose
// mask is not zero, first to last (gen_hostop6).
func (p *parser) host6(dir string, addr, mask [16]byte) pred {
	nl := p.nl()
	cmp := func(off int32) func() pred {
		return func() pred {
			var ts []pred
			for w := range 4 {
				m := binary.BigEndian.Uint32(mask[4*w:])
				if m == 0 {
					continue
				}
				v := linkLoad(nl+off+int32(4*w), 4)
				if m != 0xffffffff {
					v = aluVal(aluAnd, v, constVal(m))
				}
				ts = append(ts, test(v, cmpEq, binary.BigEndian.Uint32(addr[4*w:])&m))
			}
			return and(ts...)
		}
	}
	return and(p.linkType(wire.EtherTypeIPv6), dirOp(dir, cmp(8), cmp(24)))
}

// etherHost returns the Ethernet address test: the last four bytes, then
// the first two (gen_bcmp).
func (p *parser) etherHost(dir string, mac [6]byte) pred {
	cmp := func(off int32) func() pred {
		return func() pred {
			return and(test(linkLoad(off+2, 4), cmpEq, binary.BigEndian.Uint32(mac[2:])),
				test(linkLoad(off, 2), cmpEq, uint32(binary.BigEndian.Uint16(mac[:]))))
		}
	}
	return dirOp(dir, cmp(6), cmp(0))
}

// parseNet parses the network after `net`: a.b.c.d/len, a.b.c.d mask m,
// a partial address (`net 10.1` is 10.1.0.0/16) or an IPv6 prefix.
func (p *parser) parseNet(q qual, t token) (pred, *Error) {
	if strings.Contains(t.text, ":") {
		pfx, err := netip.ParsePrefix(t.text)
		if err != nil || !pfx.Addr().Is6() {
			return nil, p.fail(t, "expected an IPv6 prefix such as fe80::/10, found %s", t)
		}
		if q.proto != "" && q.proto != "ip6" {
			return nil, p.fail(t, "%q qualifier applied to an IPv6 network", q.proto)
		}
		if pfx.Masked() != pfx {
			return nil, p.fail(t, "non-network bits set in %s", quote(t.text))
		}
		var mask [16]byte
		for i := range pfx.Bits() {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		return p.host6(q.dir, pfx.Addr().As16(), mask), nil
	}
	addr, parts, ok := parseIPv4Partial(t.text)
	if !ok {
		return nil, p.fail(t, "expected an IPv4 network such as 10.0.0.0/8, found %s", t)
	}
	mask := uint32(0xffffffff) << (32 - 8*parts)
	if parts == 0 {
		mask = 0
	}
	switch n := p.peek(); {
	case n.isOp("/"):
		p.next()
		l := p.next()
		bits, ok := parseNumber(l.text)
		hex := strings.HasPrefix(l.text, "0x") || strings.HasPrefix(l.text, "0X")
		switch {
		case l.kind == tokWord && !hex && (isBigNumber(l.text) || ok && bits > 32):
			return nil, p.fail(l, "prefix length %s is greater than 32", trunc(l.text))
		case l.kind != tokWord || !ok || hex:
			return nil, p.fail(l, "expected a prefix length from 0 to 32 after \"/\", found %s", l)
		}
		mask = 0
		if bits > 0 {
			mask = 0xffffffff << (32 - bits)
		}
		if addr&^mask != 0 {
			return nil, p.fail(t, "non-network bits set in %s", quote(fmt.Sprintf("%s/%d", t.text, bits)))
		}
	case n.isWord("mask"):
		p.next()
		m := p.next()
		ma, err := netip.ParseAddr(m.text)
		if err != nil || !ma.Is4() {
			return nil, p.fail(m, "expected an IPv4 mask such as 255.255.0.0 after \"mask\", found %s", m)
		}
		b := ma.As4()
		mask = binary.BigEndian.Uint32(b[:])
		if addr&^mask != 0 {
			return nil, p.fail(t, "non-network bits set in %s", quote(t.text+" mask "+m.text))
		}
	default:
		if addr&^mask != 0 {
			return nil, p.fail(t, "non-network bits set in %s", quote(t.text))
		}
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], addr)
	return p.host4(q, t, b, mask)
}

// parseIPv4Partial parses one to four dotted decimal bytes, returning the
// address with the missing bytes zero and the number of bytes given.
func parseIPv4Partial(w string) (uint32, int, bool) {
	parts := strings.Split(w, ".")
	if len(parts) > 4 {
		return 0, 0, false
	}
	var a uint32
	for _, s := range parts {
		n, err := strconv.ParseUint(s, 10, 8)
		if err != nil || len(s) > 1 && s[0] == '0' {
			return 0, 0, false
		}
		a = a<<8 | uint32(n)
	}
	return a << (8 * (4 - len(parts))), len(parts), true
}

// parsePort parses the number after `port`, or the range after
// `portrange`, and returns the port test (gen_port6 or gen_port).
func (p *parser) parsePort(q qual, t token) (pred, *Error) {
	var protos []uint32
	switch q.proto {
	case "":
		protos = []uint32{132, 6, 17}
	case "tcp", "udp", "sctp":
		protos = []uint32{ipProtoNames[q.proto]}
	default:
		return nil, p.fail(t, "%q qualifier applied to %q: only tcp, udp and sctp have ports", q.proto, q.typ)
	}
	port := func(s string) (uint32, *Error) {
		v, ok := parseNumber(s)
		switch {
		case isBigNumber(s):
			return 0, p.fail(t, "port %s is greater than 65535", trunc(s))
		case !ok && s != "" && (s[0] < '0' || s[0] > '9'):
			return 0, p.fail(t, "unknown port %s: port names are not resolved, use a number", quote(s))
		case !ok:
			return 0, p.fail(t, "expected a port number after %s, found %s", quote(q.typ), t)
		}
		if v > 65535 {
			return 0, p.fail(t, "port %d is greater than 65535", v)
		}
		return v, nil
	}
	var atom func(v *val) pred
	if q.typ == "port" {
		v, err := port(t.text)
		if err != nil {
			return nil, err
		}
		atom = func(x *val) pred { return test(x, cmpEq, v) }
	} else {
		los, his, ok := strings.Cut(t.text, "-")
		if !ok {
			return nil, p.fail(t, "expected a port range such as 1-1024 after \"portrange\", found %s", t)
		}
		lo, err := port(los)
		if err != nil {
			return nil, err
		}
		hi, err := port(his)
		if err != nil {
			return nil, err
		}
		if lo > hi {
			return nil, p.fail(t, "port range %s starts above its end: write %d-%d", trunc(t.text), hi, lo)
		}
		atom = func(x *val) pred { return and(test(x, cmpGe, lo), not(test(x, cmpGt, hi))) }
	}
	nl := p.nl()
	protoTest := func(off int32) pred {
		var ts []pred
		for _, pr := range protos {
			ts = append(ts, test(linkLoad(off, 1), cmpEq, pr))
		}
		return or(ts...)
	}
	v6 := and(p.linkType(wire.EtherTypeIPv6), protoTest(nl+6), dirOp(q.dir,
		func() pred { return atom(linkLoad(nl+40, 2)) },
		func() pred { return atom(linkLoad(nl+42, 2)) }))
	v4 := and(p.linkType(wire.EtherTypeIPv4), protoTest(nl+9), p.noFrag(), dirOp(q.dir,
		func() pred { return atom(ipv4PayloadLoad(nl, 0, 2)) },
		func() pred { return atom(ipv4PayloadLoad(nl, 2, 2)) }))
	return or(v6, v4), nil
}
