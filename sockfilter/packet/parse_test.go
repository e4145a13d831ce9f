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
	t.Parallel()
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

		// Linux cooked captures: the header gives the direction, and the
		// interface index in version 2.
		"sll_tcp4": {Direction: DirectionHost, Proto: ProtoTCP, EtherType: 0x0800, IPVersion: 4, IPProto: 6, TTL: 64,
			Src: addrPort("127.0.0.1:40010"), Dst: addrPort("127.0.0.1:8080"), DontFragment: true, FragID: 0x0a0b,
			Transport: true, Length: 56, CapLen: 56, IPPayloadLen: 20, TCPFlags: TCPSyn, Seq: 100, Window: 65495},
		"sll_vlan_udp4": {Direction: DirectionBroadcast, Proto: ProtoUDP, EtherType: 0x0800, IPVersion: 4, IPProto: 17, TTL: 64,
			Src: addrPort("10.0.0.1:41030"), Dst: addrPort("10.0.0.255:41031"), VLANs: 1, VLAN: 5, FragID: 0x42,
			Transport: true, Length: 60, CapLen: 60, IPPayloadLen: 20, PayloadLen: 12},
		"sll2_udp6": {Ifindex: 2, Direction: DirectionOutgoing, Proto: ProtoUDP, EtherType: 0x86dd, IPVersion: 6, IPProto: 17, TTL: 64,
			Src: addrPort("[2001:db8::1]:41020"), Dst: addrPort("[2001:db8::2]:41021"),
			Transport: true, Length: 76, CapLen: 76, IPPayloadLen: 16, PayloadLen: 8},
		"sll2_arp_reply": {Ifindex: 3, Direction: DirectionHost, Proto: ProtoARP, EtherType: 0x0806,
			Src: addrPort("10.0.0.2:0"), Dst: addrPort("10.0.0.1:0"), ARPOp: 2, Length: 48, CapLen: 48},
		"sll2_llc_stp": {Ifindex: 2, Direction: DirectionMulticast, Proto: ProtoOther, EtherType: 0x0004, Length: 58, CapLen: 58},

		// Frames cut by a snap length: what was captured, and where the
		// cut is.
		"trunc_payload_udp4": {Proto: ProtoUDP, EtherType: 0x0800, IPVersion: 4, IPProto: 17, TTL: 64,
			Src: addrPort("10.0.0.1:41060"), Dst: addrPort("10.0.0.2:41061"), DontFragment: true, FragID: 0x8888,
			Transport: true, Length: 142, CapLen: 60, IPPayloadLen: 108, PayloadLen: 100},
		"trunc_tcp4_opts": {Status: StatusTruncated, ErrLayer: LayerTCP, Proto: ProtoTCP, EtherType: 0x0800, IPVersion: 4, IPProto: 6, TTL: 64,
			Src: addrPort("10.0.0.1:40020"), Dst: addrPort("10.0.0.2:443"), DontFragment: true, FragID: 0x5555,
			Transport: true, Length: 74, CapLen: 60, IPPayloadLen: 40, TCPFlags: TCPSyn, Seq: 0x01020304, Window: 64240},
		"sll2_trunc_tcp4": {Ifindex: 1, Direction: DirectionHost, Status: StatusTruncated, ErrLayer: LayerTCP,
			Proto: ProtoTCP, EtherType: 0x0800, IPVersion: 4, IPProto: 6, TTL: 64,
			Src: addrPort("127.0.0.1:9999"), Dst: addrPort("127.0.0.1:37026"), DontFragment: true, FragID: 0x7777,
			Transport: true, Length: 102, CapLen: 60, IPPayloadLen: 62, PayloadLen: 30, TCPFlags: tcpPA, Seq: 2000, Ack: 3000, Window: 64},
		"trunc_tcp6_ports": {Status: StatusTruncated, ErrLayer: LayerTCP, Proto: ProtoTCP, EtherType: 0x86dd, IPVersion: 6, IPProto: 6, TTL: 64,
			Src: addrPort("[2001:db8::1]:40030"), Dst: addrPort("[2001:db8::2]:22"), PortsOnly: true,
			Length: 94, CapLen: 60, IPPayloadLen: 40},
		"trunc_udp6": {Status: StatusTruncated, ErrLayer: LayerUDP, Proto: ProtoUDP, EtherType: 0x86dd, IPVersion: 6, IPProto: 17, TTL: 64,
			Src: addrPort("[2001:db8::1]:41040"), Dst: addrPort("[2001:db8::2]:41041"), PortsOnly: true,
			Length: 132, CapLen: 60, IPPayloadLen: 78},
		"trunc_ipv4_opts": {Status: StatusTruncated, ErrLayer: LayerIPv4, Proto: ProtoUDP, EtherType: 0x0800, IPVersion: 4, IPProto: 17, TTL: 64,
			Src: addrPort("10.0.0.1:0"), Dst: addrPort("10.0.0.2:0"), DontFragment: true, FragID: 0x6666,
			Length: 78, CapLen: 44, IPPayloadLen: 24},
		"trunc_ext6_hbh": {Status: StatusTruncated, ErrLayer: LayerIPv6Ext, Proto: ProtoIPv6, EtherType: 0x86dd, IPVersion: 6, IPProto: 0, TTL: 64,
			Src: addrPort("[2001:db8::1]:0"), Dst: addrPort("[2001:db8::2]:0"), Length: 102, CapLen: 60, IPPayloadLen: 48},
		"trunc_icmp4": {Status: StatusTruncated, ErrLayer: LayerICMP, Proto: ProtoICMP, EtherType: 0x0800, IPVersion: 4, IPProto: 1, TTL: 64,
			Src: addrPort("10.0.0.1:0"), Dst: addrPort("10.0.0.2:0"), DontFragment: true, FragID: 0x1234,
			Length: 58, CapLen: 38, IPPayloadLen: 24},
		"trunc_arp": {Status: StatusTruncated, ErrLayer: LayerARP, Proto: ProtoARP, EtherType: 0x0806, ARPOp: 1, Length: 60, CapLen: 30},
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
			err := Parse(f.Data, LinkType(f.Link), &Info{Length: f.Length}, &r)
			var pe *ParseError
			if w.Status == StatusOK && err != nil || w.Status != StatusOK && !(errors.As(err, &pe) && pe.Layer == w.ErrLayer) {
				t.Fatalf("Parse: %v, want status %v at %v", err, w.Status, w.ErrLayer)
			}
			if r != w {
				t.Errorf("Parse:\n got %+v\nwant %+v", r, w)
			}
			if got, want := r.HasPorts(), (w.Transport || w.PortsOnly) && w.Src.Port() != 0; got != want {
				t.Errorf("HasPorts() = %v, want %v", got, want)
			}
			if !f.Truncated() {
				// A whole frame needs no Info.
				var r2 Record
				if err := Parse(f.Data, LinkType(f.Link), nil, &r2); err != nil || r2 != w {
					t.Errorf("Parse with no Info: %v\n got %+v\nwant %+v", err, r2, w)
				}
			}
		})
	}
}

