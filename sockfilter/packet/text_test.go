package packet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
)

var recordTestTime = time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.UTC)

// parsedFrame returns the Record of a frame from testdata/frames, as a
// Conn on ifindex 3 would give it: cut short if the frame was.
func parsedFrame(t testing.TB, name string) Record {
	t.Helper()
	f := testutil.NamedFrame(t, name)
	var r Record
	info := Info{Time: recordTestTime, Ifindex: 3, Direction: DirectionHost, Length: f.Length}
	if err := Parse(f.Data, LinkType(f.Link), &info, &r); err != nil && !(f.Truncated() && errors.Is(err, ErrTruncated)) {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func TestAppendLine(t *testing.T) {
	t.Parallel()
	const ts = "2025-03-04T05:06:07.890123456Z"
	tests := map[string]string{
		"tcp4":         "10.0.0.1\t40000\t10.0.0.2\t80\tTCP\t" + ts + "\t74\t74\tFlags [P.] seq 1000 ack 2000 win 502 length 20\n",
		"udp4":         "10.0.0.1\t41000\t10.0.0.2\t41001\tUDP\t" + ts + "\t106\t106\tlength 64\n",
		"vlan_tcp4":    "10.0.0.1\t40001\t10.0.0.2\t443\tTCP\t" + ts + "\t58\t58\tFlags [SEW] seq 7 ack 0 win 64240 length 0 vlan 100\n",
		"udp6":         "2001:db8::1\t41002\t2001:db8::2\t41003\tUDP\t" + ts + "\t94\t94\tlength 32\n",
		"qinq_udp4":    "10.0.0.1\t1000\t10.0.0.2\t2000\tUDP\t" + ts + "\t60\t60\tlength 10 vlan 200.300\n",
		"frag4_first":  "10.0.0.1\t41004\t10.0.0.2\t41005\tUDP\t" + ts + "\t58\t58\tfrag 48879@0+\n",
		"frag4_rest":   "10.0.0.1\t-\t10.0.0.2\t-\tUDP\t" + ts + "\t58\t58\tfrag 48879@24\n",
		"frag6_rest":   "2001:db8::1\t-\t2001:db8::2\t-\tUDP\t" + ts + "\t86\t86\tfrag 3405643777@24\n",
		"icmp6_echo":   "2001:db8::2\t-\t2001:db8::1\t-\tICMPv6\t" + ts + "\t78\t78\ttype 129 code 0 length 24\n",
		"arp_request":  "10.0.0.1\t-\t10.0.0.2\t-\tARP\t" + ts + "\t60\t60\trequest\n",
		"local_ether":  "-\t-\t-\t-\tOther(0x88b5)\t" + ts + "\t60\t60\t-\n",
		"gre4":         "10.0.0.1\t-\t10.0.0.2\t-\tIPv4(47)\t" + ts + "\t66\t66\t-\n",
		"rst_ae_tcp4":  "10.0.0.2\t80\t10.0.0.1\t40003\tTCP\t" + ts + "\t60\t60\tFlags [Re] seq 5 ack 0 win 0 length 0\n",
		"sll2_udp6":    "2001:db8::1\t41020\t2001:db8::2\t41021\tUDP\t" + ts + "\t76\t76\tlength 8\n",
		"sll2_llc_stp": "-\t-\t-\t-\tOther(0x0004)\t" + ts + "\t58\t58\t-\n",
		// Cut by a snap length: the columns captured, and tcpdump's mark.
		"trunc_payload_udp4": "10.0.0.1\t41060\t10.0.0.2\t41061\tUDP\t" + ts + "\t142\t60\tlength 100\n",
		"trunc_tcp4_opts":    "10.0.0.1\t40020\t10.0.0.2\t443\tTCP\t" + ts + "\t74\t60\tFlags [S] seq 16909060 ack 0 win 64240 length 0 [|tcp]\n",
		"trunc_tcp6_ports":   "2001:db8::1\t40030\t2001:db8::2\t22\tTCP\t" + ts + "\t94\t60\t[|tcp]\n",
		"trunc_udp6":         "2001:db8::1\t41040\t2001:db8::2\t41041\tUDP\t" + ts + "\t132\t60\t[|udp]\n",
		"trunc_ipv4_opts":    "10.0.0.1\t-\t10.0.0.2\t-\tUDP\t" + ts + "\t78\t44\t[|ip]\n",
		"trunc_ext6_hbh":     "2001:db8::1\t-\t2001:db8::2\t-\tIPv6(0)\t" + ts + "\t102\t60\t[|hbhopt]\n",
		"trunc_icmp4":        "10.0.0.1\t-\t10.0.0.2\t-\tICMP\t" + ts + "\t58\t38\t[|icmp]\n",
		"trunc_arp":          "-\t-\t-\t-\tARP\t" + ts + "\t60\t30\trequest [|arp]\n",
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			r := parsedFrame(t, name)
			if got := string(r.AppendLine(nil)); got != want {
				t.Errorf("AppendLine:\n got %q\nwant %q", got, want)
			}
			if got := r.String(); got != strings.TrimSuffix(want, "\n") {
				t.Errorf("String() = %q", got)
			}
			if got, want := strings.Count(want, "\t"), strings.Count(TextHeader, "\t"); got != want {
				t.Errorf("%d tabs in the line, %d in TextHeader", got, want)
			}
		})
	}
	if !strings.HasPrefix(TextHeader, "S-Address\tS-Port\tD-Address\tD-Port\tProtocol\t") {
		t.Errorf("TextHeader = %q", TextHeader)
	}
}

