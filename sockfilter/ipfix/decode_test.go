package ipfix

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// buildMessage returns an IPFIX message of domain with the sets, each a
// Set ID and its body.
func buildMessage(domain uint32, sets ...[]byte) []byte {
	b := []byte{0, 10, 0, 0, 0x66, 0x32, 0x2e, 0xc0, 0, 0, 0, 5}
	b = binary.BigEndian.AppendUint32(b, domain)
	for _, s := range sets {
		b = append(b, s...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// buildSet returns a set: its ID, its length, and the body.
func buildSet(id uint16, body ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0, 0)
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// u16s returns the values as big-endian 16-bit words.
func u16s(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msg  []byte
	}{
		{"short header", []byte{0, 10, 0, 16}},
		{"version 9", func() []byte { b := buildMessage(1); b[1] = 9; return b }()},
		{"length past the buffer", func() []byte { b := buildMessage(1); b[3] = 200; return b }()},
		{"length below the header", func() []byte { b := buildMessage(1); b[3] = 8; return b }()},
		{"octets after the last set", buildMessage(1, []byte{0, 2})},
		{"set length below its header", buildMessage(1, []byte{1, 0, 0, 2})},
		{"set past the message", buildMessage(1, []byte{1, 0, 0, 40, 1, 2})},
		{"reserved set ID", buildMessage(1, buildSet(1, u16s(1, 2)))},
		{"template ID below 256", buildMessage(1, buildSet(2, u16s(255, 1, 2, 4)))},
		{"field specifiers past the set", buildMessage(1, buildSet(2, u16s(300, 3, 2, 4)))},
		{"enterprise number past the set", buildMessage(1, buildSet(2, u16s(300, 1, 0x8002, 4)))},
		{"options scope count 0", buildMessage(1, buildSet(3, u16s(400, 1, 0, 2, 4)))},
		{"options scope count above the field count", buildMessage(1, buildSet(3, u16s(400, 1, 2, 2, 4)))},
		{"records of no octets", buildMessage(1, buildSet(2, u16s(300, 1, 2, 0)))},
		{"withdrawal of template 5", buildMessage(1, buildSet(2, u16s(5, 0)))},
		{"variable-length field past the set", buildMessage(1,
			buildSet(2, u16s(301, 1, 82, VarLen)), buildSet(301, []byte{10, 'a', 'b'}))},
		{"long variable-length field past the set", buildMessage(1,
			buildSet(2, u16s(301, 1, 82, VarLen)), buildSet(301, []byte{255, 0}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			if _, err := NewDecoder().Decode(tt.msg, &m); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodeFeatures(t *testing.T) {
	t.Parallel()
	// Template 300: sourceIPv4Address, a variable-length
	// applicationName (96), an enterprise element, and octetDeltaCount
	// and packetDeltaCount in 4 and 2 octets (reduced-size encoding).
	tmpl := buildSet(2, u16s(300, 5, 8, 4, 96, VarLen, 0x8001, 2, 0, 0x1234, 1, 4, 2, 2))
	rec := func(name string, bytes uint32, packets uint16) []byte {
		b := []byte{192, 0, 2, 9}
		if len(name) < 255 {
			b = append(b, byte(len(name)))
		} else {
			b = append(b, 255, byte(len(name)>>8), byte(len(name)))
		}
		b = append(b, name...)
		b = append(b, 0xee, 0xee) // the enterprise element
		b = binary.BigEndian.AppendUint32(b, bytes)
		return binary.BigEndian.AppendUint16(b, packets)
	}
	long := string(make([]byte, 300))
	// Padding after the records: shorter than the shortest record.
	msg := buildMessage(9, tmpl, buildSet(300, rec("dns", 1000, 3), rec(long, 70000, 9), make([]byte, 8)))
	d := NewDecoder()
	var m Message
	n, err := d.Decode(append(msg, msg...), &m) // two messages in a row: Decode takes the first
	if err != nil {
		t.Fatal(err)
	}
	if n != len(msg) {
		t.Errorf("Decode took %d octets, the message has %d", n, len(msg))
	}
	if m.ObservationDomain != 9 || m.Sequence != 5 || !m.ExportTime.Equal(testStart) {
		t.Errorf("header: domain %d, sequence %d, time %v", m.ObservationDomain, m.Sequence, m.ExportTime)
	}
	if len(m.Templates) != 1 || len(m.Templates[0].Fields) != 5 || m.Templates[0].Fields[2] != (FieldSpec{Element: 1, Length: 2, Enterprise: 0x1234}) {
		t.Errorf("templates %+v", m.Templates)
	}
	want := []flow.Flow{
		{Key: flow.Key{EtherType: 0x0800, Src: netip.MustParseAddr("192.0.2.9")}, Bytes: 1000, Packets: 3},
		{Key: flow.Key{EtherType: 0x0800, Src: netip.MustParseAddr("192.0.2.9")}, Bytes: 70000, Packets: 9},
	}
	if m.Records != 2 || len(m.Flows) != 2 || m.Flows[0] != want[0] || m.Flows[1] != want[1] {
		t.Errorf("records %d, flows:\n%s\nwant:\n%s", m.Records, flowLines(m.Flows), flowLines(want))
	}

	// The template is the domain's: domain 8 has not seen it.
	if _, err := d.Decode(buildMessage(8, buildSet(300, rec("x", 1, 1))), &m); err != nil || m.UnknownSets != 1 || m.Records != 0 {
		t.Errorf("another domain: %v, %d unknown sets, %d records", err, m.UnknownSets, m.Records)
	}
	// Withdrawn, it is unknown.
	if _, err := d.Decode(buildMessage(9, buildSet(2, u16s(300, 0)), buildSet(300, rec("x", 1, 1))), &m); err != nil || m.UnknownSets != 1 {
		t.Errorf("after a withdrawal: %v, %d unknown sets", err, m.UnknownSets)
	}
}

// An options template's records are counted but are not flows; the
// withdrawal of all options templates leaves the templates.
func TestDecodeOptions(t *testing.T) {
	t.Parallel()
	opts := buildSet(3, u16s(400, 2, 1, 149, 4, 41, 8)) // scope observationDomainId, exportedMessageTotalCount
	tmpl := buildSet(2, u16s(300, 1, 2, 8))
	d := NewDecoder()
	var m Message
	data := buildSet(400, []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7})
	if _, err := d.Decode(buildMessage(1, opts, tmpl, data, buildSet(300, []byte{0, 0, 0, 0, 0, 0, 0, 4})), &m); err != nil {
		t.Fatal(err)
	}
	if m.Records != 2 || len(m.Flows) != 1 || m.Flows[0].Packets != 4 || len(m.Templates) != 2 || m.Templates[0].Scope != 1 {
		t.Errorf("records %d, flows %d, templates %+v", m.Records, len(m.Flows), m.Templates)
	}
	withdrawAll := buildSet(3, u16s(3, 0))
	if _, err := d.Decode(buildMessage(1, withdrawAll, data, buildSet(300, []byte{0, 0, 0, 0, 0, 0, 0, 4})), &m); err != nil {
		t.Fatal(err)
	}
	if m.UnknownSets != 1 || len(m.Flows) != 1 {
		t.Errorf("after withdrawing the options templates: %d unknown sets, %d flows; want 1, 1", m.UnknownSets, len(m.Flows))
	}
}

// The elements other exporters use in their own order and lengths decode
// to the same Flow, with the direction IPFIX gives.
func TestDecodeFlowFields(t *testing.T) {
	t.Parallel()
	tmpl := buildSet(2, u16s(310, 9,
		uint16(FlowDirection), 1, uint16(EgressInterface), 2, uint16(ICMPTypeCodeIPv6), 2,
		uint16(SourceIPv6Address), 16, uint16(DestinationIPv6Address), 16, uint16(ProtocolIdentifier), 1,
		uint16(FlowEndMilliseconds), 8, uint16(TCPControlBits), 1, uint16(VLANID), 2))
	var rec []byte
	rec = append(rec, 1, 0, 9, 0x88, 0x00) // egress, egressInterface 9, type 136 code 0
	rec = append(rec, netip.MustParseAddr("fe80::2").AsSlice()...)
	rec = append(rec, netip.MustParseAddr("ff02::1").AsSlice()...)
	rec = append(rec, 58)
	rec = binary.BigEndian.AppendUint64(rec, uint64(testStart.UnixMilli()))
	rec = append(rec, 0x18, 0xf0, 0x05) // flags PSH|ACK; VLAN 5 with priority bits above it
	var m Message
	if _, err := NewDecoder().Decode(buildMessage(1, tmpl, buildSet(310, rec)), &m); err != nil {
		t.Fatal(err)
	}
	want := flow.Flow{
		Key: flow.Key{Ifindex: 9, Direction: packet.DirectionOutgoing, EtherType: 0x86dd, IPProto: 58, VLAN: 5,
			Src: netip.MustParseAddr("fe80::2"), Dst: netip.MustParseAddr("ff02::1"), DstPort: 136 << 8},
		TCPFlags: packet.TCPPsh | packet.TCPAck, Start: time.Time{}, End: testStart,
	}
	if len(m.Flows) != 1 || flowLine(m.Flows[0]) != flowLine(want) {
		t.Errorf("decoded:\n%s\nwant:\n%s", flowLines(m.Flows), flowLine(want))
	}
}