// TestParseInfo checks what Parse takes from an Info, and
// that a capture cut by a snap length decodes while its headers last.
func TestParseInfo(t *testing.T) {
	t.Parallel()
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
		{"snaplen cuts tcp header", tcp4[:50], Info{Length: 74, Ifindex: 4, Time: ts}, ErrTruncated,
			func(t *testing.T, r *Record) {
				if r.Status != StatusTruncated || r.ErrLayer != LayerTCP || !r.HasPorts() || r.Dst.Port() != 80 ||
					r.Ifindex != 4 || !r.Time.Equal(ts) || r.Length != 74 || r.CapLen != 50 {
					t.Errorf("got %+v", r)
				}
			}},
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
			if !errors.Is(err, tt.wantErr) || (err != nil && tt.wantErr == nil) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			tt.check(t, &r)
		})
	}
}

// TestParseErrors checks that bad frames give a *ParseError naming
// the header and its offset, and that the Record says so: its Status and
// ErrLayer, and nothing left of the Record it overwrote.
func TestParseErrors(t *testing.T) {
	t.Parallel()
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
		layer  Layer
		offset int
		err    error
		reason string // a part of the message
		wire   int    // if not 0, the length on the wire, for Parse's Info
	}{
		{"empty", LinkEthernet, nil, LayerFrame, 0, ErrTruncated, "empty frame", 0},
		{"empty raw", LinkRawIP, []byte{}, LayerFrame, 0, ErrTruncated, "empty frame", 0},
		{"unsupported link", LinkType(7), testutil.NamedFrame(t, "tcp4").Data, LayerFrame, 0, errors.ErrUnsupported, "LinkType(7)", 0},
		{"short ethernet", LinkEthernet, testutil.FrameCopy(t, "tcp4")[:13], LayerEthernet, 0, ErrTruncated, "need 14 bytes, have 13", 0},
		{"short vlan tag", LinkEthernet, testutil.FrameCopy(t, "vlan_tcp4")[:16], LayerVLAN, 14, ErrTruncated, "need 4 bytes, have 2", 0},
		{"short inner vlan tag", LinkEthernet, testutil.FrameCopy(t, "qinq_udp4")[:20], LayerVLAN, 18, ErrTruncated, "need 4", 0},
		{"nine vlan tags", LinkEthernet, tags(9), LayerVLAN, 14 + 8*4, ErrMalformed, "more than 8 VLAN tags", 0},
		{"short ipv4", LinkEthernet, testutil.FrameCopy(t, "tcp4")[:30], LayerIPv4, 14, ErrTruncated, "need 20 bytes, have 16", 0},
		{"ipv4 IHL 4", LinkEthernet, edit("tcp4", func(b []byte) []byte { b[14] = 0x44; return b }), LayerIPv4, 14, ErrMalformed, "IHL 4 is less than 5", 0},
		{"ipv4 version 6", LinkEthernet, edit("tcp4", func(b []byte) []byte { b[14] = 0x65; return b }), LayerIPv4, 14, ErrMalformed, "IP version 6", 0},
		{"short ipv4 options", LinkEthernet, testutil.FrameCopy(t, "ipopt_tcp4")[:36], LayerIPv4, 14, ErrTruncated, "need 24 bytes, have 22", 62},
		{"short ipv4 options without wire length", LinkEthernet, testutil.FrameCopy(t, "ipopt_tcp4")[:36], LayerIPv4, 14, ErrMalformed, "total length 48 exceeds the 22 bytes left", 0},
		{"ipv4 total below IHL", LinkEthernet, edit("tcp4", func(b []byte) []byte { put16(b, 16, 19); return b }), LayerIPv4, 14, ErrMalformed, "total length 19 is less than the header length 20", 0},
		{"ipv4 total past frame", LinkEthernet, edit("tcp4", func(b []byte) []byte { put16(b, 16, 61); return b }), LayerIPv4, 14, ErrMalformed, "total length 61 exceeds the 60 bytes left", 0},
		{"raw IP version 5", LinkRawIP, edit("raw_udp4", func(b []byte) []byte { b[0] = 0x55; return b }), LayerIP, 0, ErrMalformed, "IP version 5 is neither 4 nor 6", 0},
		{"short ipv6", LinkEthernet, testutil.FrameCopy(t, "udp6")[:53], LayerIPv6, 14, ErrTruncated, "need 40 bytes, have 39", 0},
		{"ipv6 version 4", LinkEthernet, edit("udp6", func(b []byte) []byte { b[14] = 0x40; return b }), LayerIPv6, 14, ErrMalformed, "IP version 4", 0},
		{"ipv6 payload past frame", LinkEthernet, edit("udp6", func(b []byte) []byte { put16(b, 18, 41); return b }), LayerIPv6, 14, ErrMalformed, "payload length 41 exceeds the 40 bytes left", 0},
		{"ext header past payload length", LinkEthernet, edit("ext6_tcp", func(b []byte) []byte { b[55] = 9; return b }), LayerIPv6Ext, 54, ErrMalformed, "header of 80 bytes runs past the IPv6 payload length", 0},
		{"ext chain runs off the end", LinkEthernet, edit("ext6_tcp", func(b []byte) []byte { put16(b, 18, 24); return b[:78] }), LayerIPv6Ext, 70, ErrMalformed, "header of 24 bytes runs past the IPv6 payload length", 0},
		{"ext chain ends in the middle of a header", LinkEthernet, edit("ext6_tcp", func(b []byte) []byte { put16(b, 18, 20); return b[:74] }), LayerIPv6Ext, 70, ErrMalformed, "header runs past the IPv6 payload length", 0},
		{"ext header cut", LinkEthernet, testutil.FrameCopy(t, "ext6_tcp")[:60], LayerIPv6Ext, 54, ErrTruncated, "need 8 bytes, have 6", 126},
		{"ext header cut inside", LinkEthernet, testutil.FrameCopy(t, "ext6_tcp")[:80], LayerIPv6Ext, 70, ErrTruncated, "need 24 bytes, have 10", 126},
		{"nine ext headers", LinkEthernet, dstopts(9), LayerIPv6Ext, 54 + 8*8, ErrMalformed, "more than 8 extension headers", 0},
		{"tcp data offset 4", LinkEthernet, edit("tcp4", func(b []byte) []byte { b[46] = 0x40; return b }), LayerTCP, 34, ErrMalformed, "data offset 4 is less than 5", 0},
		{"tcp data offset past payload", LinkEthernet, edit("ipopt_tcp4", func(b []byte) []byte { b[50] = 0x70; return b }), LayerTCP, 38, ErrMalformed, "data offset 7 runs past the IP payload of 24 bytes", 0},
		{"tcp options past capture", LinkEthernet, testutil.FrameCopy(t, "ipopt_tcp4")[:60], LayerTCP, 38, ErrTruncated, "need 24 bytes, have 22", 62},
		{"ipv4 total past frame without wire length", LinkEthernet, testutil.FrameCopy(t, "ipopt_tcp4")[:60], LayerIPv4, 14, ErrMalformed, "total length 48 exceeds the 46 bytes left", 0},
		{"ip payload too short for tcp", LinkEthernet, edit("tcp4", func(b []byte) []byte { put16(b, 16, 30); return b[:44] }), LayerTCP, 34, ErrMalformed, "IP payload of 10 bytes cannot hold a TCP header", 0},
		{"short udp", LinkRawIP, edit("raw_udp4", func(b []byte) []byte { put16(b, 2, 26); return b[:26] }), LayerUDP, 20, ErrMalformed, "IP payload of 6 bytes cannot hold a UDP header", 0},
		{"udp length 7", LinkEthernet, edit("udp4", func(b []byte) []byte { put16(b, 38, 7); return b }), LayerUDP, 34, ErrMalformed, "length 7 is less than 8", 0},
		{"udp length past ip payload", LinkEthernet, edit("udp4", func(b []byte) []byte { put16(b, 38, 73); return b }), LayerUDP, 34, ErrMalformed, "length 73 exceeds the IP payload of 72 bytes", 0},
		{"short icmp", LinkEthernet, edit("icmp4_echo", func(b []byte) []byte { put16(b, 16, 24); return b[:38] }), LayerICMP, 34, ErrMalformed, "IP payload of 4 bytes cannot hold an 8-byte header", 0},
		{"short icmpv6", LinkEthernet, edit("icmp6_echo", func(b []byte) []byte { put16(b, 18, 7); return b[:61] }), LayerICMPv6, 54, ErrMalformed, "IP payload of 7 bytes", 0},
		{"icmpv6 in a 3-byte payload, padded", LinkEthernet, edit("icmp6_echo", func(b []byte) []byte { put16(b, 18, 3); return b }), LayerICMPv6, 54, ErrMalformed, "IP payload of 3 bytes cannot hold an 8-byte header", 0},
		{"udp in a 4-byte payload, padded", LinkEthernet, edit("udp6", func(b []byte) []byte { put16(b, 18, 4); put16(b, 58, 0); return b }), LayerUDP, 54, ErrMalformed, "IP payload of 4 bytes cannot hold a UDP header", 0},
		{"short arp", LinkEthernet, testutil.FrameCopy(t, "arp_request")[:20], LayerARP, 14, ErrTruncated, "need 8 bytes, have 6", 0},
		{"short arp addresses", LinkEthernet, testutil.FrameCopy(t, "arp_request")[:40], LayerARP, 14, ErrTruncated, "need 28 bytes, have 26", 0},
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
			want := StatusMalformed
			if errors.Is(err, ErrTruncated) {
				want = StatusTruncated
			}
			if r.Status != want || r.ErrLayer != tt.layer || r.CapLen != len(tt.frame) || r.Length != max(tt.wire, len(tt.frame)) {
				t.Errorf("record: Status %v ErrLayer %v CapLen %d Length %d; want %v %v %d", r.Status, r.ErrLayer, r.CapLen, r.Length, want, tt.layer, len(tt.frame))
			}
		})
	}
}

