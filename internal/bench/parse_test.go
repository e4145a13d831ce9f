package bench

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// benchFrames are the five frames of the comparison, from
// testdata/frames: Ethernet + IPv4 + TCP with 20 bytes of
// payload; + UDP with 64 bytes; Ethernet + 802.1Q + IPv4 + TCP; Ethernet +
// IPv6 + UDP; Ethernet + IPv4 with a 4-byte option + TCP.
var benchFrames = []string{"tcp4", "udp4", "vlan_tcp4", "udp6", "ipopt_tcp4"}

// loadFrame reads a frame from testdata/frames.
func loadFrame(tb testing.TB, name string) []byte {
	tb.Helper()
	return testutil.NamedFrame(tb, name).Data
}

// fields are what both decoders extract from a frame.
type fields struct {
	proto              uint8 // IP protocol
	src, dst           netip.AddrPort
	ipPayload, payload int
	flags              uint16 // TCP flags, as packet.TCPFlags
	seq, ack           uint32
	win                uint16
}

// fromRecord sets f from the fields of a packet.Record, one at a time
// as decode does: building a struct value and copying it would cost a
// store-forwarding stall that has nothing to do with decoding.
func (f *fields) fromRecord(r *packet.Record) {
	f.proto = r.IPProto
	f.src, f.dst = r.Src, r.Dst
	f.ipPayload, f.payload = r.IPPayloadLen, r.PayloadLen
	f.flags, f.seq, f.ack, f.win = uint16(r.TCPFlags), r.Seq, r.Ack, r.Window
}

// gopacketDecoder is a DecodingLayerParser for Ethernet, 802.1Q, IPv4,
// IPv6, TCP, UDP and payload, with its layers.
type gopacketDecoder struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	udp     layers.UDP
	payload gopacket.Payload
	parser  *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
}

func newGopacketDecoder() *gopacketDecoder {
	d := &gopacketDecoder{decoded: make([]gopacket.LayerType, 0, 8)}
	d.parser = gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet,
		&d.eth, &d.dot1q, &d.ip4, &d.ip6, &d.tcp, &d.udp, &d.payload)
	d.parser.IgnoreUnsupported = true // ports like 53 name layers it was not given
	return d
}

// decode decodes frame and extracts the fields, as ParseFrame does.
func (d *gopacketDecoder) decode(frame []byte, f *fields) error {
	if err := d.parser.DecodeLayers(frame, &d.decoded); err != nil {
		return err
	}
	*f = fields{}
	var src, dst netip.Addr
	for _, lt := range d.decoded {
		switch lt {
		case layers.LayerTypeIPv4:
			src, _ = netip.AddrFromSlice(d.ip4.SrcIP)
			dst, _ = netip.AddrFromSlice(d.ip4.DstIP)
			f.proto = uint8(d.ip4.Protocol)
			f.ipPayload = int(d.ip4.Length) - int(d.ip4.IHL)*4
		case layers.LayerTypeIPv6:
			src, _ = netip.AddrFromSlice(d.ip6.SrcIP)
			dst, _ = netip.AddrFromSlice(d.ip6.DstIP)
			f.proto = uint8(d.ip6.NextHeader)
			f.ipPayload = int(d.ip6.Length)
		case layers.LayerTypeTCP:
			t := &d.tcp
			f.src = netip.AddrPortFrom(src, uint16(t.SrcPort))
			f.dst = netip.AddrPortFrom(dst, uint16(t.DstPort))
			f.payload = f.ipPayload - int(t.DataOffset)*4
			var fl uint16
			for i, set := range [...]bool{t.FIN, t.SYN, t.RST, t.PSH, t.ACK, t.URG, t.ECE, t.CWR, t.NS} {
				if set {
					fl |= 1 << i
				}
			}
			f.flags, f.seq, f.ack, f.win = fl, t.Seq, t.Ack, t.Window
		case layers.LayerTypeUDP:
			f.src = netip.AddrPortFrom(src, uint16(d.udp.SrcPort))
			f.dst = netip.AddrPortFrom(dst, uint16(d.udp.DstPort))
			f.payload = int(d.udp.Length) - 8
		}
	}
	return nil
}

// TestSameFields checks that the two decoders agree on every frame, so
// that the benchmark compares like with like.
func TestSameFields(t *testing.T) {
	d := newGopacketDecoder()
	for _, name := range benchFrames {
		t.Run(name, func(t *testing.T) {
			frame := loadFrame(t, name)
			var r packet.Record
			if err := packet.Parse(frame, packet.LinkEthernet, nil, &r); err != nil {
				t.Fatal(err)
			}
			var g fields
			if err := d.decode(frame, &g); err != nil {
				t.Fatalf("gopacket: %v", err)
			}
			var p fields
			p.fromRecord(&r)
			if p != g {
				t.Errorf("ParseFrame: %+v\ngopacket:   %+v", p, g)
			}
			if !r.Src.IsValid() || !r.HasPorts() {
				t.Errorf("no ports from %s", name)
			}
		})
	}
}

// BenchmarkDecode decodes each frame with ParseFrame and with gopacket's
// DecodingLayerParser, extracting the same fields.
func BenchmarkDecode(b *testing.B) {
	for _, name := range benchFrames {
		frame := loadFrame(b, name)
		b.Run(name+"/ParseFrame", func(b *testing.B) {
			b.ReportAllocs()
			var r packet.Record
			var f fields
			for b.Loop() {
				if err := packet.Parse(frame, packet.LinkEthernet, nil, &r); err != nil {
					b.Fatal(err)
				}
				f.fromRecord(&r)
			}
			sinkFields = f
		})
		b.Run(name+"/gopacket", func(b *testing.B) {
			b.ReportAllocs()
			d := newGopacketDecoder()
			var f fields
			for b.Loop() {
				if err := d.decode(frame, &f); err != nil {
					b.Fatal(err)
				}
			}
			sinkFields = f
		})
	}
}

var sinkFields fields
