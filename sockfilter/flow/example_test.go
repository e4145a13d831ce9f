package flow_test

import (
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// A Meter reads a flow table — here a Go map standing in for the kernel's
// — every second, and exports each flow when its active or idle timeout
// comes, or when TCP says it ended.
func ExampleMeter() {
	table := map[flow.Key]flow.Counters{}
	del := func(k flow.Key) (flow.Counters, bool) { // BPF_MAP_LOOKUP_AND_DELETE_ELEM
		c, ok := table[k]
		delete(table, k)
		return c, ok
	}
	dns := flow.Key{Ifindex: 1, Direction: packet.DirectionOutgoing, EtherType: 0x0800, IPProto: 17,
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.53"), SrcPort: 40000, DstPort: 53}
	web := flow.Key{Ifindex: 1, Direction: packet.DirectionOutgoing, EtherType: 0x0800, IPProto: 6,
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.80"), SrcPort: 40001, DstPort: 80}

	m, err := flow.NewMeter(&flow.Config{ActiveTimeout: 30 * time.Second, IdleTimeout: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var flows []flow.Flow
	for s := range 50 {
		now := start.Add(time.Duration(s) * time.Second)
		// The kernel counts: a DNS query at 0 s, a download from 0 to 40 s.
		count := func(k flow.Key, size int, flags packet.TCPFlags) {
			c := table[k]
			c.Add(size, now, flags)
			table[k] = c
		}
		if s == 0 {
			count(dns, 80, 0)
			count(web, 74, packet.TCPSyn)
		}
		if s > 0 && s <= 40 {
			count(web, 1514, packet.TCPAck)
		}
		if s == 40 {
			count(web, 66, packet.TCPFin|packet.TCPAck)
		}
		// A reading.
		for k, c := range table {
			m.Observe(k, c)
		}
		for _, f := range m.Expire(now, del, flows[:0]) {
			fmt.Printf("%2ds: %v: %d packets, %d bytes, %s to %s, %v\n", s, f.Key, f.Packets, f.Bytes,
				f.Start.Format("05s"), f.End.Format("05s"), f.EndReason)
		}
	}
	// Output:
	// 10s: if 1 outgoing UDP 192.0.2.1:40000 > 192.0.2.53:53: 1 packets, 80 bytes, 00s to 00s, idle timeout
	// 30s: if 1 outgoing TCP 192.0.2.1:40001 > 192.0.2.80:80: 31 packets, 45494 bytes, 00s to 30s, active timeout
	// 40s: if 1 outgoing TCP 192.0.2.1:40001 > 192.0.2.80:80: 11 packets, 15206 bytes, 30s to 40s, end of flow detected
}
