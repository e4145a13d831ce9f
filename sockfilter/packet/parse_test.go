package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
)

var (
	addrPort = netip.MustParseAddrPort
	// tcpPA and the like are TCP flag sets, named as tcpdump prints them.
	tcpPA = TCPPsh | TCPAck
	tcpSA = TCPSyn | TCPAck
)

// TestParse checks the Record for every frame in testdata/frames
// against what the frame's comments say it holds.
func TestParse(t *testing.T) {
	want := map[string]Record{
		"tcp4": {Proto: ProtoTCP, EtherType: 0x0800, IPVersion: 4, IPProto: 6, TTL: 64,
			Src: addrPort("10.0.0.1:40000"), Dst: addrPort("10.0.0.2:80"), DontFragment: true, FragID: 0x1234,
			Transport: true, Length: 74, CapLen: 74, IPPayloadLen: 40, PayloadLen: 20,
			TCPFlags: tcpPA, Seq: 1000, Ack: 2000, Window: 502},
		"udp4": {Proto: ProtoUDP, EtherType: 0x0800, IPVersion: 4, IPProto: 17, TTL: 64,
			Src: addrPort("10.0.0.1:41000"), Dst: addrPort("10.0.0.2:41001"), DontFragment: true, FragID: 0x1234,
			Transport: true, Length: 106, CapLen: 106, IPPayloadLen: 72, PayloadLen: 64},
		"vlan_tcp4": {Proto: ProtoTCP, EtherType: 0x0800, IPVersion: 4, IPProto: 6, TTL: 63,
			Src: addrPort("10.0.0.1:40001"), Dst: addrPort("10.0.0.2:443"), VLANs: 1, VLAN: 100,
			DontFragment: true, FragID: 1, Transport: true, Length: 58, CapLen: 58, IPPayloadLen: 20,
			TCPFlags: TCPSyn | TCPEce | TCPCwr, Seq: 7, Window: 64240},
		"udp6": {Proto: ProtoUDP, EtherType: 0x86dd, IPVersion: 6, IPProto: 17, TTL: 64,
			Src: addrPort("[2001:db8::1]:41002"), Dst: addrPort("[2001:db8::2]:41003"),
			Transport: true, Length: 94, CapLen: 94, IPPayloadLen: 40, PayloadLen: 32},
		"ipopt_tcp4": {Proto: ProtoTCP, EtherType: 0x0800, IPVersion: 4, IPProto: 6, TTL: 64,
			Src: addrPort("10.0.0.2:80"), Dst: addrPort("10.0.0.1:40002"), DontFragment: true,
			Transport: true, Length: 62, CapLen: 62, IPPayloadLen: 24,
			TCPFlags: tcpSA, Seq: 3000, Ack: 1001, Window: 65483},
		"qinq_udp4": {Proto: ProtoUDP, EtherType: 0x0800, IPVersion: 4, IPProto: 17, TTL: 64,
			Src: addrPort("10.0.0.1:1000"), Dst: addrPort("10.0.0.2:2000"), VLANs: 2, VLAN: 200, InnerVLAN: 300,
			FragID: 0x4242, Transport: true, Length: 60, CapLen: 60, IPPayloadLen: 18, PayloadLen: 10},
		"ext6_tcp": {Proto: ProtoTCP, EtherType: 0x86dd, IPVersion: 6, IPProto: 6, TTL: 255,
			Src: addrPort("[2001:db8::1]:50000"), Dst: addrPort("[2001:db8::2]:22"),
			Transport: true, Length: 126, CapLen: 126, IPPayloadLen: 32, PayloadLen: 12,
			TCPFlags: tcpPA, Seq: 5, Ack: 6, Window: 1024},
		"frag4_first": {Proto: ProtoUDP, EtherType: 0x0800, IPVersion: 4, IPProto: 17, TTL: 64,
			Src: addrPort("10.0.0.1:41004"), Dst: addrPort("10.0.0.2:41005"),
			Fragment: true, MoreFragments: true, FragID: 0xbeef,
			Transport: true, Length: 58, CapLen: 58, IPPayloadLen: 24, PayloadLen: 16},
		"frag4_rest": {Proto: ProtoUDP, EtherType: 0x0800, IPVersion: 4, IPProto: 17, TTL: 64,
			Src: addrPort("10.0.0.1:0"), Dst: addrPort("10.0.0.2:0"),
			Fragment: true, FragOffset: 24, FragID: 0xbeef,
			Length: 58, CapLen: 58, IPPayloadLen: 24},
		"frag6_first": {Proto: ProtoUDP, EtherType: 0x86dd, IPVersion: 6, IPProto: 17, TTL: 64,
			Src: addrPort("[2001:db8::1]:41004"), Dst: addrPort("[2001:db8::2]:41005"),
			Fragment: true, MoreFragments: true, FragID: 0xcafe0001,
			Transport: true, Length: 86, CapLen: 86, IPPayloadLen: 24, PayloadLen: 16},
		"frag6_rest": {Proto: ProtoUDP, EtherType: 0x86dd, IPVersion: 6, IPProto: 17, TTL: 64,
			Src: addrPort("[2001:db8::1]:0"), Dst: addrPort("[2001:db8::2]:0"),
			Fragment: true, FragOffset: 24, FragID: 0xcafe0001,
			Length: 86, CapLen: 86, IPPayloadLen: 24},
		"icmp4_echo": {Proto: ProtoICMP, EtherType: 0x0800, IPVersion: 4, IPProto: 1, TTL: 64,
			Src: addrPort("10.0.0.1:0"), Dst: addrPort("10.0.0.2:0"), DontFragment: true, FragID: 0x1234,
			Transport: true, Length: 58, CapLen: 58, IPPayloadLen: 24, PayloadLen: 16, ICMPType: 8},
		"icmp6_echo": {Proto: ProtoICMPv6, EtherType: 0x86dd, IPVersion: 6, IPProto: 58, TTL: 64,
			Src: addrPort("[2001:db8::2]:0"), Dst: addrPort("[2001:db8::1]:0"),
			Transport: true, Length: 78, CapLen: 78, IPPayloadLen: 24, PayloadLen: 16, ICMPType: 129},
		"arp_request": {Proto: ProtoARP, EtherType: 0x0806,
			Src: addrPort("10.0.0.1:0"), Dst: addrPort("10.0.0.2:0"), ARPOp: 1, Length: 60, CapLen: 60},
		"local_ether": {Proto: ProtoOther, EtherType: 0x88b5, Length: 60, CapLen: 60},
		"gre4": {Proto: ProtoIPv4, EtherType: 0x0800, IPVersion: 4, IPProto: 47, TTL: 64,
			Src: addrPort("10.0.0.1:0"), Dst: addrPort("10.0.0.2:0"), DontFragment: true, FragID: 0x1234,
			Length: 66, CapLen: 66, IPPayloadLen: 32},
		"raw_udp4": {Proto: ProtoUDP, EtherType: 0x0800, IPVersion: 4, IPProto: 17, TTL: 64,
			Src: addrPort("10.0.0.1:41008"), Dst: addrPort("10.0.0.2:41009"), DontFragment: true, FragID: 0x1234,
			Transport: true, Length: 33, CapLen: 33, IPPayloadLen: 13, PayloadLen: 5},
		"raw_tcp6": {Proto: ProtoTCP, EtherType: 0x86dd, IPVersion: 6, IPProto: 6, TTL: 1,
			Src: addrPort("[2001:db8::1]:443"), Dst: addrPort("[2001:db8::2]:50001"),
			Transport: true, Length: 60, CapLen: 60, IPPayloadLen: 20,
			TCPFlags: TCPFin | TCPAck, Seq: 99, Ack: 100, Window: 300},
		"ah6_udp": {Proto: ProtoUDP, EtherType: 0x86dd, IPVersion: 6, IPProto: 17, TTL: 64,
			Src: addrPort("[2001:db8::1]:41006"), Dst: addrPort("[2001:db8::2]:41007"),
			Transport: true, Length: 90, CapLen: 90, IPPayloadLen: 12, PayloadLen: 4},
		"rst_ae_tcp4": {Proto: ProtoTCP, EtherType: 0x0800, IPVersion: 4, IPProto: 6, TTL: 128,
			Src: addrPort("10.0.0.2:80"), Dst: addrPort("10.0.0.1:40003"), DontFragment: true, FragID: 2,
			Transport: true, Length: 60, CapLen: 60, IPPayloadLen: 20,
			TCPFlags: TCPRst | TCPAe, Seq: 5},
	}
	frames := testutil.Frames(t)
	if len(frames) != len(want) {
		t.Errorf("%d frames in testdata/frames, %d expected records", len(frames), len(want))
	}
	for _, f := range frames {
		t.Run(f.Name, func(t *testing.T) {
			w, ok := want[f.Name]
			if !ok {
				t.Fatal("no expected record for this frame")
			}
			var r Record
			if err := Parse(f.Data, LinkType(f.Link), nil, &r); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r != w {
				t.Errorf("Parse:\n got %+v\nwant %+v", r, w)
			}
			if got, want := r.HasPorts(), w.Transport && w.Src.Port() != 0; got != want {
				t.Errorf("HasPorts() = %v, want %v", got, want)
			}
		})
	}
}

