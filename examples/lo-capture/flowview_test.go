package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// fakeTable is a flow table kept in a Go map as the kernel keeps its own,
// read as a FlowConn reads it: ReadFlows through a flow.Meter that deletes
// with lookup-and-delete, Table as it is.
type fakeTable struct {
	m     map[flow.Key]flow.Counters
	meter *flow.Meter
}

func (ft *fakeTable) count(k flow.Key, n int, t time.Time, flags packet.TCPFlags) {
	c := ft.m[k]
	c.Add(n, t, flags)
	ft.m[k] = c
}

func (ft *fakeTable) readFlows(now time.Time) []flow.Flow {
	for k, c := range ft.m {
		ft.meter.Observe(k, c)
	}
	return ft.meter.Expire(now, ft.del, nil)
}

func (ft *fakeTable) flush(now time.Time) []flow.Flow {
	for k, c := range ft.m {
		ft.meter.Observe(k, c)
	}
	return ft.meter.Flush(now, ft.del, nil)
}

func (ft *fakeTable) del(k flow.Key) (flow.Counters, bool) {
	c, ok := ft.m[k]
	delete(ft.m, k)
	return c, ok
}

func (ft *fakeTable) table() []sockfilter.FlowEntry {
	var es []sockfilter.FlowEntry
	for k, c := range ft.m {
		es = append(es, sockfilter.FlowEntry{Key: k, Counters: c})
	}
	return es
}

func udpKey(sport uint16) flow.Key {
	return flow.Key{Ifindex: 1, Direction: packet.DirectionHost, EtherType: 0x0800, IPProto: 17,
		Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.2"), SrcPort: sport, DstPort: 53}
}

// TestFlowAccountExact drives a flowAccount as captureFlows does — the
// table read for expiry every second, reported every few — over a
// simulated table with short timeouts, so that flows are exported while
// active, end idle, end with FIN and start again under the same key, and
// checks that every interval's report holds exactly the packets and bytes
// counted in it, and the totals all of them.
func TestFlowAccountExact(t *testing.T) {
	for seed := range uint64(20) {
		flowAccountExact(t, seed)
	}
}

func flowAccountExact(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	meter, err := flow.NewMeter(&flow.Config{ActiveTimeout: 3 * time.Second, IdleTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeTable{m: map[flow.Key]flow.Counters{}, meter: meter}
	now := time.Unix(1_700_000_000, 0)
	acc := newFlowAccount(now)
	type sum struct{ packets, bytes uint64 }
	want := map[flow.Key]sum{}  // this interval
	total := map[flow.Key]sum{} // the whole run
	check := func(rep *flowReport, want map[flow.Key]sum) {
		t.Helper()
		if t.Failed() {
			t.FailNow()
		}
		got := map[flow.Key]sum{}
		for _, r := range rep.Rows {
			if _, dup := got[r.Key]; dup {
				t.Fatalf("%v twice in a report", r.Key)
			}
			got[r.Key] = sum{r.Packets, r.Bytes}
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("seed %d: report %v–%v (total %v): %v has %+v, want %+v", seed, rep.Start, rep.End, rep.Total, k, got[k], w)
			}
		}
		for k, g := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("report %v: %v has %+v, want no row", rep.Start, k, g)
			}
		}
	}
	exported := map[flow.Key]uint64{}
	for tick := 1; tick <= 60; tick++ {
		// A tenth of a second at a time, packets of a few flows.
		for range 10 {
			now = now.Add(100 * time.Millisecond)
			for range rng.IntN(4) {
				// Flows 1 to 3 are steady, 4 to 6 come and go, 7
				// ends with FIN now and then.
				sport := uint16(1 + rng.IntN(7))
				if sport >= 4 && sport <= 6 && (tick/4)%3 != int(sport-4) {
					continue
				}
				k := udpKey(sport)
				var flags packet.TCPFlags
				if sport == 7 {
					k.IPProto = 6
					flags = packet.TCPAck
					if rng.IntN(6) == 0 {
						flags |= packet.TCPFin
					}
				}
				n := 40 + rng.IntN(1000)
				ft.count(k, n, now, flags)
				s := want[k]
				s.packets++
				s.bytes += uint64(n)
				want[k] = s
				s = total[k]
				s.packets++
				s.bytes += uint64(n)
				total[k] = s
			}
		}
		recs := ft.readFlows(now)
		for _, f := range recs {
			exported[f.Key] += f.Packets
		}
		acc.records(recs)
		if rng.IntN(3) == 0 {
			acc.live(ft.table())
			check(acc.endInterval(now), want)
			clear(want)
		}
	}
	acc.records(ft.flush(now))
	acc.flushed()
	check(acc.endInterval(now), want)
	check(acc.totals(now), total)
	for k, s := range total {
		if exported[k]+0 > s.packets {
			t.Errorf("%v: the Meter exported %d packets before the flush, of %d", k, exported[k], s.packets)
		}
	}
	if len(acc.entries) != 0 {
		t.Errorf("%d keys still have entries after the flush", len(acc.entries))
	}
}