func TestAppendTime(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "0001-01-01T00:00:00.000000000Z"},
		{recordTestTime, "2025-03-04T05:06:07.890123456Z"},
		{time.Unix(1700000000, 5).In(time.FixedZone("x", 3600)), "2023-11-14T22:13:20.000000005Z"},
		{time.Date(12345, 1, 2, 3, 4, 5, 6, time.UTC), "12345-01-02T03:04:05.000000006Z"},
	} {
		if got := string(appendTime(nil, tt.t)); got != tt.want {
			t.Errorf("appendTime(%v) = %q, want %q", tt.t, got, tt.want)
		}
		if tt.t.Year() <= 9999 {
			if got := tt.t.UTC().Format(timeLayout); got != tt.want {
				t.Errorf("Format(timeLayout) = %q, want %q", got, tt.want)
			}
		}
	}
}

func TestAppendJSON(t *testing.T) {
	t.Parallel()
	r := parsedFrame(t, "tcp4")
	const want = `{"time":"2025-03-04T05:06:07.890123456Z","ifindex":3,"dir":"host","proto":"TCP","ethertype":2048,` +
		`"src":"10.0.0.1","sport":40000,"dst":"10.0.0.2","dport":80,"len":74,"caplen":74,` +
		`"ipver":4,"ipproto":6,"ttl":64,"iplen":40,"paylen":20,"flags":"P.","seq":1000,"ack":2000,"win":502}` + "\n"
	if got := string(r.AppendJSON(nil)); got != want {
		t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
	}

	// Every test frame, and the zero Record, and records of frames cut in
	// their Ethernet header and with a wrong IPv4 header, give valid JSON
	// with the documented fields and values.
	records := []Record{{}}
	for _, f := range testutil.Frames(t) {
		records = append(records, parsedFrame(t, f.Name))
	}
	for _, frame := range [][]byte{make([]byte, 10), append(make([]byte, 12), 0x08, 0x00, 0x44, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)} {
		var r Record
		if Parse(frame, LinkEthernet, nil, &r) == nil {
			t.Fatalf("% x parses", frame)
		}
		records = append(records, r)
	}
	for _, r := range records {
		line := r.AppendJSON(nil)
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Errorf("not one line: %q", line)
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Errorf("invalid JSON %s: %v", line, err)
			continue
		}
		if tm, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil || !tm.Equal(r.Time) {
			t.Errorf("time %q: %v, want %v", m["time"], err, r.Time)
		}
		check := func(key string, want any) {
			t.Helper()
			got, ok := m[key]
			if !ok {
				t.Errorf("%s: no %q", line, key)
				return
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: %q is %v, want %v", line, key, got, want)
			}
		}
		absent := func(keys ...string) {
			t.Helper()
			for _, k := range keys {
				if _, ok := m[k]; ok {
					t.Errorf("%s: unexpected %q", line, k)
				}
			}
		}
		if r.Proto == ProtoUnknown && r.Status != StatusOK {
			check("proto", r.Status.String())
		} else {
			check("proto", r.Proto.String())
		}
		check("dir", r.Direction.String())
		check("ifindex", r.Ifindex)
		check("len", r.Length)
		check("caplen", r.CapLen)
		check("ethertype", r.EtherType)
		for _, f := range []struct {
			key string
			a   netip.Addr
		}{{"src", r.Src.Addr()}, {"dst", r.Dst.Addr()}} {
			if f.a.IsValid() {
				check(f.key, f.a.String())
			} else {
				check(f.key, nil)
			}
		}
		if r.HasPorts() {
			check("sport", r.Src.Port())
			check("dport", r.Dst.Port())
		} else {
			check("sport", nil)
			check("dport", nil)
		}
		if r.IPVersion != 0 {
			check("ipver", r.IPVersion)
			check("ipproto", r.IPProto)
			check("ttl", r.TTL)
			check("iplen", r.IPPayloadLen)
			check("paylen", r.PayloadLen)
		} else {
			absent("ipver", "ipproto", "ttl", "iplen", "paylen")
		}
		if r.Proto == ProtoTCP && r.Transport {
			check("flags", strings.Trim(r.TCPFlags.String(), "[]"))
			check("seq", r.Seq)
			check("ack", r.Ack)
			check("win", r.Window)
		} else {
			absent("flags", "seq", "ack", "win")
		}
		if (r.Proto == ProtoICMP || r.Proto == ProtoICMPv6) && r.Transport {
			check("icmp_type", r.ICMPType)
			check("icmp_code", r.ICMPCode)
		} else {
			absent("icmp_type", "icmp_code")
		}
		switch r.VLANs {
		case 0:
			absent("vlan")
		case 1:
			check("vlan", []any{json.Number(fmt.Sprint(r.VLAN))})
		default:
			check("vlan", []any{json.Number(fmt.Sprint(r.VLAN)), json.Number(fmt.Sprint(r.InnerVLAN))})
		}
		if r.Fragment {
			check("frag_id", r.FragID)
			check("frag_off", r.FragOffset)
			check("frag_more", r.MoreFragments)
		} else {
			absent("frag_id", "frag_off", "frag_more")
		}
		if r.Proto == ProtoARP {
			check("arp_op", r.ARPOp)
		} else {
			absent("arp_op")
		}
		switch r.Status {
		case StatusOK:
			absent("truncated", "malformed")
		case StatusTruncated:
			check("truncated", r.ErrLayer.String())
			absent("malformed")
		default:
			check("malformed", r.ErrLayer.String())
			absent("truncated")
		}
	}
}

