package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// -flows' reports are made from two views of the kernel's flow table: the
// records ReadFlows and Flush return (deltas since a flow's previous
// record, the last one holding the packets up to the entry's deletion),
// and Table's live entries (cumulative since the entry was made). A
// flowAccount turns them into the packets and bytes each flow had in each
// interval, every packet counted in exactly one interval: for each table
// entry (a key and its First) it keeps what earlier intervals were given
// (base) and what its records hold so far (recs). At an interval's end a
// live entry gives its cumulative counters less base; an entry whose last
// record came (it ended: idle, FIN or RST, evicted, forced) gives its
// records' sum less base.

// counts are packets and bytes.
type counts struct{ packets, bytes uint64 }

// sub returns c - d, or zero where d is more (a flow deleted without its
// last reading, before Linux 5.14, lost packets that base counted).
func (c counts) sub(d counts) counts {
	if d.packets > c.packets || d.bytes > c.bytes {
		return counts{}
	}
	return counts{c.packets - d.packets, c.bytes - d.bytes}
}

// flowEntry is what a flowAccount keeps of one table entry.
type flowEntry struct {
	first time.Time
	base  counts // given to earlier intervals
	recs  counts // in the entry's records so far
	// lastEnd is the End of the entry's latest record, if records.
	lastEnd time.Time
	records bool
	// gone is set when a reading of the table did not show the entry:
	// it was deleted after a record of no packets (which the Meter does
	// not export) or evicted, and is forgotten at the next reading.
	gone bool
}

// flowRow is one flow's line of a report.
type flowRow struct {
	Key            flow.Key
	Packets, Bytes uint64
	Start, End     time.Time
	TCPFlags       packet.TCPFlags
}

// flowReport is one interval's flows, or the totals.
type flowReport struct {
	Total      bool // the totals of the whole capture
	Start, End time.Time
	Rows       []flowRow // largest first (sortRows)
	Packets    uint64
	Bytes      uint64
}

// flowAccount accumulates the intervals' flows; see above.
type flowAccount struct {
	entries map[flow.Key][]*flowEntry // by First, oldest first
	cur     map[flow.Key]*flowRow     // the interval in progress
	total   map[flow.Key]*flowRow
	start   time.Time // the interval's
	begin   time.Time // the capture's
}

func newFlowAccount(now time.Time) *flowAccount {
	return &flowAccount{
		entries: map[flow.Key][]*flowEntry{},
		cur:     map[flow.Key]*flowRow{},
		total:   map[flow.Key]*flowRow{},
		start:   now,
		begin:   now,
	}
}

// entry returns the entry a record belongs to. A record's Start is its
// entry's First if it is the entry's first record, and otherwise the End
// of the entry's previous record: the entry whose First or last record's
// End is the record's Start. A record of an entry not seen before makes
// it.
func (a *flowAccount) entry(f *flow.Flow) *flowEntry {
	es := a.entries[f.Key]
	for _, e := range slices.Backward(es) {
		if x := e; x.first.Equal(f.Start) || (x.records && x.lastEnd.Equal(f.Start)) {
			return x
		}
	}
	e := &flowEntry{first: f.Start}
	a.entries[f.Key] = append(es, e)
	return e
}

// records takes the records of a ReadFlows or Flush.
func (a *flowAccount) records(flows []flow.Flow) {
	for i := range flows {
		f := &flows[i]
		e := a.entry(f)
		e.recs.packets += f.Packets
		e.recs.bytes += f.Bytes
		e.lastEnd, e.records = f.End, true
		if f.EndReason == flow.EndActive {
			continue // the entry goes on; Table shows it
		}
		a.add(f.Key, e.recs.sub(e.base), later(e.first, a.start), f.End, f.TCPFlags)
		a.remove(f.Key, func(x *flowEntry) bool { return x == e })
	}
}

// remove removes key's entries for which drop is true.
func (a *flowAccount) remove(key flow.Key, drop func(*flowEntry) bool) {
	es := slices.DeleteFunc(a.entries[key], drop)
	if len(es) == 0 {
		delete(a.entries, key)
	} else {
		a.entries[key] = es
	}
}

// live takes the table's entries as Table read them: the whole table.
func (a *flowAccount) live(entries []sockfilter.FlowEntry) {
	seen := make(map[*flowEntry]bool, len(entries))
	for i := range entries {
		t := &entries[i]
		var e *flowEntry
		for _, x := range a.entries[t.Key] {
			if x.first.Equal(t.First) {
				e = x
				break
			}
		}
		if e == nil {
			e = &flowEntry{first: t.First}
			a.entries[t.Key] = append(a.entries[t.Key], e)
		}
		seen[e] = true
		now := counts{t.Packets, t.Bytes}
		a.add(t.Key, now.sub(e.base), later(e.first, a.start), t.Last, t.TCPFlags)
		e.base = counts{max(now.packets, e.base.packets), max(now.bytes, e.base.bytes)}
	}
	a.sweep(func(x *flowEntry) bool { return seen[x] })
}

