package ipfix

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// testStart is when the test flows start.
var testStart = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// at returns testStart plus n milliseconds.
func at(n int) time.Time { return testStart.Add(time.Duration(n) * time.Millisecond) }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// testFlows are flows of every kind the templates carry: IPv4 and IPv6,
// TCP, UDP, ICMP and ICMPv6, a flow that is not IP, VLANs, both
// directions and every end reason.
func testFlows() []flow.Flow {
	const out, in = packet.DirectionOutgoing, packet.DirectionHost
	return []flow.Flow{{
		Key: flow.Key{Ifindex: 1, Direction: out, EtherType: 0x0800, IPProto: 6,
			Src: addr("192.0.2.1"), Dst: addr("192.0.2.2"), SrcPort: 40000, DstPort: 80},
		Packets: 10, Bytes: 5000, TCPFlags: packet.TCPSyn | packet.TCPAck | packet.TCPFin,
		Start: at(0), End: at(1500), EndReason: flow.EndOfFlow,
	}, {
		Key: flow.Key{Ifindex: 1, Direction: in, EtherType: 0x0800, IPProto: 17,
			Src: addr("192.0.2.53"), Dst: addr("192.0.2.1"), SrcPort: 53, DstPort: 40001, VLAN: 100},
		Packets: 1, Bytes: 120, Start: at(20), End: at(20), EndReason: flow.EndIdle,
	}, {
		Key: flow.Key{Ifindex: 2, Direction: in, EtherType: 0x0800, IPProto: 1,
			Src: addr("198.51.100.7"), Dst: addr("192.0.2.1"), DstPort: 8 << 8},
		Packets: 3, Bytes: 294, Start: at(1000), End: at(3000), EndReason: flow.EndActive,
	}, {
		Key: flow.Key{Ifindex: 1, Direction: out, EtherType: 0x86dd, IPProto: 6,
			Src: addr("2001:db8::1"), Dst: addr("2001:db8::2"), SrcPort: 443, DstPort: 50000},
		Packets: 20, Bytes: 30000, TCPFlags: packet.TCPAck | packet.TCPPsh | packet.TCPAe,
		Start: at(5), End: at(61005), EndReason: flow.EndForced,
	}, {
		Key: flow.Key{Ifindex: 3, Direction: packet.DirectionMulticast, EtherType: 0x86dd, IPProto: 17,
			Src: addr("fe80::1"), Dst: addr("ff02::fb"), SrcPort: 5353, DstPort: 5353, VLAN: 7},
		Packets: 4, Bytes: 400, Start: at(100), End: at(200), EndReason: flow.EndLackOfResources,
	}, {
		Key: flow.Key{Ifindex: 1, Direction: in, EtherType: 0x86dd, IPProto: 58,
			Src: addr("2001:db8::2"), Dst: addr("2001:db8::1"), DstPort: 129 << 8},
		Packets: 1, Bytes: 118, Start: at(7), End: at(7), EndReason: flow.EndIdle,
	}, {
		Key:     flow.Key{Ifindex: 3, Direction: packet.DirectionBroadcast, EtherType: 0x0806},
		Packets: 2, Bytes: 120, Start: at(0), End: at(999), EndReason: flow.EndIdle,
	}}
}

// sent returns what a Decoder makes of f's record: IPFIX says ingress or
// egress, not host, broadcast or multicast; times are in milliseconds;
// ICMP has no source port; flows that are not IP have no addresses,
// ports, protocol or TCP flags.
func sent(f flow.Flow) flow.Flow {
	k := &f.Key
	if k.Direction != packet.DirectionOutgoing {
		k.Direction = packet.DirectionHost
	}
	switch {
	case !k.IsIP():
		k.IPProto, k.Src, k.Dst, k.SrcPort, k.DstPort = 0, netip.Addr{}, netip.Addr{}, 0, 0
		f.TCPFlags = 0
	case k.EtherType == 0x0800:
		k.Src, k.Dst = unmap4(k.Src), unmap4(k.Dst)
	default:
		k.Src, k.Dst = valid6(k.Src), valid6(k.Dst)
	}
	if k.IsICMP() {
		k.SrcPort = 0
	}
	k.VLAN &= 0x0fff
	f.Start = time.UnixMilli(millisOf(f.Start)).UTC()
	f.End = time.UnixMilli(millisOf(f.End)).UTC()
	return f
}

func millisOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func unmap4(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return netip.IPv4Unspecified()
	}
	return a.Unmap()
}

func valid6(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return netip.IPv6Unspecified()
	}
	return a
}

// flowLine returns f as one line of text, for comparisons.
func flowLine(f flow.Flow) string {
	return fmt.Sprintf("%v: %d packets %d bytes %v %s..%s %v", f.Key, f.Packets, f.Bytes, f.TCPFlags,
		f.Start.UTC().Format(time.RFC3339Nano), f.End.UTC().Format(time.RFC3339Nano), f.EndReason)
}

func flowLines(flows []flow.Flow) string {
	var b strings.Builder
	for _, f := range flows {
		b.WriteString(flowLine(f))
		b.WriteByte('\n')
	}
	return b.String()
}

// datagrams is an io.Writer that keeps each Write as one datagram.
type datagrams struct {
	msgs [][]byte
	fail error // returned by Write when set
}

func (d *datagrams) Write(b []byte) (int, error) {
	if d.fail != nil {
		return 0, d.fail
	}
	d.msgs = append(d.msgs, bytes.Clone(b))
	return len(b), nil
}

// decodeAll decodes every message in msgs with one Decoder.
func decodeAll(t testing.TB, msgs [][]byte) ([]Message, []flow.Flow) {
	t.Helper()
	d := NewDecoder()
	var all []Message
	var flows []flow.Flow
	for i, b := range msgs {
		var m Message
		n, err := d.Decode(b, &m)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if n != len(b) {
			t.Fatalf("message %d: Decode took %d of %d octets", i, n, len(b))
		}
		flows = append(flows, m.Flows...)
		all = append(all, m)
	}
	return all, flows
}

// splitMessages splits a stream into its messages by their Length fields.
func splitMessages(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var msgs [][]byte
	for len(b) > 0 {
		if len(b) < messageHeaderLen {
			t.Fatalf("%d octets left after the last message", len(b))
		}
		n := int(b[2])<<8 | int(b[3])
		if n < messageHeaderLen || n > len(b) {
			t.Fatalf("message length %d with %d octets left", n, len(b))
		}
		msgs = append(msgs, b[:n])
		b = b[n:]
	}
	return msgs
}
