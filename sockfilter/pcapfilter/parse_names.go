package pcapfilter

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The primitives whose value is a name: service names of port and
// portrange, protocol names of proto, host names (resolved when
// compiling), network names of net (/etc/networks) and Ethernet host
// names (/etc/ethers), as gen_scode in libpcap 1.10's gencode.c takes them.

// protoName returns the number of the protocol name at n, after `proto`
// qualified by proto: an IP protocol of /etc/protocols (or the built-in
// table), or for "ether" one of libpcap's ethertype names.
func (p *parser) protoName(n token, proto string) (uint32, *Error) {
	if proto == "ether" || proto == "link" {
		if v, ok := etherTypeNames[n.text]; ok {
			return v, nil
		}
		return 0, p.fail(n, "unknown ether proto %s", quote(n.text))
	}
	if v, ok := lookupProtocol(n.text); ok {
		return v, nil
	}
	return 0, p.fail(n, "unknown protocol %s", quote(n.text))
}

// realProtos returns the IP protocols of a port test whose name is of
// protocol real (protoUndef, 6 or 17), qualified by proto.
func (p *parser) realProtos(real uint32, proto string) []uint32 {
	switch {
	case proto != "":
		return []uint32{ipProtoNames[proto]}
	case real == protoUndef:
		return []uint32{132, 6, 17}
	}
	return []uint32{real}
}

// checkRealProto returns the error of a port name of protocol real
// qualified by a protocol it is not for (`udp port ssh`).
func (p *parser) checkRealProto(t token, what, name string, real uint32, proto string) *Error {
	if proto == "" || real == protoUndef || real == ipProtoNames[proto] {
		return nil
	}
	is := "tcp"
	if real == 17 {
		is = "udp"
	}
	return p.fail(t, "%s %s is %s", what, quote(name), is)
}

// portRange parses the value of portrange at t as libpcap does
// (pcap_nametoportrange): two decimal numbers around "-" as sscanf's
// "%d-%d" reads them (what follows the second is ignored), else two
// service names (or numbers) split at the first "-", whose protocol is
// theirs where both are of the same one. A range given high to low is
// swapped, as gen_portrange does.
func (p *parser) portRange(t token, proto string) (lo, hi uint32, protos []uint32, err *Error) {
	s := t.text
	real := uint32(protoUndef)
	if a, b, as, bs, ok := scanRange(s); ok {
		switch {
		case a > 65535:
			return 0, 0, nil, p.fail(t, "port %s is greater than 65535", trunc(as))
		case b > 65535:
			return 0, 0, nil, p.fail(t, "port %s is greater than 65535", trunc(bs))
		}
		lo, hi = a, b
	} else {
		los, his, ok := strings.Cut(s, "-")
		if !ok {
			return 0, 0, nil, p.fail(t, "expected a port range such as 1-1024 after \"portrange\", found %s", t)
		}
		var r1, r2 uint32
		var ok1, ok2 bool
		lo, r1, ok1 = lookupPort(los)
		hi, r2, ok2 = lookupPort(his)
		if !ok1 || !ok2 {
			return 0, 0, nil, p.fail(t, "unknown port in range %s", quote(s))
		}
		if lo > 65535 || hi > 65535 {
			return 0, 0, nil, p.fail(t, "port %d is greater than 65535", max(lo, hi))
		}
		if r1 == r2 {
			real = r1
		}
		if err := p.checkRealProto(t, "port in range", s, real, proto); err != nil {
			return 0, 0, nil, err
		}
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi, p.realProtos(real, proto), nil
}

// scanRange reads s as sscanf(s, "%d-%d") does for the words the lexer
// makes (digits, then "-", then digits; the rest ignored), returning the
// numbers and their digits; a number too big for a port is returned as
// 1<<31.
func scanRange(s string) (a, b uint32, as, bs string, ok bool) {
	digits := func(s string) (uint32, string, bool) {
		i := 0
		var v uint64
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if v < 1<<31 {
				v = v*10 + uint64(s[i]-'0')
			}
			i++
		}
		return uint32(min(v, 1<<31)), s[:i], i > 0
	}
	a, as, ok = digits(s)
	if !ok || !strings.HasPrefix(s[len(as):], "-") {
		return 0, 0, "", "", false
	}
	b, bs, ok = digits(s[len(as)+1:])
	return a, b, as, bs, ok
}