// sweep ends the entries a reading did not show (live is false for
// them). Such an entry was deleted, its packets all in its records, if
// its last record ended it; after records of no packets, which the Meter
// does not export, the interval gets what its records hold beyond base.
// An entry evicted may still have a record to come, at the next reading:
// it is kept until then.
func (a *flowAccount) sweep(live func(*flowEntry) bool) {
	for key := range a.entries {
		a.remove(key, func(x *flowEntry) bool {
			if live(x) {
				return false
			}
			a.add(key, x.recs.sub(x.base), later(x.first, a.start), x.lastEnd, 0)
			x.base = counts{max(x.recs.packets, x.base.packets), max(x.recs.bytes, x.base.bytes)}
			if x.gone {
				return true
			}
			x.gone = true
			return false
		})
	}
}

// flushed ends every entry after the table's Flush: the table is empty.
func (a *flowAccount) flushed() {
	a.sweep(func(*flowEntry) bool { return false })
	clear(a.entries)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// add counts d in key's row of the interval.
func (a *flowAccount) add(key flow.Key, d counts, start, end time.Time, flags packet.TCPFlags) {
	if d.packets == 0 && d.bytes == 0 {
		return
	}
	merge(a.cur, flowRow{Key: key, Packets: d.packets, Bytes: d.bytes, Start: start, End: end, TCPFlags: flags})
}

// merge adds r to its key's row in rows.
func merge(rows map[flow.Key]*flowRow, r flowRow) {
	c := rows[r.Key]
	if c == nil {
		rows[r.Key] = &r
		return
	}
	c.Packets += r.Packets
	c.Bytes += r.Bytes
	c.TCPFlags |= r.TCPFlags
	if r.Start.Before(c.Start) {
		c.Start = r.Start
	}
	if r.End.After(c.End) {
		c.End = r.End
	}
}

// endInterval ends the interval in progress at now and returns its
// report; the next interval starts at now.
func (a *flowAccount) endInterval(now time.Time) *flowReport {
	rep := &flowReport{Start: a.start, End: now}
	for _, r := range a.cur {
		rep.add(*r)
		merge(a.total, *r)
	}
	clear(a.cur)
	a.start = now
	sortRows(rep.Rows)
	return rep
}

// totals returns the report of every interval so far, up to now.
func (a *flowAccount) totals(now time.Time) *flowReport {
	rep := &flowReport{Total: true, Start: a.begin, End: now}
	for _, r := range a.total {
		rep.add(*r)
	}
	sortRows(rep.Rows)
	return rep
}

func (rep *flowReport) add(r flowRow) {
	rep.Rows = append(rep.Rows, r)
	rep.Packets += r.Packets
	rep.Bytes += r.Bytes
}

// sortRows sorts the rows largest first: by bytes, then packets, then by
// key, so that equal flows keep one order.
func sortRows(rows []flowRow) {
	slices.SortFunc(rows, func(a, b flowRow) int {
		if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Packets, a.Packets); c != 0 {
			return c
		}
		return strings.Compare(a.Key.String(), b.Key.String())
	})
}

// rate returns bytes over d in bits per second, 0 for an empty d.
func rate(bytes uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) * 8 / d.Seconds()
}

// formatRate formats bits per second as iftop does: b/s, kb/s, Mb/s,
// Gb/s (powers of 1000), with three significant digits.
func formatRate(bps float64) string {
	units := []string{"b/s", "kb/s", "Mb/s", "Gb/s", "Tb/s"}
	u := 0
	for bps >= 999.5 && u < len(units)-1 {
		bps /= 1000
		u++
	}
	switch {
	case u == 0:
		return strconv.FormatFloat(bps, 'f', 0, 64) + " " + units[u]
	case bps < 9.995:
		return strconv.FormatFloat(bps, 'f', 2, 64) + " " + units[u]
	case bps < 99.95:
		return strconv.FormatFloat(bps, 'f', 1, 64) + " " + units[u]
	}
	return strconv.FormatFloat(bps, 'f', 0, 64) + " " + units[u]
}

// protoName names a flow's protocol: TCP, UDP, ICMP, ICMPv6, SCTP, the IP
// protocol's number for others; ARP or the EtherType in hex for flows that
// are not IP.
func protoName(k flow.Key) string {
	if !k.IsIP() {
		if k.EtherType == 0x0806 {
			return "ARP"
		}
		return fmt.Sprintf("0x%04x", k.EtherType)
	}
	switch k.IPProto {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 1:
		return "ICMP"
	case 58:
		return "ICMPv6"
	case 132:
		return "SCTP"
	}
	return "ip-proto-" + strconv.Itoa(int(k.IPProto))
}