// TestParseInfo checks what Parse takes from an Info, and
// that a capture cut by a snap length decodes while its headers last.
func TestParseInfo(t *testing.T) {
	tcp4 := testutil.NamedFrame(t, "tcp4").Data      // 74 bytes: headers end at 54
	vlan := testutil.NamedFrame(t, "vlan_tcp4").Data // VLAN 100 in the frame
	ts := time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.UTC)
	tests := []struct {
		name    string
		frame   []byte
		info    Info
		wantErr error
		check   func(t *testing.T, r *Record)
	}{
		{"kernel metadata", tcp4, Info{Time: ts, Ifindex: 3, Direction: DirectionOutgoing, Length: 74}, nil,
			func(t *testing.T, r *Record) {
				if !r.Time.Equal(ts) || r.Ifindex != 3 || r.Direction != DirectionOutgoing || r.Length != 74 || r.CapLen != 74 {
					t.Errorf("got Time %v Ifindex %d Direction %v Length %d CapLen %d", r.Time, r.Ifindex, r.Direction, r.Length, r.CapLen)
				}
			}},
		{"snaplen cuts payload", tcp4[:54], Info{Length: 74}, nil,
			func(t *testing.T, r *Record) {
				if r.Length != 74 || r.CapLen != 54 || r.PayloadLen != 20 || r.IPPayloadLen != 40 || r.Dst.Port() != 80 {
					t.Errorf("got Length %d CapLen %d PayloadLen %d IPPayloadLen %d Dst %v", r.Length, r.CapLen, r.PayloadLen, r.IPPayloadLen, r.Dst)
				}
			}},
		{"snaplen cuts tcp header", tcp4[:50], Info{Length: 74}, ErrTruncated, nil},
		{"wire length below captured", tcp4, Info{Length: 10}, nil,
			func(t *testing.T, r *Record) {
				if r.Length != 74 {
					t.Errorf("Length = %d, want 74", r.Length)
				}
			}},
		{"stripped tag", tcp4, Info{Length: 74, HasVLAN: true, VLANTCI: 0x6000 | 42}, nil,
			func(t *testing.T, r *Record) {
				if r.VLANs != 1 || r.VLAN != 42 || r.InnerVLAN != 0 {
					t.Errorf("VLANs %d VLAN %d InnerVLAN %d, want 1 42 0", r.VLANs, r.VLAN, r.InnerVLAN)
				}
			}},
		{"stripped tag over an in-frame tag", vlan, Info{HasVLAN: true, VLANTCI: 7}, nil,
			func(t *testing.T, r *Record) {
				if r.VLANs != 2 || r.VLAN != 7 || r.InnerVLAN != 100 {
					t.Errorf("VLANs %d VLAN %d InnerVLAN %d, want 2 7 100", r.VLANs, r.VLAN, r.InnerVLAN)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Record
			err := Parse(tt.frame, LinkEthernet, &tt.info, &r)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
				}
				if r != (Record{}) {
					t.Errorf("record not zero after error: %+v", r)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse with an Info: %v", err)
			}
			tt.check(t, &r)
		})
	}
}