// TestNoAllocs pins the per-frame path to zero allocations: decoding a
// frame and writing it as text and JSON; and a frame cut short to the one
// allocation of its *ParseError.
func TestNoAllocs(t *testing.T) {
	frames := testutil.Frames(t)
	var r Record
	var enc TextEncoder
	buf := make([]byte, 0, 1024)
	info := Info{Time: recordTestTime, Ifindex: 1, Direction: DirectionOutgoing, HasVLAN: true, VLANTCI: 5}
	parse := func(f testutil.Frame, info *Info) {
		if err := Parse(f.Data, LinkType(f.Link), info, &r); err != nil && !f.Truncated() {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		f    func(f testutil.Frame)
	}{
		{"Parse", func(f testutil.Frame) { parse(f, nil) }},
		{"Parse with an Info", func(f testutil.Frame) {
			info.Length = f.Length + 100
			parse(f, &info)
		}},
		{"AppendLine", func(testutil.Frame) { buf = r.AppendLine(buf[:0]) }},
		{"AppendJSON", func(testutil.Frame) { buf = r.AppendJSON(buf[:0]) }},
		{"TextEncoder", func(testutil.Frame) { buf = enc.Append(buf[:0], &r) }},
	} {
		for _, f := range frames {
			info.Length = f.Length
			parse(f, &info)
			want := 0.0
			switch {
			case tt.name == "Parse" && f.Truncated():
				continue // malformed without its wire length
			case tt.name == "Parse with an Info" && r.Status != StatusOK:
				want = 1 // the *ParseError
			}
			if n := testing.AllocsPerRun(100, func() { tt.f(f) }); n != want {
				t.Errorf("%s(%s): %v allocations, want %v", tt.name, f.Name, n, want)
			}
		}
	}
}

// TestAppendTimeMatchesFormat checks the hand-rolled time stamp against
// time.Format across the range it covers and at its edges.
func TestAppendTimeMatchesFormat(t *testing.T) {
	t.Parallel()
	for _, tm := range []time.Time{
		time.Unix(0, 0), time.Unix(951782400, 1), time.Unix(1700000000, 123456789),
		time.Date(2000, 2, 29, 23, 59, 59, 999999999, time.UTC), time.Date(2100, 3, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 5, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got := string(appendTime(nil, tm))
		want := tm.UTC().Format(timeLayout)
		if got != want {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
	for d := int64(0); d < 3_000_000; d += 997 {
		tm := time.Unix(d*86400+d%86400, d%1_000_000_000)
		if got, want := string(appendTime(nil, tm)), tm.UTC().Format(timeLayout); got != want {
			t.Fatalf("day %d: %s, want %s", d, got, want)
		}
	}
}

func TestAppendUint(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 65535, 1<<32 - 1, 1<<64 - 1, 123456789012345} {
		if got, want := string(appendUint([]byte("x"), v)), "x"+strconv.FormatUint(v, 10); got != want {
			t.Errorf("appendUint(%d) = %q, want %q", v, got, want)
		}
	}
	for _, a := range []string{"0.0.0.0", "127.0.0.1", "10.200.3.45", "255.255.255.255", "::1", "fe80::1", "::ffff:1.2.3.4"} {
		ap := netip.AddrPortFrom(netip.MustParseAddr(a), 1)
		if got := string(appendAddr(nil, ap)); got != a {
			t.Errorf("appendAddr(%s) = %q", a, got)
		}
	}
}

// TestTextEncoder checks that a TextEncoder writes what AppendLine does
// over a stream whose records repeat, alternate and change their flows and
// the seconds of their time stamps, years outside 0000–9999 included.
func TestTextEncoder(t *testing.T) {
	t.Parallel()
	frames := testutil.Frames(t)
	times := []time.Time{
		recordTestTime,
		recordTestTime.Add(time.Nanosecond),
		recordTestTime.Add(time.Second - 890123457), // the same second's last nanosecond
		recordTestTime.Add(time.Second),
		time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("UTC+1", 3600)), // another second, in another zone
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		{},
	}
	var recs []Record
	for _, f := range frames {
		var r Record
		Parse(f.Data, LinkType(f.Link), &Info{Length: f.Length}, &r)
		recs = append(recs, r)
	}
	// A malformed frame, and a frame of a link type Parse does not know.
	for _, link := range []LinkType{LinkEthernet, 7} {
		var r Record
		Parse(append(make([]byte, 12), 0x08, 0x00, 0x44, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8), link, nil, &r)
		recs = append(recs, r)
	}
	var enc TextEncoder
	var got, want []byte
	lines := 0
	check := func(r Record) {
		t.Helper()
		got, want = enc.Append(got[:0], &r), r.AppendLine(want[:0])
		if !bytes.Equal(got, want) {
			t.Fatalf("line %d: TextEncoder.Append\n got %q\nwant %q", lines, got, want)
		}
		lines++
	}
	for i, r := range recs {
		for j, tm := range times {
			r.Time = tm
			check(r) // a new time for a flow
			check(r) // the same record again
			o := recs[(i+j+1)%len(recs)]
			o.Time = tm
			check(o) // another flow in the same second
		}
		// Other lengths, then the same addresses with other ports, and
		// with the ports hidden.
		r.Time = recordTestTime
		r.Length++
		check(r)
		r.CapLen--
		check(r)
		r.Src = netip.AddrPortFrom(r.Src.Addr(), r.Src.Port()+1)
		check(r)
		r.Transport = false
		check(r)
		// Another IP protocol, and another EtherType.
		r.IPProto++
		check(r)
		r.EtherType++
		check(r)
	}
	if lines < 100 {
		t.Fatalf("only %d lines checked", lines)
	}
}

// BenchmarkAppendLine formats the record of a UDP datagram of one flow,
// a microsecond after the one before, with AppendLine and with a
// TextEncoder.
func BenchmarkAppendLine(b *testing.B) {
	r := parsedFrame(b, "udp4")
	buf := make([]byte, 0, 256)
	b.Run("AppendLine", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Time = r.Time.Add(1000)
			buf = r.AppendLine(buf[:0])
		}
	})
	b.Run("TextEncoder", func(b *testing.B) {
		b.ReportAllocs()
		var enc TextEncoder
		for b.Loop() {
			r.Time = r.Time.Add(1000)
			buf = enc.Append(buf[:0], &r)
		}
	})
}