// hasPorts reports whether a flow's ports are ports: TCP, UDP or SCTP
// with a transport header (fragments without one have ports 0).
func hasPorts(k flow.Key) bool {
	return k.IsIP() && (k.IPProto == 6 || k.IPProto == 17 || k.IPProto == 132) && (k.SrcPort != 0 || k.DstPort != 0)
}

// flowColumns are the table's columns.
var flowColumns = []string{"Proto", "Source", "S-Port", "Destination", "D-Port", "Packets", "Bytes", "Rate"}

// tableCells returns the cells of a row.
func tableCells(r *flowRow, d time.Duration) []string {
	k := r.Key
	sport, dport := "-", "-"
	switch {
	case hasPorts(k):
		sport, dport = strconv.Itoa(int(k.SrcPort)), strconv.Itoa(int(k.DstPort))
	case k.IsICMP():
		dport = fmt.Sprintf("%d/%d", k.ICMPType(), k.ICMPCode())
	}
	return []string{protoName(k), addrString(k.Src), sport, addrString(k.Dst), dport,
		strconv.FormatUint(r.Packets, 10), strconv.FormatUint(r.Bytes, 10), formatRate(rate(r.Bytes, d))}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

// flowView prints the reports: a table per report, redrawn in place on a
// terminal (the screen cleared and the cursor sent home before each
// interval's, as top and iftop -t do), appended otherwise; with -json, one
// JSON object per flow per line, appended.
type flowView struct {
	w     io.Writer
	json  bool
	tty   bool                    // w is a terminal
	size  func() (rows, cols int) // the terminal's size, 0s if unknown
	iface string
	buf   []byte
}

// clearHome clears the screen and moves the cursor to its top left corner
// (ANSI: ED 2, CUP).
const clearHome = "\x1b[H\x1b[2J"

// show prints one report in one write.
func (v *flowView) show(rep *flowReport) error {
	b := v.buf[:0]
	if v.json {
		for i := range rep.Rows {
			b = appendFlowJSON(b, &rep.Rows[i], rep)
		}
	} else {
		limit, cols := -1, 0
		if v.tty && !rep.Total {
			b = append(b, clearHome...)
			if v.size != nil {
				var rows int
				if rows, cols = v.size(); rows > 0 {
					limit = max(1, rows-3) // the title, the header and the "more" line
				}
			}
		}
		start := len(b)
		b = v.appendTable(b, rep, limit)
		if cols > 0 {
			// A line wider than the screen would wrap and push the
			// title off it: cut it.
			b = append(b[:start], cutLines(b[start:], cols)...)
		}
	}
	v.buf = b
	if len(b) == 0 {
		return nil
	}
	_, err := v.w.Write(b)
	return err
}

// appendTable appends a report's title line and table, of at most limit
// flows (all of them for a negative limit), and a blank line after it when
// the reports are appended.
func (v *flowView) appendTable(b []byte, rep *flowReport, limit int) []byte {
	d := rep.End.Sub(rep.Start)
	what := "interval " + d.Round(time.Millisecond).String()
	if rep.Total {
		what = "totals over " + d.Round(time.Millisecond).String()
	}
	b = fmt.Appendf(b, "flows on %s, %s to %s, %s: %d %s, %d %s, %d bytes, %s\n",
		v.iface, rep.Start.UTC().Format(time.RFC3339), rep.End.UTC().Format(time.RFC3339), what,
		len(rep.Rows), pluralWord(len(rep.Rows), "flow", "flows"), rep.Packets, pluralWord(int(min(rep.Packets, 2)), "packet", "packets"),
		rep.Bytes, formatRate(rate(rep.Bytes, d)))
	rows := rep.Rows
	more := 0
	if limit >= 0 && len(rows) > limit {
		rows, more = rows[:limit], len(rows)-limit
	}
	cells := [][]string{flowColumns}
	for i := range rows {
		cells = append(cells, tableCells(&rows[i], d))
	}
	b = appendAligned(b, cells)
	if more > 0 {
		b = fmt.Appendf(b, "... and %d more %s\n", more, pluralWord(more, "flow", "flows"))
	}
	if !v.tty || rep.Total {
		b = append(b, '\n')
	}
	return b
}

// cutLines returns text with each line cut to at most cols bytes (the
// table is ASCII).
func cutLines(text []byte, cols int) []byte {
	var out []byte
	for len(text) > 0 {
		line := text
		rest := []byte(nil)
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, rest = text[:i], text[i+1:]
		}
		out = append(out, line[:min(len(line), cols)]...)
		out = append(out, '\n')
		text = rest
	}
	return out
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// appendAligned appends cells as columns two spaces apart, the numbers
// (Packets, Bytes, Rate: the last three) aligned right.
func appendAligned(b []byte, cells [][]string) []byte {
	width := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], len(c))
		}
	}
	for _, row := range cells {
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-len(c))
			if i >= len(row)-3 {
				b = append(b, pad...)
				b = append(b, c...)
			} else {
				b = append(b, c...)
				if i < len(row)-1 {
					b = append(b, pad...)
				}
			}
			if i < len(row)-1 {
				b = append(b, "  "...)
			}
		}
		b = append(b, '\n')
	}
	return b
}