// hostName returns the test of the host name at t with qualifiers q:
// every address it resolves to, IPv4 and IPv6 (only IPv4 for "ip", "arp"
// and "rarp", only IPv6 for "ip6"), ORed in the resolver's order, as
// gen_scode does.
func (p *parser) hostName(q qual, t token) (pred, *Error) {
	name := t.text
	if q.typ == "net" {
		n, ok := lookupNetwork(name)
		if !ok || n == 0 {
			return nil, p.fail(t, "unknown network %s", quote(name))
		}
		// Left-justify the number, its mask with it (gen_scode's Q_NET).
		mask := uint32(0xffffffff)
		for n != 0 && n&0xff000000 == 0 {
			n, mask = n<<8, mask<<8
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], n)
		return p.host4(q, t, b, mask)
	}
	if q.proto == "ether" || q.proto == "link" {
		mac, ok := lookupEther(name)
		if !ok {
			return nil, p.fail(t, "unknown ether host %s", quote(name))
		}
		if p.link != packet.LinkEthernet {
			return nil, p.fail(t, "ether host needs an Ethernet link")
		}
		return p.etherHost(q.dir, mac), nil
	}
	switch q.proto {
	case "", "ip", "ip6", "arp", "rarp":
	default:
		return nil, p.fail(t, "%q qualifier applied to a host name", q.proto)
	}
	if p.opts.NoResolve {
		return nil, p.fail(t, "host name %s is not resolved: CompileOptions.NoResolve is set, use an address", quote(name))
	}
	addrs, err := lookupHost(name)
	if err != nil || len(addrs) == 0 {
		return nil, p.fail(t, "unknown host %s", quote(name))
	}
	var x pred
	for _, a := range addrs {
		a = a.Unmap()
		var h pred
		switch {
		case a.Is4() && q.proto != "ip6":
			var e *Error
			if h, e = p.host4(q, t, a.As4(), 0xffffffff); e != nil {
				return nil, e
			}
		case a.Is6() && (q.proto == "" || q.proto == "ip6"):
			h = p.host6(q.dir, a.As16(), allOnes16)
		case a.Is6() && q.proto != "ip":
			return nil, p.fail(t, "%q qualifier applied to an IPv6 host", q.proto)
		default:
			continue
		}
		if x == nil {
			x = h
		} else {
			x = or(x, h)
		}
	}
	if x == nil {
		return nil, p.fail(t, "unknown host %s for specified address family", quote(name))
	}
	return x, nil
}

// numericHost returns the test of the IPv4 host at t, written as libpcap
// takes it (gen_ncode): a dotted address, a partial one that stands for
// its network (`host 10.1` is 10.1.0.0 with mask 255.255.0.0), or a
// number, the address as a 32-bit integer (`host 167772161`, `host
// 0x0a000001`). A word with a letter in it that is none of these is a
// host name (1e100.net).
func (p *parser) numericHost(q qual, t token) (pred, *Error) {
	if n := p.peek(); n.isOp("/") || n.isWord("mask") {
		return nil, p.fail(n, `a mask needs "net": net %s/N`, trunc(t.text))
	}
	addr, mask := uint32(0), uint32(0xffffffff)
	if v, ok := parseNumber(t.text); ok && !strings.Contains(t.text, ".") {
		addr = v
	} else if a, parts, ok := parseIPv4Partial(t.text); ok {
		addr, mask = a, mask<<(32-8*parts)
	} else if isBigNumber(t.text) {
		return nil, p.fail(t, "%s", errBigNumber(t.text))
	} else if strings.ContainsFunc(t.text, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) &&
		!strings.HasPrefix(t.text, "0x") && !strings.HasPrefix(t.text, "0X") {
		return p.hostName(q, t)
	} else {
		return nil, p.fail(t, "expected an IPv4 address such as 10.0.0.1, found %s", t)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], addr)
	return p.host4(q, t, b, mask)
}

// netNumber returns the test of `net N` for a number N (not dotted): its
// bytes left-justified, the mask with them (gen_ncode: `net 10` is
// 10.0.0.0/8, `net 256` 1.0.0.0/16).
func (p *parser) netNumber(q qual, t token, v uint32) (pred, *Error) {
	if n := p.peek(); n.isOp("/") || n.isWord("mask") {
		return nil, p.fail(n, "expected \"and\", \"or\" or the end of the expression after the network number %s, found %s", trunc(t.text), n)
	}
	mask := uint32(0xffffffff)
	for v != 0 && v&0xff000000 == 0 {
		v, mask = v<<8, mask<<8
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return p.host4(q, t, b, mask)
}

// lookupHost returns the addresses of a host name; a test replaces it.
var lookupHost = func(name string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(context.Background(), "ip", name)
}

// allOnes16 is the mask of a whole IPv6 address.
var allOnes16 = [16]byte{0: 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