// TestParseErrors checks that bad frames give a *ParseError naming
// the header and its offset, and leave the Record zero.
func TestParseErrors(t *testing.T) {
	// edit returns a copy of the named test frame changed by f.
	edit := func(name string, f func(b []byte) []byte) []byte { return f(testutil.FrameCopy(t, name)) }
	put16 := func(b []byte, off int, v uint16) { binary.BigEndian.PutUint16(b[off:], v) }
	// tags returns an Ethernet frame with n 802.1Q tags before tcp4's IPv4 packet.
	tags := func(n int) []byte {
		tcp4 := testutil.NamedFrame(t, "tcp4").Data
		b := append([]byte(nil), tcp4[:12]...)
		for range n {
			b = append(b, 0x81, 0x00, 0x00, 0x01)
		}
		return append(b, tcp4[12:]...)
	}
	// dstopts returns udp6 with n 8-byte destination options headers
	// before its UDP header.
	dstopts := func(n int) []byte {
		udp6 := testutil.NamedFrame(t, "udp6").Data
		b := append([]byte(nil), udp6[:54]...)
		b[20] = 60 // ipv6 next header: destination options
		put16(b, 18, uint16(40+8*n))
		for i := range n {
			next := byte(60)
			if i == n-1 {
				next = 17
			}
			b = append(b, next, 0, 1, 4, 0, 0, 0, 0)
		}
		return append(b, udp6[54:]...)
	}
	tests := []struct {
		name   string
		link   LinkType
		frame  []byte
		layer  string
		offset int
		err    error
		reason string // a part of the message
		wire   int    // if not 0, the length on the wire, for Parse's Info
	}{
		{"empty", LinkEthernet, nil, "frame", 0, ErrTruncated, "empty frame", 0},
		{"empty raw", LinkRawIP, []byte{}, "frame", 0, ErrTruncated, "empty frame", 0},
		{"unsupported link", LinkType(113), testutil.NamedFrame(t, "tcp4").Data, "frame", 0, errors.ErrUnsupported, "LinkType(113)", 0},
		{"short ethernet", LinkEthernet, testutil.FrameCopy(t, "tcp4")[:13], "ethernet", 0, ErrTruncated, "need 14 bytes, have 13", 0},
		{"short vlan tag", LinkEthernet, testutil.FrameCopy(t, "vlan_tcp4")[:16], "vlan", 14, ErrTruncated, "need 4 bytes, have 2", 0},
		{"short inner vlan tag", LinkEthernet, testutil.FrameCopy(t, "qinq_udp4")[:20], "vlan", 18, ErrTruncated, "need 4", 0},
		{"nine vlan tags", LinkEthernet, tags(9), "vlan", 14 + 8*4, ErrMalformed, "more than 8 VLAN tags", 0},
		{"short ipv4", LinkEthernet, testutil.FrameCopy(t, "tcp4")[:30], "ipv4", 14, ErrTruncated, "need 20 bytes, have 16", 0},
		{"ipv4 IHL 4", LinkEthernet, edit("tcp4", func(b []byte) []byte { b[14] = 0x44; return b }), "ipv4", 14, ErrMalformed, "IHL 4 is less than 5", 0},
		{"ipv4 version 6", LinkEthernet, edit("tcp4", func(b []byte) []byte { b[14] = 0x65; return b }), "ipv4", 14, ErrMalformed, "IP version 6", 0},
		{"short ipv4 options", LinkEthernet, testutil.FrameCopy(t, "ipopt_tcp4")[:36], "ipv4", 14, ErrTruncated, "need 24 bytes, have 22", 0},
		{"ipv4 total below IHL", LinkEthernet, edit("tcp4", func(b []byte) []byte { put16(b, 16, 19); return b }), "ipv4", 14, ErrMalformed, "total length 19 is less than the header length 20", 0},
		{"ipv4 total past frame", LinkEthernet, edit("tcp4", func(b []byte) []byte { put16(b, 16, 61); return b }), "ipv4", 14, ErrMalformed, "total length 61 exceeds the 60 bytes left", 0},
		{"raw IP version 5", LinkRawIP, edit("raw_udp4", func(b []byte) []byte { b[0] = 0x55; return b }), "ip", 0, ErrMalformed, "IP version 5 is neither 4 nor 6", 0},
		{"short ipv6", LinkEthernet, testutil.FrameCopy(t, "udp6")[:53], "ipv6", 14, ErrTruncated, "need 40 bytes, have 39", 0},
		{"ipv6 version 4", LinkEthernet, edit("udp6", func(b []byte) []byte { b[14] = 0x40; return b }), "ipv6", 14, ErrMalformed, "IP version 4", 0},
		{"ipv6 payload past frame", LinkEthernet, edit("udp6", func(b []byte) []byte { put16(b, 18, 41); return b }), "ipv6", 14, ErrMalformed, "payload length 41 exceeds the 40 bytes left", 0},
		{"ext header past payload length", LinkEthernet, edit("ext6_tcp", func(b []byte) []byte { b[55] = 9; return b }), "ipv6 extension", 54, ErrMalformed, "header of 80 bytes runs past the IPv6 payload length", 0},
		{"ext chain runs off the end", LinkEthernet, edit("ext6_tcp", func(b []byte) []byte { put16(b, 18, 24); return b[:78] }), "ipv6 extension", 70, ErrMalformed, "header of 24 bytes runs past the IPv6 payload length", 0},
		{"ext chain ends in the middle of a header", LinkEthernet, edit("ext6_tcp", func(b []byte) []byte { put16(b, 18, 20); return b[:74] }), "ipv6 extension", 70, ErrMalformed, "header runs past the IPv6 payload length", 0},
		{"ext header cut", LinkEthernet, testutil.FrameCopy(t, "ext6_tcp")[:60], "ipv6 extension", 54, ErrTruncated, "need 8 bytes, have 6", 126},
		{"ext header cut inside", LinkEthernet, testutil.FrameCopy(t, "ext6_tcp")[:80], "ipv6 extension", 70, ErrTruncated, "need 24 bytes, have 10", 126},
		{"nine ext headers", LinkEthernet, dstopts(9), "ipv6 extension", 54 + 8*8, ErrMalformed, "more than 8 extension headers", 0},
		{"tcp data offset 4", LinkEthernet, edit("tcp4", func(b []byte) []byte { b[46] = 0x40; return b }), "tcp", 34, ErrMalformed, "data offset 4 is less than 5", 0},
		{"tcp data offset past payload", LinkEthernet, edit("ipopt_tcp4", func(b []byte) []byte { b[50] = 0x70; return b }), "tcp", 38, ErrMalformed, "data offset 7 runs past the IP payload of 24 bytes", 0},
		{"tcp options past capture", LinkEthernet, testutil.FrameCopy(t, "ipopt_tcp4")[:60], "tcp", 38, ErrTruncated, "need 24 bytes, have 22", 62},
		{"ipv4 total past frame without wire length", LinkEthernet, testutil.FrameCopy(t, "ipopt_tcp4")[:60], "ipv4", 14, ErrMalformed, "total length 48 exceeds the 46 bytes left", 0},
		{"ip payload too short for tcp", LinkEthernet, edit("tcp4", func(b []byte) []byte { put16(b, 16, 30); return b[:44] }), "tcp", 34, ErrMalformed, "IP payload of 10 bytes cannot hold a TCP header", 0},
		{"short udp", LinkRawIP, edit("raw_udp4", func(b []byte) []byte { put16(b, 2, 26); return b[:26] }), "udp", 20, ErrMalformed, "IP payload of 6 bytes cannot hold a UDP header", 0},
		{"udp length 7", LinkEthernet, edit("udp4", func(b []byte) []byte { put16(b, 38, 7); return b }), "udp", 34, ErrMalformed, "length 7 is less than 8", 0},
		{"udp length past ip payload", LinkEthernet, edit("udp4", func(b []byte) []byte { put16(b, 38, 73); return b }), "udp", 34, ErrMalformed, "length 73 exceeds the IP payload of 72 bytes", 0},
		{"short icmp", LinkEthernet, edit("icmp4_echo", func(b []byte) []byte { put16(b, 16, 24); return b[:38] }), "icmp", 34, ErrMalformed, "IP payload of 4 bytes cannot hold an 8-byte header", 0},
		{"short icmpv6", LinkEthernet, edit("icmp6_echo", func(b []byte) []byte { put16(b, 18, 7); return b[:61] }), "icmpv6", 54, ErrMalformed, "IP payload of 7 bytes", 0},
		{"icmpv6 in a 3-byte payload, padded", LinkEthernet, edit("icmp6_echo", func(b []byte) []byte { put16(b, 18, 3); return b }), "icmpv6", 54, ErrMalformed, "IP payload of 3 bytes cannot hold an 8-byte header", 0},
		{"udp in a 4-byte payload, padded", LinkEthernet, edit("udp6", func(b []byte) []byte { put16(b, 18, 4); put16(b, 58, 0); return b }), "udp", 54, ErrMalformed, "IP payload of 4 bytes cannot hold a UDP header", 0},
		{"short arp", LinkEthernet, testutil.FrameCopy(t, "arp_request")[:20], "arp", 14, ErrTruncated, "need 8 bytes, have 6", 0},
		{"short arp addresses", LinkEthernet, testutil.FrameCopy(t, "arp_request")[:40], "arp", 14, ErrTruncated, "need 28 bytes, have 26", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Record{Proto: ProtoTCP, Length: 99, Src: addrPort("1.2.3.4:5")} // not zero
			var err error
			if tt.wire != 0 {
				err = Parse(tt.frame, tt.link, &Info{Length: tt.wire}, &r)
			} else {
				err = Parse(tt.frame, tt.link, nil, &r)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error = %v, want a *ParseError", err)
			}
			if pe.Layer != tt.layer || pe.Offset != tt.offset || !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Parse error = %q (layer %q, offset %d, %v); want layer %q, offset %d, %v, and %q",
					err, pe.Layer, pe.Offset, pe.Err, tt.layer, tt.offset, tt.err, tt.reason)
			}
			if r != (Record{}) {
				t.Errorf("record not zero after error: %+v", r)
			}
		})
	}
}

