package flow

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The keys of the meter tests.
var (
	tcpKey = Key{Ifindex: 1, Direction: packet.DirectionOutgoing, EtherType: 0x0800, IPProto: 6,
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), SrcPort: 40000, DstPort: 80}
	udpKey = Key{Ifindex: 2, Direction: packet.DirectionHost, EtherType: 0x86dd, IPProto: 17,
		Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"), SrcPort: 5353, DstPort: 53, VLAN: 7}
	icmpKey = Key{Ifindex: 1, Direction: packet.DirectionHost, EtherType: 0x0800, IPProto: 1,
		Src: netip.MustParseAddr("192.0.2.2"), Dst: netip.MustParseAddr("192.0.2.1"), DstPort: 8 << 8}
)

// t0 is the time the meter tests start at.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// sec returns t0 plus s seconds.
func sec(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// An op is one step of a meter test, at a whole second since t0.
type op struct {
	at    int
	kind  opKind
	key   Key
	n     int // packets, for opPacket
	size  int // bytes each
	flags packet.TCPFlags
}

type opKind uint8

const (
	opPacket   opKind = iota // the kernel counts n packets of key
	opRead                   // a reading of the whole table, then Expire
	opReadSkip               // a reading that misses key, then Expire
	opEvict                  // the kernel's LRU drops key's entry
	opFlush                  // Meter.Flush
)

// pkts is n packets of size bytes of key at second at.
func pkts(at int, key Key, n, size int, flags packet.TCPFlags) op {
	return op{at: at, kind: opPacket, key: key, n: n, size: size, flags: flags}
}

// reads is a reading every second from first to last.
func reads(first, last int) []op {
	var ops []op
	for s := first; s <= last; s++ {
		ops = append(ops, op{at: s, kind: opRead})
	}
	return ops
}

// deleteMode says what the table's delete function does.
type deleteMode uint8

const (
	deleteLookup    deleteMode = iota // BPF_MAP_LOOKUP_AND_DELETE_ELEM: returns the counters
	deletePlain                       // BPF_MAP_DELETE_ELEM: deletes, returns false
	deleteFails                       // deletes nothing, returns false
	deleteRace                        // the kernel counts 2 more 50-byte packets, then lookup and delete
	deleteRacePlain                   // the same with a plain delete: the 2 packets are lost
	deleteRecreate                    // the LRU evicts the entry, a 50-byte packet creates it again, then lookup and delete
	numDeleteModes
)

// sim is a flow table as the kernel keeps it, read by a Meter.
type sim struct {
	t     *testing.T
	table map[Key]Counters
	m     *Meter
	mode  deleteMode
	now   time.Time
	flows []Flow
	fed   uint64 // packets counted by the table
}

func (s *sim) count(key Key, n, size int, flags packet.TCPFlags, at time.Time) {
	c := s.table[key]
	for range n {
		c.Add(size, at, flags)
	}
	s.table[key] = c
	s.fed += uint64(n)
}

func (s *sim) del(key Key) (Counters, bool) {
	if _, ok := s.table[key]; !ok {
		return Counters{}, false
	}
	switch s.mode {
	case deleteFails:
		return Counters{}, false
	case deleteRace, deleteRacePlain:
		s.count(key, 2, 50, 0, s.now)
	case deleteRecreate:
		delete(s.table, key)
		s.count(key, 1, 50, 0, s.now)
	}
	c := s.table[key]
	delete(s.table, key)
	return c, s.mode != deletePlain && s.mode != deleteRacePlain
}

func (s *sim) run(o op) {
	s.now = sec(o.at)
	switch o.kind {
	case opPacket:
		s.count(o.key, o.n, o.size, o.flags, s.now)
	case opRead, opReadSkip:
		for k, c := range s.table {
			if o.kind == opReadSkip && k == o.key {
				continue
			}
			s.m.Observe(k, c)
		}
		s.flows = s.m.Expire(s.now, s.del, s.flows)
	case opEvict:
		delete(s.table, o.key)
	case opFlush:
		s.flows = s.m.Flush(s.now, s.del, s.flows)
	}
}

// rec is an expected record: times in seconds since t0.
type rec struct {
	key            Key
	packets, bytes uint64
	flags          packet.TCPFlags
	start, end     int
	reason         EndReason
}

func (r rec) flow() Flow {
	return Flow{Key: r.key, Packets: r.packets, Bytes: r.bytes, TCPFlags: r.flags,
		Start: sec(r.start), End: sec(r.end), EndReason: r.reason}
}

func flowLine(f Flow) string {
	return fmt.Sprintf("%v: %d packets %d bytes %v %s..%s %v", f.Key, f.Packets, f.Bytes, f.TCPFlags,
		f.Start.Format(time.TimeOnly), f.End.Format(time.TimeOnly), f.EndReason)
}

// sortFlows orders flows by End, then Key: a Meter's order within one
// Expire is that of a Go map.
func sortFlows(flows []Flow) {
	slices.SortStableFunc(flows, func(a, b Flow) int {
		return cmp.Or(a.End.Compare(b.End), strings.Compare(a.Key.String(), b.Key.String()))
	})
}

func TestMeter(t *testing.T) {
	t.Parallel()
	const syn, ack, fin = packet.TCPSyn, packet.TCPAck, packet.TCPFin | packet.TCPAck
	var everySecond []op // one 100-byte packet a second, 0 to 130 s
	for s := 0; s <= 130; s++ {
		everySecond = append(everySecond, pkts(s, udpKey, 1, 100, 0))
	}
	tests := []struct {
		name  string
		mode  deleteMode
		ops   []op
		want  []rec
		stats Stats
	}{{
		name: "idle timeout",
		ops:  append([]op{pkts(0, udpKey, 3, 100, 0), pkts(2, udpKey, 2, 60, 0)}, reads(1, 20)...),
		want: []rec{{udpKey, 5, 420, 0, 0, 2, EndIdle}},
	}, {
		name: "active timeout every 60 s, then idle",
		ops:  append(everySecond, reads(0, 150)...),
		want: []rec{
			{udpKey, 61, 6100, 0, 0, 60, EndActive},
			{udpKey, 60, 6000, 0, 60, 120, EndActive},
			{udpKey, 10, 1000, 0, 120, 130, EndIdle},
		},
	}, {
		name: "TCP FIN ends the flow; the last ACK makes a new one",
		ops: append([]op{
			pkts(0, tcpKey, 1, 74, syn), pkts(1, tcpKey, 5, 1000, ack), pkts(3, tcpKey, 1, 66, fin),
			pkts(4, tcpKey, 1, 66, ack),
		}, reads(1, 20)...),
		want: []rec{
			{tcpKey, 7, 74 + 5000 + 66, syn | fin, 0, 3, EndOfFlow},
			{tcpKey, 1, 66, ack, 4, 4, EndIdle},
		},
	}, {
		name: "evicted: what the last reading showed, lack of resources",
		ops: []op{
			pkts(0, tcpKey, 4, 100, ack), {at: 1, kind: opRead},
			pkts(2, tcpKey, 3, 100, ack), {at: 3, kind: opEvict, key: tcpKey}, {at: 4, kind: opRead},
		},
		want:  []rec{{tcpKey, 4, 400, ack, 0, 0, EndLackOfResources}},
		stats: Stats{Evicted: 1},
	}, {
		name: "evicted and created again between readings",
		ops: append([]op{
			pkts(0, icmpKey, 10, 98, 0), {at: 1, kind: opRead},
			{at: 2, kind: opEvict, key: icmpKey}, pkts(2, icmpKey, 2, 98, 0),
		}, reads(3, 20)...),
		want: []rec{
			{icmpKey, 10, 980, 0, 0, 0, EndLackOfResources},
			{icmpKey, 2, 196, 0, 2, 2, EndIdle},
		},
		stats: Stats{Evicted: 1},
	}, {
		name: "lookup and delete returns the packets counted after the reading",
		mode: deleteRace,
		ops:  append([]op{pkts(0, udpKey, 1, 100, 0)}, reads(1, 16)...),
		want: []rec{{udpKey, 3, 200, 0, 0, 15, EndIdle}},
	}, {
		name: "a plain delete loses them",
		mode: deleteRacePlain,
		ops:  append([]op{pkts(0, udpKey, 1, 100, 0)}, reads(1, 16)...),
		want: []rec{{udpKey, 1, 100, 0, 0, 0, EndIdle}},
	}, {
		name: "evicted and created again between the reading and the delete",
		mode: deleteRecreate,
		ops:  append([]op{pkts(0, udpKey, 1, 100, 0)}, reads(1, 16)...),
		want: []rec{
			{udpKey, 1, 100, 0, 0, 0, EndLackOfResources},
			{udpKey, 1, 50, 0, 15, 15, EndIdle},
		},
		stats: Stats{Evicted: 1},
	}, {
		name: "a failed delete counts nothing twice",
		mode: deleteFails,
		ops:  append(append([]op{pkts(0, udpKey, 1, 100, 0)}, reads(1, 19)...), append([]op{pkts(20, udpKey, 1, 40, 0)}, reads(20, 40)...)...),
		want: []rec{
			{udpKey, 1, 100, 0, 0, 0, EndIdle},
			{udpKey, 1, 40, 0, 0, 20, EndIdle}, // Start is the previous record's End
		},
		stats: Stats{Revived: 10},
	}, {
		name: "a reading that misses an entry",
		ops: append([]op{
			pkts(0, udpKey, 2, 100, 0), {at: 1, kind: opRead}, {at: 2, kind: opReadSkip, key: udpKey},
			pkts(3, udpKey, 1, 100, 0),
		}, reads(4, 20)...),
		want: []rec{
			{udpKey, 2, 200, 0, 0, 0, EndLackOfResources},
			{udpKey, 1, 100, 0, 0, 3, EndIdle},
		},
		stats: Stats{Evicted: 1, Revived: 1},
	}, {
		name: "flush: forced end",
		ops: []op{
			pkts(0, udpKey, 2, 100, 0), pkts(0, icmpKey, 1, 98, 0), {at: 1, kind: opRead},
			pkts(2, udpKey, 1, 100, 0), {at: 2, kind: opFlush},
		},
		want: []rec{
			{icmpKey, 1, 98, 0, 0, 0, EndForced},
			{udpKey, 3, 300, 0, 0, 2, EndForced},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMeter(nil)
			if err != nil {
				t.Fatal(err)
			}
			s := &sim{t: t, table: map[Key]Counters{}, m: m, mode: tt.mode}
			ops := slices.Clone(tt.ops)
			slices.SortStableFunc(ops, func(a, b op) int { return cmp.Compare(a.at, b.at) })
			for _, o := range ops {
				s.run(o)
			}
			sortFlows(s.flows)
			var got, want []string
			var wantStats Stats
			for _, f := range s.flows {
				got = append(got, flowLine(f))
			}
			for _, r := range tt.want {
				want = append(want, flowLine(r.flow()))
				wantStats.Flows++
				wantStats.Packets += r.packets
				wantStats.Bytes += r.bytes
			}
			if !slices.Equal(got, want) {
				t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			wantStats.Evicted, wantStats.Revived = tt.stats.Evicted, tt.stats.Revived
			if st := m.Stats(); st != wantStats {
				t.Errorf("Stats = %+v, want %+v", st, wantStats)
			}
		})
	}
}

// BenchmarkMeterReading measures a reading of a table of 10,000 flows:
// an Observe for each and an Expire, per entry.
func BenchmarkMeterReading(b *testing.B) {
	m, err := NewMeter(nil)
	if err != nil {
		b.Fatal(err)
	}
	const n = 10000
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = udpKey
		keys[i].SrcPort = uint16(i)
		keys[i].Src = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	c := Counters{Packets: 1, Bytes: 100, First: t0, Last: t0}
	now := t0
	flows := make([]Flow, 0, n)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		c.Packets++
		c.Bytes += 100
		c.Last = now
		for _, k := range keys {
			m.Observe(k, c)
		}
		flows = m.Expire(now, nil, flows[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
}