// TestParseLengthZero checks that an IP length field of 0, as Linux
// gives BIG TCP packets, stands for the rest of the frame.
func TestParseLengthZero(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
	frames := testutil.Frames(t)
	info := Info{Time: recordTestTime, Ifindex: 7, Direction: DirectionHost, HasVLAN: true, VLANTCI: 9}
	parse := func(f testutil.Frame, data []byte, info Info, r *Record) error {
		t.Helper()
		info.Length = f.Length
		err := Parse(data, LinkType(f.Link), &info, r)
		if err != nil && !(errors.Is(err, ErrTruncated) && len(data) < f.Length) {
			t.Fatalf("%s: %v", f.Name, err)
		}
		return err
	}
	for _, prev := range frames {
		for _, f := range frames {
			var fresh, reused Record
			parse(f, f.Data, Info{}, &fresh)
			parse(prev, prev.Data, info, &reused)
			parse(f, f.Data, Info{}, &reused)
			if reused != fresh {
				t.Errorf("%s after %s:\n got %+v\nwant %+v", f.Name, prev.Name, reused, fresh)
			}
			parse(prev, prev.Data, info, &reused)
			cut := len(f.Data) / 3 // into a header
			if fresh.Proto == ProtoOther || f.Link == testutil.LinkLinuxSLL || f.Link == testutil.LinkLinuxSLL2 {
				cut = 13 // into the link-layer header: the rest may be payload
			}
			var freshCut Record
			errFresh := parse(f, f.Data[:cut], Info{}, &freshCut)
			if parse(f, f.Data[:cut], Info{}, &reused) == nil || errFresh == nil {
				t.Fatalf("%s cut to %d bytes decodes", f.Name, cut)
			}
			if reused != freshCut {
				t.Errorf("%s cut to %d bytes, after %s:\n got %+v\nwant %+v", f.Name, cut, prev.Name, reused, freshCut)
			}
		}
	}
}

// TestParseErrorRecord checks the Record Parse leaves for a frame it
// cannot decode: the Info's fields, the Status and the layer at fault.
func TestParseErrorRecord(t *testing.T) {
	t.Parallel()
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
			u := r
			if u.Status != tc.want || u.ErrLayer != LayerIPv4 || u.Proto != ProtoUnknown || u.Time != info.Time || u.Ifindex != 3 || u.Direction != DirectionOutgoing || u.Length != 90 || u.CapLen != len(tc.frame) {
				t.Errorf("record %+v, want status %v at ipv4 with info's fields", u, tc.want)
			}
			line := string(u.AppendLine(nil))
			if !strings.Contains(line, "\t"+tc.want.String()+"\t") {
				t.Errorf("text %q lacks the protocol %q", line, tc.want)
			}
		})
	}
}