// TestParseLengthZero checks that an IP length field of 0, as Linux
// gives BIG TCP packets, stands for the rest of the frame.
func TestParseLengthZero(t *testing.T) {
	for _, tt := range []struct {
		frame string
		off   int // of the length field
	}{{"tcp4", 16}, {"udp6", 18}} {
		t.Run(tt.frame, func(t *testing.T) {
			f := testutil.NamedFrame(t, tt.frame)
			var want, got Record
			if err := Parse(f.Data, LinkType(f.Link), nil, &want); err != nil {
				t.Fatal(err)
			}
			b := append([]byte(nil), f.Data...)
			b[tt.off], b[tt.off+1] = 0, 0
			if err := Parse(b, LinkType(f.Link), nil, &got); err != nil {
				t.Fatalf("Parse with length 0: %v", err)
			}
			if got != want {
				t.Errorf("with length 0:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestTCPFlagsString(t *testing.T) {
	for _, tt := range []struct {
		f    TCPFlags
		want string
	}{
		{0, "[none]"},
		{TCPSyn, "[S]"},
		{TCPSyn | TCPAck, "[S.]"},
		{TCPPsh | TCPAck, "[P.]"},
		{TCPFin | TCPAck, "[F.]"},
		{TCPRst, "[R]"},
		{TCPSyn | TCPEce | TCPCwr, "[SEW]"},
		{TCPFin | TCPSyn | TCPRst | TCPPsh | TCPAck | TCPUrg | TCPEce | TCPCwr | TCPAe, "[FSRP.UEWe]"},
	} {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("TCPFlags(%#x).String() = %q, want %q", uint16(tt.f), got, tt.want)
		}
	}
	if !(TCPSyn | TCPAck).Has(TCPAck) || TCPSyn.Has(TCPSyn|TCPAck) {
		t.Error("Has is wrong")
	}
}

func TestProtoString(t *testing.T) {
	for p, want := range map[Proto]string{
		ProtoUnknown: "unknown", ProtoTCP: "TCP", ProtoUDP: "UDP", ProtoICMP: "ICMP",
		ProtoICMPv6: "ICMPv6", ProtoARP: "ARP", ProtoIPv4: "IPv4", ProtoIPv6: "IPv6",
		ProtoOther: "Other", Proto(200): "Proto(200)",
	} {
		if got := p.String(); got != want {
			t.Errorf("Proto(%d).String() = %q, want %q", uint8(p), got, want)
		}
	}
}

// TestParseReuse checks that nothing of a previous frame stays in a
// reused Record, whether the parse succeeds or fails.
func TestParseReuse(t *testing.T) {
	frames := testutil.Frames(t)
	info := Info{Time: recordTestTime, Ifindex: 7, Direction: DirectionHost, HasVLAN: true, VLANTCI: 9}
	for _, prev := range frames {
		for _, f := range frames {
			var fresh, reused Record
			if err := Parse(f.Data, LinkType(f.Link), nil, &fresh); err != nil {
				t.Fatal(err)
			}
			if err := Parse(prev.Data, LinkType(prev.Link), &info, &reused); err != nil {
				t.Fatal(err)
			}
			if err := Parse(f.Data, LinkType(f.Link), nil, &reused); err != nil {
				t.Fatal(err)
			}
			if reused != fresh {
				t.Errorf("%s after %s:\n got %+v\nwant %+v", f.Name, prev.Name, reused, fresh)
			}
			if err := Parse(prev.Data, LinkType(prev.Link), &info, &reused); err != nil {
				t.Fatal(err)
			}
			cut := len(f.Data) / 3 // into a header
			if fresh.Proto == ProtoOther {
				cut = 13 // into the Ethernet header: the rest is payload
			}
			if Parse(f.Data[:cut], LinkType(f.Link), nil, &reused) == nil {
				t.Fatalf("%s cut to %d bytes decodes", f.Name, cut)
			}
			if reused != (Record{}) {
				t.Errorf("%s cut to %d bytes, after %s: record not zero: %+v", f.Name, cut, prev.Name, reused)
			}
		}
	}
}

func TestUnparsed(t *testing.T) {
	info := Info{Time: time.Unix(1700000000, 5), Ifindex: 3, Direction: DirectionOutgoing, Length: 90}
	tests := []struct {
		name  string
		frame []byte
		want  Status
	}{
		{"truncated IPv4", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0x45}, StatusTruncated},
		{"IHL below 5", append(make([]byte, 12), 0x08, 0x00, 0x44, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8), StatusMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Record
			err := Parse(tc.frame, LinkEthernet, &info, &r)
			if err == nil {
				t.Fatal("frame parsed")
			}
			u := Unparsed(tc.frame, &info, err)
			if u.Status != tc.want || u.Proto != ProtoUnknown || u.Time != info.Time || u.Ifindex != 3 || u.Direction != DirectionOutgoing || u.Length != 90 || u.CapLen != len(tc.frame) {
				t.Errorf("Unparsed = %+v, want status %v with info's fields", u, tc.want)
			}
			line := string(u.AppendLine(nil))
			if !strings.Contains(line, "\t"+tc.want.String()+"\t") {
				t.Errorf("text %q lacks the protocol %q", line, tc.want)
			}
		})
	}
}
