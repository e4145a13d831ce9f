package ipfix_test

import (
	"bytes"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/ipfix"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// An Exporter writes flow records as IPFIX messages — here to a buffer, as
// to a file — and a Decoder reads them back.
func Example() {
	now := time.Date(2024, 5, 1, 12, 0, 5, 0, time.UTC)
	var file bytes.Buffer
	exp, err := ipfix.NewExporter(&file, &ipfix.Config{
		ObservationDomain: 1,
		Now:               func() time.Time { return now },
	})
	if err != nil {
		log.Fatal(err)
	}
	flows := []flow.Flow{{
		Key: flow.Key{Ifindex: 1, Direction: packet.DirectionOutgoing, EtherType: 0x0800, IPProto: 6,
			Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.80"), SrcPort: 40001, DstPort: 80},
		Packets: 42, Bytes: 60700, TCPFlags: packet.TCPSyn | packet.TCPAck | packet.TCPFin,
		Start: now.Add(-4 * time.Second), End: now.Add(-time.Second), EndReason: flow.EndOfFlow,
	}, {
		Key: flow.Key{Ifindex: 1, Direction: packet.DirectionHost, EtherType: 0x86dd, IPProto: 58,
			Src: netip.MustParseAddr("2001:db8::2"), Dst: netip.MustParseAddr("2001:db8::1"), DstPort: 129 << 8},
		Packets: 1, Bytes: 118, Start: now.Add(-20 * time.Second), End: now.Add(-20 * time.Second), EndReason: flow.EndIdle,
	}}
	for i := range flows {
		if err := exp.Add(&flows[i]); err != nil {
			log.Fatal(err)
		}
	}
	if err := exp.Flush(); err != nil {
		log.Fatal(err)
	}

	// The message header: version 10, length 354 (16 + the template set
	// of 184 + an IPv4 data set of 4 + 61 + an IPv6 one of 4 + 85),
	// export time, sequence number 0, observation domain 1.
	b := file.Bytes()
	fmt.Printf("% x ...\n", b[:16])
	var m ipfix.Message
	if _, err := ipfix.NewDecoder().Decode(b, &m); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d octets, exported %v, sequence %d, domain %d\n", len(b), m.ExportTime, m.Sequence, m.ObservationDomain)
	for _, t := range m.Templates {
		fmt.Printf("template %d: %d fields, %v ...\n", t.ID, len(t.Fields), t.Fields[0].Element)
	}
	for _, f := range m.Flows {
		fmt.Printf("%v: %d packets, %d bytes, %v, %s\n", f.Key, f.Packets, f.Bytes, f.Duration(), f.EndReason)
	}
	// Output:
	// 00 0a 01 62 66 32 2e c5 00 00 00 00 00 00 00 01 ...
	// 354 octets, exported 2024-05-01 12:00:05 +0000 UTC, sequence 0, domain 1
	// template 256: 16 fields, sourceIPv4Address ...
	// template 257: 16 fields, sourceIPv6Address ...
	// template 258: 10 fields, ethernetType ...
	// if 1 outgoing TCP 192.0.2.1:40001 > 192.0.2.80:80: 42 packets, 60700 bytes, 3s, end of flow detected
	// if 1 host ICMPv6 2001:db8::2 > 2001:db8::1 type 129 code 0: 1 packets, 118 bytes, 0s, idle timeout
}