func TestSortRows(t *testing.T) {
	rows := []flowRow{
		{Key: udpKey(1), Packets: 5, Bytes: 100},
		{Key: udpKey(2), Packets: 1, Bytes: 900},
		{Key: udpKey(3), Packets: 9, Bytes: 100},
		{Key: udpKey(4), Packets: 9, Bytes: 100},
	}
	sortRows(rows)
	var got []uint16
	for _, r := range rows {
		got = append(got, r.Key.SrcPort)
	}
	if want := []uint16{2, 3, 4, 1}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v (bytes, then packets, then key)", got, want)
	}
}

func TestFormatRate(t *testing.T) {
	for _, tc := range []struct {
		bytes uint64
		d     time.Duration
		want  string
	}{
		{0, time.Second, "0 b/s"},
		{100, time.Second, "800 b/s"},
		{125, time.Second, "1.00 kb/s"},
		{1500, 2 * time.Second, "6.00 kb/s"},
		{12_500, time.Second, "100 kb/s"},
		{1_000_000, time.Second, "8.00 Mb/s"},
		{125_000_000, 100 * time.Millisecond, "10.0 Gb/s"},
		{100, 0, "0 b/s"},
	} {
		if got := formatRate(rate(tc.bytes, tc.d)); got != tc.want {
			t.Errorf("%d bytes in %v: %q, want %q", tc.bytes, tc.d, got, tc.want)
		}
	}
}

func testReport() *flowReport {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	icmp := flow.Key{Ifindex: 1, EtherType: 0x0800, IPProto: 1, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), DstPort: 8 << 8}
	tcp := flow.Key{Ifindex: 1, Direction: packet.DirectionOutgoing, EtherType: 0x86dd, IPProto: 6, Src: netip.MustParseAddr("::1"), Dst: netip.MustParseAddr("::1"), SrcPort: 40000, DstPort: 80, VLAN: 5}
	arp := flow.Key{Ifindex: 2, EtherType: 0x0806}
	rep := &flowReport{Start: t0, End: t0.Add(2 * time.Second)}
	rep.add(flowRow{Key: tcp, Packets: 10, Bytes: 2500, Start: t0.Add(time.Millisecond), End: t0.Add(time.Second), TCPFlags: packet.TCPSyn | packet.TCPAck})
	rep.add(flowRow{Key: icmp, Packets: 2, Bytes: 196, Start: t0, End: t0.Add(time.Second)})
	rep.add(flowRow{Key: arp, Packets: 1, Bytes: 42, Start: t0, End: t0})
	sortRows(rep.Rows)
	return rep
}

