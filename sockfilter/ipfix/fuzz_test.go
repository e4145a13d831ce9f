package ipfix

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// exportedStream returns the stream the Exporter writes for the test
// flows, for seeds.
func exportedStream(t testing.TB) []byte {
	var out bytes.Buffer
	e, err := NewExporter(&out, &Config{ObservationDomain: 1})
	if err != nil {
		t.Fatal(err)
	}
	flows := testFlows()
	for i := range flows {
		if err := e.Add(&flows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// FuzzDecode decodes arbitrary bytes as a file of messages: the Decoder
// must not panic, must account for every octet it says it took, and every
// flow it decodes that the Exporter accepts must come back the same
// through the Exporter and a new Decoder.
func FuzzDecode(f *testing.F) {
	f.Add(exportedStream(f))
	f.Add(buildMessage(9, buildSet(2, u16s(300, 5, 8, 4, 96, VarLen, 0x8001, 2, 0, 0x1234, 1, 4, 2, 2)),
		buildSet(300, []byte{192, 0, 2, 9, 3, 'd', 'n', 's', 0xee, 0xee, 0, 0, 3, 232, 0, 3})))
	f.Add(buildMessage(1, buildSet(3, u16s(400, 2, 1, 149, 4, 41, 8)), buildSet(400, make([]byte, 12))))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder()
		var m Message
		var flows []flow.Flow
		for off := 0; off < len(b); {
			n, err := d.Decode(b[off:], &m)
			if n < 0 || n > len(b)-off || err == nil && n < messageHeaderLen {
				t.Fatalf("Decode took %d of %d octets (err %v)", n, len(b)-off, err)
			}
			if err != nil {
				break
			}
			if len(m.Flows) > m.Records {
				t.Fatalf("%d flows of %d records", len(m.Flows), m.Records)
			}
			flows = append(flows, m.Flows...)
			off += n
		}
		checkRoundTrip(t, flows, &Config{})
	})
}

// checkRoundTrip exports the flows the Exporter accepts with cfg, decodes
// the messages and checks they hold each flow, sent, once.
func checkRoundTrip(t *testing.T, flows []flow.Flow, cfg *Config) {
	t.Helper()
	var d datagrams
	c := *cfg
	c.Datagram = true
	e, err := NewExporter(&d, &c)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range flows {
		if err := e.Add(&flows[i]); err != nil {
			continue
		}
		want = append(want, flowLine(sent(flows[i])))
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder()
	var got []string
	var seq uint32
	max := c.MaxMessageSize
	if max == 0 {
		max = DefaultDatagramSize
	}
	for i, b := range d.msgs {
		if len(b) > max {
			t.Fatalf("message %d: %d octets, more than %d", i, len(b), max)
		}
		var m Message
		n, err := dec.Decode(b, &m)
		if err != nil || n != len(b) {
			t.Fatalf("message %d: Decode took %d of %d octets: %v", i, n, len(b), err)
		}
		if m.Sequence != seq || m.UnknownSets != 0 {
			t.Fatalf("message %d: sequence %d, want %d; %d unknown sets", i, m.Sequence, seq, m.UnknownSets)
		}
		seq += uint32(m.Records)
		for _, f := range m.Flows {
			got = append(got, flowLine(f))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("decoded:\n%s\nsent:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// FuzzRoundTrip exports flows made of arbitrary bytes in messages of an
// arbitrary size, and checks that the Decoder reads them back as sent.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint16(400), []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x20\x21\x22\x23\x24\x25\x26\x27\x28\x29\x2a\x2b\x2c\x2d\x2e\x2f"))
	f.Add(uint16(0), bytes.Repeat([]byte{0xff, 0x01, 0x86, 0xdd, 0x3a}, 40))
	f.Fuzz(func(t *testing.T, size uint16, b []byte) {
		var flows []flow.Flow
		for len(b) >= 48 {
			flows = append(flows, flowOf(b[:48]))
			b = b[48:]
		}
		max := 0
		if size != 0 {
			max = minMessageSize + int(size)%(MaxMessageSize-minMessageSize+1)
		}
		checkRoundTrip(t, flows, &Config{MaxMessageSize: max})
	})
}

// flowOf makes a flow of 48 arbitrary bytes.
func flowOf(b []byte) flow.Flow {
	u16 := func(i int) uint16 { return binary.BigEndian.Uint16(b[i:]) }
	u64 := func(i int) uint64 { return binary.BigEndian.Uint64(b[i:]) }
	k := flow.Key{
		Ifindex: int(u16(0)), Direction: packet.Direction(b[2] % 6), IPProto: b[3],
		SrcPort: u16(4), DstPort: u16(6), VLAN: u16(8),
	}
	switch b[10] % 3 {
	case 0:
		k.EtherType = 0x0800
		k.Src, k.Dst = netip.AddrFrom4([4]byte(b[11:15])), netip.AddrFrom4([4]byte(b[15:19]))
		if b[10]&0x80 != 0 {
			k.IPProto = 1
		}
	case 1:
		k.EtherType = 0x86dd
		a := [16]byte(b[11:27])
		k.Src, k.Dst = netip.AddrFrom16(a), netip.AddrFrom16([16]byte(b[27:43]))
		if k.Src.Is4In6() || k.Dst.Is4In6() {
			k.Src = netip.Addr{}
		}
	default:
		k.EtherType = u16(11)
	}
	start := time.UnixMilli(int64(u64(16) >> 24)).Add(time.Duration(b[24]) * time.Microsecond)
	return flow.Flow{
		Key: k, Packets: u64(24), Bytes: u64(32) >> (b[40] % 64), TCPFlags: packet.TCPFlags(u16(40)),
		Start: start, End: start.Add(time.Duration(u16(42)) * time.Millisecond), EndReason: flow.EndReason(b[44] % 7),
	}
}