// appendFlowJSON appends one flow of a report as a JSON object on a line of
// its own. The field names are fixed:
//
//	report     string  "interval" or "total"
//	start      string  RFC 3339, UTC, nanoseconds: the flow's first packet in the report
//	                   (or the report's start, for a flow that began before it)
//	end        string  the flow's last packet in the report
//	ifindex    number  the interface's index
//	dir        string  the direction: "host", "outgoing", ...
//	proto      string  "TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "ip-proto-N", "ARP", "0xXXXX"
//	ipproto    number  the IP protocol (IP flows only)
//	ethertype  number  the EtherType
//	src, dst   string  the addresses, or null for flows that are not IP
//	sport      number  the ports, or null without them
//	dport      number
//	icmp_type  number  ICMP and ICMPv6 only
//	icmp_code  number
//	vlan       number  the outer VLAN ID, for tagged flows only
//	packets    number  the packets in the report
//	bytes      number  their bytes on the wire
//	bps        number  bits per second over the report's span
//	tcp_flags  string  the TCP flags seen, as tcpdump's letters ("S.", "F."), TCP only
func appendFlowJSON(b []byte, r *flowRow, rep *flowReport) []byte {
	k := r.Key
	const ts = "2006-01-02T15:04:05.000000000Z"
	b = append(b, `{"report":"`...)
	if rep.Total {
		b = append(b, "total"...)
	} else {
		b = append(b, "interval"...)
	}
	b = append(b, `","start":"`...)
	b = r.Start.UTC().AppendFormat(b, ts)
	b = append(b, `","end":"`...)
	b = r.End.UTC().AppendFormat(b, ts)
	b = append(b, `","ifindex":`...)
	b = strconv.AppendInt(b, int64(k.Ifindex), 10)
	b = append(b, `,"dir":`...)
	b = strconv.AppendQuote(b, k.Direction.String())
	b = append(b, `,"proto":`...)
	b = strconv.AppendQuote(b, protoName(k))
	if k.IsIP() {
		b = append(b, `,"ipproto":`...)
		b = strconv.AppendUint(b, uint64(k.IPProto), 10)
	}
	b = append(b, `,"ethertype":`...)
	b = strconv.AppendUint(b, uint64(k.EtherType), 10)
	addr := func(name string, a netip.Addr) {
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `":`...)
		if !a.IsValid() {
			b = append(b, "null"...)
			return
		}
		b = append(b, '"')
		b = a.AppendTo(b)
		b = append(b, '"')
	}
	port := func(name string, p uint16, ok bool) {
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `":`...)
		if !ok {
			b = append(b, "null"...)
			return
		}
		b = strconv.AppendUint(b, uint64(p), 10)
	}
	addr("src", k.Src)
	port("sport", k.SrcPort, hasPorts(k))
	addr("dst", k.Dst)
	port("dport", k.DstPort, hasPorts(k))
	if k.IsICMP() {
		b = append(b, `,"icmp_type":`...)
		b = strconv.AppendUint(b, uint64(k.ICMPType()), 10)
		b = append(b, `,"icmp_code":`...)
		b = strconv.AppendUint(b, uint64(k.ICMPCode()), 10)
	}
	if k.VLAN != 0 {
		b = append(b, `,"vlan":`...)
		b = strconv.AppendUint(b, uint64(k.VLAN), 10)
	}
	b = append(b, `,"packets":`...)
	b = strconv.AppendUint(b, r.Packets, 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendUint(b, r.Bytes, 10)
	b = append(b, `,"bps":`...)
	b = strconv.AppendFloat(b, rate(r.Bytes, rep.End.Sub(rep.Start)), 'f', 0, 64)
	if k.IsIP() && k.IPProto == 6 {
		b = append(b, `,"tcp_flags":`...)
		b = strconv.AppendQuote(b, strings.Trim(r.TCPFlags.String(), "[]"))
	}
	return append(b, "}\n"...)
}