// TestFlowJSON checks -flows -json's lines: JSON, one object a flow, with
// the field names fixed by the usage and the README.
func TestFlowJSON(t *testing.T) {
	rep := testReport()
	var buf bytes.Buffer
	v := &flowView{w: &buf, json: true, iface: "lo"}
	if err := v.show(rep); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	var objs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		objs = append(objs, m)
		for _, f := range []string{"report", "src", "sport", "dst", "dport", "proto", "packets", "bytes", "start", "end", "bps", "ifindex", "dir", "ethertype"} {
			if _, ok := m[f]; !ok {
				t.Errorf("no %q in %s", f, l)
			}
		}
		for _, f := range []string{"start", "end"} {
			if _, err := time.Parse(time.RFC3339Nano, m[f].(string)); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
	tcp, icmp, arp := objs[0], objs[1], objs[2]
	check := func(m map[string]any, field string, want any) {
		t.Helper()
		if got := m[field]; got != want {
			t.Errorf("%s = %v (%T), want %v", field, got, got, want)
		}
	}
	check(tcp, "report", "interval")
	check(tcp, "proto", "TCP")
	check(tcp, "src", "::1")
	check(tcp, "sport", 40000.0)
	check(tcp, "dport", 80.0)
	check(tcp, "packets", 10.0)
	check(tcp, "bytes", 2500.0)
	check(tcp, "bps", 10000.0)
	check(tcp, "tcp_flags", "S.")
	check(tcp, "vlan", 5.0)
	check(tcp, "dir", "outgoing")
	check(tcp, "start", "2026-01-02T03:04:05.001000000Z")
	check(icmp, "proto", "ICMP")
	check(icmp, "sport", nil)
	check(icmp, "dport", nil)
	check(icmp, "icmp_type", 8.0)
	check(icmp, "icmp_code", 0.0)
	check(arp, "proto", "ARP")
	check(arp, "src", nil)
	check(arp, "ethertype", 2054.0)
	rep.Total = true
	buf.Reset()
	v.show(rep)
	if !strings.HasPrefix(buf.String(), `{"report":"total",`) {
		t.Errorf("totals: %s", buf.String())
	}
}

// TestFlowTable checks the table: the columns, the rows largest first,
// numbers aligned right.
func TestFlowTable(t *testing.T) {
	var buf bytes.Buffer
	v := &flowView{w: &buf, iface: "lo"}
	if err := v.show(testReport()); err != nil {
		t.Fatal(err)
	}
	want := `flows on lo, 2026-01-02T03:04:05Z to 2026-01-02T03:04:07Z, interval 2s: 3 flows, 13 packets, 2738 bytes, 11.0 kb/s
Proto  Source    S-Port  Destination  D-Port  Packets  Bytes       Rate
TCP    ::1       40000   ::1          80           10   2500  10.0 kb/s
ICMP   10.0.0.1  -       10.0.0.2     8/0           2    196    784 b/s
ARP    -         -       -            -             1     42    168 b/s

`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestFlowViewTerminal checks the redraw on a terminal: each interval's
// report clears the screen and starts at the top left corner, and holds
// no more flows than the terminal has rows for; the totals are appended,
// whole. Piped, nothing is cleared.
func TestFlowViewTerminal(t *testing.T) {
	var buf bytes.Buffer
	rows, cols := 5, 60
	v := &flowView{w: &buf, tty: true, size: func() (int, int) { return rows, cols }, iface: "lo"}
	rep := testReport()
	for range 2 {
		if err := v.show(rep); err != nil {
			t.Fatal(err)
		}
	}
	screens := strings.Split(buf.String(), clearHome)
	if len(screens) != 3 || screens[0] != "" {
		t.Fatalf("want two screens, each after %q: %q", clearHome, buf.String())
	}
	for _, s := range screens[1:] {
		lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		if len(lines) > rows {
			t.Errorf("%d lines on a terminal of %d rows:\n%s", len(lines), rows, s)
		}
		for _, l := range lines {
			if len(l) > cols {
				t.Errorf("a line of %d bytes on a terminal of %d columns: %q", len(l), cols, l)
			}
		}
		if !strings.HasPrefix(lines[0], "flows on lo, 2026-01-02T03:04:05Z to") {
			t.Errorf("the title, cut: %q", lines[0])
		}
		if !strings.Contains(s, "... and 1 more flow\n") || !strings.Contains(s, "TCP ") || strings.Contains(s, "ARP") {
			t.Errorf("want the two largest flows and a line for the third:\n%s", s)
		}
	}
	buf.Reset()
	rep.Total = true
	v.show(rep)
	if strings.Contains(buf.String(), "\x1b") || !strings.Contains(buf.String(), "ARP") {
		t.Errorf("totals on a terminal: want appended, whole:\n%q", buf.String())
	}
	buf.Reset()
	v = &flowView{w: &buf, iface: "lo"}
	v.show(testReport())
	v.show(testReport())
	if strings.Contains(buf.String(), "\x1b") || strings.Count(buf.String(), "flows on lo") != 2 {
		t.Errorf("piped: want two reports appended, no escapes:\n%q", buf.String())
	}
}
