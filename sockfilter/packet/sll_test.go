package packet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
)

// TestSLLHeader checks that AppendSLL and AppendSLL2 write the headers of
// the test frames byte for byte, and that ParseSLL reads them back.
func TestSLLHeader(t *testing.T) {
	for _, tt := range []struct {
		frame string
		link  LinkType
		h     SLLHeader
	}{
		{"sll_tcp4", LinkLinuxSLL, SLLHeader{Protocol: 0x0800, HAType: 772, PacketType: 0, AddrLen: 6}},
		{"sll_vlan_udp4", LinkLinuxSLL, SLLHeader{Protocol: 0x8100, HAType: 1, PacketType: 1, AddrLen: 6, Addr: [8]byte{2, 0, 0, 0, 0, 1}}},
		{"sll2_udp6", LinkLinuxSLL2, SLLHeader{Protocol: 0x86dd, Ifindex: 2, HAType: 1, PacketType: 4, AddrLen: 6, Addr: [8]byte{2, 0, 0, 0, 0, 1}}},
		{"sll2_llc_stp", LinkLinuxSLL2, SLLHeader{Protocol: 0x0004, Ifindex: 2, HAType: 1, PacketType: 2, AddrLen: 6, Addr: [8]byte{2, 0, 0, 0, 0, 1}}},
	} {
		t.Run(tt.frame, func(t *testing.T) {
			f := testutil.NamedFrame(t, tt.frame)
			n := SLLHeaderLen
			b := tt.h.AppendSLL([]byte{0xee})
			if tt.link == LinkLinuxSLL2 {
				n = SLL2HeaderLen
				b = tt.h.AppendSLL2([]byte{0xee})
			}
			if !bytes.Equal(b[1:], f.Data[:n]) || b[0] != 0xee {
				t.Errorf("Append: % x, want % x after the byte there", b, f.Data[:n])
			}
			h, err := ParseSLL(f.Data, tt.link)
			if err != nil || h != tt.h {
				t.Errorf("ParseSLL = %+v, %v; want %+v", h, err, tt.h)
			}
		})
	}

	// Version 1 has no interface index; version 2 a single byte for the
	// address length and 32 bits for the index.
	h := SLLHeader{Ifindex: 7, AddrLen: 300}
	if got, _ := ParseSLL(h.AppendSLL(nil), LinkLinuxSLL); got.Ifindex != 0 || got.AddrLen != 300 {
		t.Errorf("SLL round trip of %+v: %+v", h, got)
	}
	if got, _ := ParseSLL(h.AppendSLL2(nil), LinkLinuxSLL2); got.Ifindex != 7 || got.AddrLen != 255 {
		t.Errorf("SLL2 round trip of %+v: %+v", h, got)
	}
	if got, _ := ParseSLL((&SLLHeader{Ifindex: -1}).AppendSLL2(nil), LinkLinuxSLL2); got.Ifindex != 0 {
		t.Errorf("SLL2 with ifindex -1 reads back as %d, want 0", got.Ifindex)
	}

	for _, tt := range []struct {
		link  LinkType
		frame []byte
		err   error
		layer Layer
	}{
		{LinkLinuxSLL, make([]byte, 15), ErrTruncated, LayerSLL},
		{LinkLinuxSLL2, make([]byte, 19), ErrTruncated, LayerSLL2},
		{LinkEthernet, make([]byte, 20), errors.ErrUnsupported, LayerFrame},
	} {
		var pe *ParseError
		if _, err := ParseSLL(tt.frame, tt.link); !errors.Is(err, tt.err) || !errors.As(err, &pe) || pe.Layer != tt.layer {
			t.Errorf("ParseSLL(%d bytes, %v) = %v, want %v at %v", len(tt.frame), tt.link, err, tt.err, tt.layer)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		b := h.AppendSLL2(make([]byte, 0, 64))
		if _, err := ParseSLL(b, LinkLinuxSLL2); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("AppendSLL2 and ParseSLL: %v allocations, want 0", n)
	}
}

func TestSLLDirection(t *testing.T) {
	t.Parallel()
	for pkttype, want := range map[uint8]Direction{0: DirectionHost, 1: DirectionBroadcast, 2: DirectionMulticast,
		3: DirectionOtherHost, 4: DirectionOutgoing, 5: DirectionUnknown, 255: DirectionUnknown} {
		if got := (&SLLHeader{PacketType: pkttype}).Direction(); got != want {
			t.Errorf("packet type %d: %v, want %v", pkttype, got, want)
		}
	}
}

// TestParseSLLInfo checks the precedence of Info over a cooked capture
// header: what Info says wins, what it does not say the header gives.
func TestParseSLLInfo(t *testing.T) {
	t.Parallel()
	f := testutil.NamedFrame(t, "sll2_udp6") // ifindex 2, outgoing
	for _, tt := range []struct {
		name    string
		info    *Info
		ifindex int
		dir     Direction
	}{
		{"no info", nil, 2, DirectionOutgoing},
		{"info silent", &Info{Length: f.Length}, 2, DirectionOutgoing},
		{"info says", &Info{Ifindex: 9, Direction: DirectionHost}, 9, DirectionHost},
		{"info says the direction only", &Info{Direction: DirectionOtherHost}, 2, DirectionOtherHost},
	} {
		var r Record
		if err := Parse(f.Data, LinkLinuxSLL2, tt.info, &r); err != nil {
			t.Fatal(err)
		}
		if r.Ifindex != tt.ifindex || r.Direction != tt.dir {
			t.Errorf("%s: Ifindex %d Direction %v, want %d %v", tt.name, r.Ifindex, r.Direction, tt.ifindex, tt.dir)
		}
	}
}

// TestParseSLLProtocols checks the cooked header's protocol values that
// are not EtherTypes, which tcpdump decodes as such (802.3, 802.2) or not
// at all: the Record names the frame ProtoOther with the value.
func TestParseSLLProtocols(t *testing.T) {
	t.Parallel()
	payload, _ := hex.DecodeString("424203000000000080000200000000010000")
	for _, proto := range []uint16{0x0001, 0x0003, 0x0004, 0x000c, 0x000d, 0x05dc} {
		for _, link := range []LinkType{LinkLinuxSLL, LinkLinuxSLL2} {
			h := SLLHeader{Protocol: proto, HAType: 280, PacketType: 0}
			var frame []byte
			if link == LinkLinuxSLL {
				frame = h.AppendSLL(nil)
			} else {
				frame = h.AppendSLL2(nil)
			}
			frame = append(frame, payload...)
			var r Record
			if err := Parse(frame, link, nil, &r); err != nil {
				t.Fatal(err)
			}
			if r.Proto != ProtoOther || r.EtherType != proto || r.Direction != DirectionHost || r.String()[:len("-\t-\t-\t-\tOther(0x")] != "-\t-\t-\t-\tOther(0x" {
				t.Errorf("%v protocol %#04x: %s", link, proto, r.String())
			}
		}
	}
}
