package ipfix

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/purebpf/purebpf/sockfilter/flow"
)

// fixedClock returns a Config.Now that returns *t.
func fixedClock(t *time.Time) func() time.Time { return func() time.Time { return *t } }

// hexLines decodes hex with white space and #-comments.
func hexLines(t *testing.T, s string) []byte {
	t.Helper()
	var digits strings.Builder
	for line := range strings.Lines(s) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The first message of a stream, byte by byte: the header, the template
// set with the three templates, and a data set with one IPv4 TCP record.
func TestMessageBytes(t *testing.T) {
	t.Parallel()
	want := hexLines(t, `
		000a 0109 66322ec2 00000000 00000007 # header: version 10, length 265, export time 2024-05-01T12:00:02Z, sequence 0, domain 7
		0002 00b8                            # template set, 184 octets
		0100 0010                            # template 256 (IPv4), 16 fields
		0008 0004  000c 0004                 #   sourceIPv4Address, destinationIPv4Address
		0007 0002  000b 0002  0020 0002      #   sourceTransportPort, destinationTransportPort, icmpTypeCodeIPv4
		0004 0001  0006 0002                 #   protocolIdentifier, tcpControlBits (2 octets, RFC 7125)
		003a 0002  000a 0004  000e 0004      #   vlanId, ingressInterface, egressInterface
		003d 0001                            #   flowDirection
		0001 0008  0002 0008                 #   octetDeltaCount, packetDeltaCount
		0098 0008  0099 0008  0088 0001      #   flowStartMilliseconds, flowEndMilliseconds, flowEndReason
		0101 0010                            # template 257 (IPv6), 16 fields
		001b 0010  001c 0010                 #   sourceIPv6Address, destinationIPv6Address
		0007 0002  000b 0002  008b 0002      #   sourceTransportPort, destinationTransportPort, icmpTypeCodeIPv6
		0004 0001  0006 0002                 #   protocolIdentifier, tcpControlBits
		003a 0002  000a 0004  000e 0004      #   vlanId, ingressInterface, egressInterface
		003d 0001                            #   flowDirection
		0001 0008  0002 0008                 #   octetDeltaCount, packetDeltaCount
		0098 0008  0099 0008  0088 0001      #   flowStartMilliseconds, flowEndMilliseconds, flowEndReason
		0102 000a                            # template 258 (not IP), 10 fields
		0100 0002                            #   ethernetType
		003a 0002  000a 0004  000e 0004      #   vlanId, ingressInterface, egressInterface
		003d 0001                            #   flowDirection
		0001 0008  0002 0008                 #   octetDeltaCount, packetDeltaCount
		0098 0008  0099 0008  0088 0001      #   flowStartMilliseconds, flowEndMilliseconds, flowEndReason
		0100 0041                            # data set of template 256, 65 octets: one record of 61
		c0000201 c0000202                    #   192.0.2.1 > 192.0.2.2
		9c40 0050 0000                       #   ports 40000 > 80, no ICMP type/code
		06 0013                              #   TCP, flags FIN|SYN|ACK
		0000 00000000 00000001               #   no VLAN, ingress 0, egress 1
		01                                   #   egress
		0000000000001388 000000000000000a    #   5000 octets, 10 packets
		0000018f34069e00 0000018f3406a3dc    #   12:00:00.000 to 12:00:01.500
		03                                   #   end of flow detected
	`)
	now := testStart.Add(2 * time.Second)
	var out bytes.Buffer
	e, err := NewExporter(&out, &Config{ObservationDomain: 7, Now: fixedClock(&now)})
	if err != nil {
		t.Fatal(err)
	}
	f := testFlows()[0]
	if err := e.Add(&f); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("Add wrote %d octets before Flush", out.Len())
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("message:\n%s\nwant:\n%s", hex.Dump(out.Bytes()), hex.Dump(want))
	}
	if got := (Stats{Messages: 1, Records: 1, Bytes: 265, TemplateSets: 1}); e.Stats() != got {
		t.Errorf("Stats = %+v, want %+v", e.Stats(), got)
	}
	if e.Sequence() != 1 {
		t.Errorf("Sequence = %d after one record, want 1", e.Sequence())
	}
}

// A stream's records come back from the Decoder as they were sent, and the
// templates come once.
func TestRoundTripStream(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	e, err := NewExporter(&out, &Config{ObservationDomain: 1})
	if err != nil {
		t.Fatal(err)
	}
	var want []flow.Flow
	for range 3 {
		for _, f := range testFlows() {
			if err := e.Add(&f); err != nil {
				t.Fatal(err)
			}
			want = append(want, sent(f))
		}
		if err := e.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	msgs, got := decodeAll(t, splitMessages(t, out.Bytes()))
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	if len(msgs[0].Templates) != 3 || len(msgs[1].Templates) != 0 || len(msgs[2].Templates) != 0 {
		t.Errorf("templates per message: %d, %d, %d; want 3, 0, 0", len(msgs[0].Templates), len(msgs[1].Templates), len(msgs[2].Templates))
	}
	if !slices.EqualFunc(msgs[0].Templates, Templates(), func(a, b Template) bool {
		return a.ID == b.ID && a.Scope == b.Scope && slices.Equal(a.Fields, b.Fields)
	}) {
		t.Errorf("decoded templates %+v, want %+v", msgs[0].Templates, Templates())
	}
	// The Exporter groups records by template: compare as sets.
	sortLines := func(s string) []string { l := strings.Split(s, "\n"); slices.Sort(l); return l }
	if g, w := sortLines(flowLines(got)), sortLines(flowLines(want)); !slices.Equal(g, w) {
		t.Errorf("decoded:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	for i, m := range msgs {
		if m.Sequence != uint32(i*len(testFlows())) {
			t.Errorf("message %d: sequence %d, want %d", i, m.Sequence, i*len(testFlows()))
		}
	}
}

// Datagrams stay within the size limit, never split a record, carry the
// templates first, then every TemplateRefreshMessages messages and after
// TemplateRefresh, and number the records.
func TestDatagrams(t *testing.T) {
	t.Parallel()
	now := testStart
	var d datagrams
	e, err := NewExporter(&d, &Config{Datagram: true, MaxMessageSize: 512, TemplateRefreshMessages: 5,
		TemplateRefresh: time.Minute, Now: fixedClock(&now)})
	if err != nil {
		t.Fatal(err)
	}
	flows := testFlows()
	const rounds = 40
	for i := range rounds {
		for j := range flows {
			if err := e.Add(&flows[j]); err != nil {
				t.Fatal(err)
			}
		}
		if i == 30 {
			now = now.Add(time.Minute) // the refresh timer runs out
		}
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	msgs, got := decodeAll(t, d.msgs)
	if len(got) != rounds*len(flows) {
		t.Errorf("%d records decoded, %d sent", len(got), rounds*len(flows))
	}
	var seq uint32
	last, sets, timed := -1, 0, 0
	for i, m := range msgs {
		if n := len(d.msgs[i]); n > 512 {
			t.Errorf("message %d: %d octets, more than 512", i, n)
		}
		if m.Sequence != seq {
			t.Errorf("message %d: sequence %d, want %d", i, m.Sequence, seq)
		}
		if m.UnknownSets != 0 {
			t.Errorf("message %d: %d sets of unknown templates", i, m.UnknownSets)
		}
		seq += uint32(m.Records)
		// The templates are due in the first message, 5 messages after
		// the last that had them, and in the first message after the
		// clock ran a minute on.
		byCount := last < 0 || i-last >= 5
		byTime := last >= 0 && m.ExportTime.After(msgs[last].ExportTime)
		if got := len(m.Templates) > 0; got != (byCount || byTime) {
			t.Errorf("message %d (%v): templates %v, want %v (last in message %d)", i, m.ExportTime, got, byCount || byTime, last)
		}
		if len(m.Templates) > 0 {
			last = i
			sets++
			if !byCount {
				timed++
			}
		}
		if len(m.Templates) > 0 && m.Records == 0 && !byTime {
			t.Errorf("message %d: templates alone, though there was room for them beside records", i)
		}
	}
	if timed != 1 {
		t.Errorf("%d messages had the templates because the clock ran on, want 1", timed)
	}
	if st := e.Stats(); st.Messages != uint64(len(msgs)) || st.Records != uint64(len(got)) || st.TemplateSets != uint64(sets) {
		t.Errorf("Stats = %+v for %d messages, %d with templates", st, len(msgs), sets)
	}
}

// A new message keeps room for the templates when they are due. When they
// fall due while a message is being filled and do not fit beside its
// records, they go in a message of their own, before them.
func TestTemplatesAlone(t *testing.T) {
	t.Parallel()
	now := testStart
	var d datagrams
	e, err := NewExporter(&d, &Config{Datagram: true, MaxMessageSize: 300, TemplateRefresh: time.Minute, Now: fixedClock(&now)})
	if err != nil {
		t.Fatal(err)
	}
	f := testFlows()[0]
	add := func(n int) {
		for range n {
			if err := e.Add(&f); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(2) // 16 + 184 + 4 + 61 = 265 octets: the second record starts a message without templates
	now = now.Add(time.Second)
	add(1)                     // 16 + 4 + 2*61 = 142 octets
	now = now.Add(time.Minute) // the templates are due, and 142 + 184 > 300
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	msgs, got := decodeAll(t, d.msgs)
	var shape []string
	for _, m := range msgs {
		shape = append(shape, fmt.Sprintf("%d templates, %d records", len(m.Templates), m.Records))
	}
	want := []string{"3 templates, 1 records", "3 templates, 0 records", "0 templates, 2 records"}
	if !slices.Equal(shape, want) || len(got) != 3 {
		t.Errorf("messages: %q, want %q", shape, want)
	}
}

// The Sequence Number wraps modulo 2^32, and nfcapd agrees (see
// TestNfcapd).
func TestSequenceWraps(t *testing.T) {
	t.Parallel()
	var d datagrams
	e, err := NewExporter(&d, &Config{Datagram: true, MaxMessageSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	e.seq = 1<<32 - 3
	f := testFlows()[1]
	for range 12 {
		if err := e.Add(&f); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	msgs, _ := decodeAll(t, d.msgs)
	want := uint32(1<<32 - 3)
	for i, m := range msgs {
		if m.Sequence != want {
			t.Errorf("message %d: sequence %d, want %d", i, m.Sequence, want)
		}
		want += uint32(m.Records)
	}
	if e.Sequence() != 9 {
		t.Errorf("Sequence = %d, want 2^32-3+12 mod 2^32 = 9", e.Sequence())
	}
}

func TestAddErrors(t *testing.T) {
	t.Parallel()
	good := testFlows()[0]
	tests := []struct {
		name string
		edit func(f *flow.Flow)
	}{
		{"IPv6 address in an IPv4 flow", func(f *flow.Flow) { f.Key.Src = addr("2001:db8::1") }},
		{"IPv4 address in an IPv6 flow", func(f *flow.Flow) { f.Key.EtherType = 0x86dd }},
		{"before 1970", func(f *flow.Flow) { f.Start = time.Unix(-1, 0) }},
		{"end before 1970", func(f *flow.Flow) { f.End = time.Unix(-100, 0) }},
		{"negative ifindex", func(f *flow.Flow) { f.Key.Ifindex = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			e, err := NewExporter(&out, nil)
			if err != nil {
				t.Fatal(err)
			}
			f := good
			tt.edit(&f)
			if err := e.Add(&f); err == nil {
				t.Errorf("Add(%v) did not fail", f.Key)
			} else if !strings.HasPrefix(err.Error(), "ipfix: flow ") {
				t.Errorf("error %q does not name the flow", err)
			}
			if err := e.Flush(); err != nil || out.Len() != 0 || e.Stats().Records != 0 {
				t.Errorf("after a failed Add: Flush %v, %d octets written", err, out.Len())
			}
		})
	}
	// IPv4-mapped IPv6 addresses and the zero Addr go as IPv4.
	f := good
	f.Key.Src, f.Key.Dst = addr("::ffff:192.0.2.9"), netip.Addr{}
	var d datagrams
	e, _ := NewExporter(&d, &Config{Datagram: true})
	if err := e.Add(&f); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, got := decodeAll(t, d.msgs); len(got) != 1 || got[0].Key.Src != addr("192.0.2.9") || got[0].Key.Dst != addr("0.0.0.0") {
		t.Errorf("decoded %s", flowLines(got))
	}
}

func TestNewExporterErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{
		{MaxMessageSize: 100}, {MaxMessageSize: 1 << 16}, {MaxMessageSize: -1},
		{TemplateRefresh: -time.Second}, {TemplateRefreshMessages: -1},
	} {
		if _, err := NewExporter(io.Discard, &c); err == nil {
			t.Errorf("NewExporter(%+v) did not fail", c)
		}
	}
	if _, err := NewExporter(io.Discard, &Config{MaxMessageSize: minMessageSize}); err != nil {
		t.Errorf("NewExporter with the least message size, %d: %v", minMessageSize, err)
	}
}

// In datagram mode a write error loses one message and the next goes on,
// with the templates again and the sequence past the lost records; in a
// stream it is sticky.
func TestWriteErrors(t *testing.T) {
	t.Parallel()
	f := testFlows()[0]
	var d datagrams
	e, err := NewExporter(&d, &Config{Datagram: true})
	if err != nil {
		t.Fatal(err)
	}
	d.fail = syscall.ECONNREFUSED
	if err := e.Add(&f); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Flush = %v, want ECONNREFUSED", err)
	}
	d.fail = nil
	if err := e.Add(&f); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	msgs, _ := decodeAll(t, d.msgs)
	if len(msgs) != 1 || msgs[0].Sequence != 1 || len(msgs[0].Templates) != 3 {
		t.Errorf("after a lost datagram: %d messages, sequence %d, %d templates; want 1, 1, 3", len(msgs), msgs[0].Sequence, len(msgs[0].Templates))
	}
	if st := e.Stats(); st.Errors != 1 || st.Messages != 2 || st.Records != 2 {
		t.Errorf("Stats = %+v", st)
	}

	s, err := NewExporter(&d, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.fail = io.ErrClosedPipe
	s.Add(&f)
	if err := s.Flush(); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Flush = %v, want ErrClosedPipe", err)
	}
	d.fail = nil
	if err := s.Add(&f); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Add after a failed stream write = %v, want the same error", err)
	}
}

// A UDP net.Conn makes a datagram exporter: each message one datagram.
func TestUDPConn(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	conn, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e, err := NewExporter(conn, &Config{ObservationDomain: 9})
	if err != nil {
		t.Fatal(err)
	}
	flows := testFlows()
	for range 30 { // 210 records: more than one datagram of 1400 octets
		for i := range flows {
			if err := e.Add(&flows[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	n := e.Stats().Messages
	if n < 2 {
		t.Fatalf("%d messages for 210 records", n)
	}
	var msgs [][]byte
	buf := make([]byte, 65536)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range n {
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if k > DefaultDatagramSize {
			t.Errorf("datagram of %d octets", k)
		}
		msgs = append(msgs, bytes.Clone(buf[:k]))
	}
	if _, got := decodeAll(t, msgs); len(got) != 210 {
		t.Errorf("%d records received, 210 sent", len(got))
	}
}

// Add and Flush allocate nothing once the Exporter is made.
func TestExporterNoAllocs(t *testing.T) {
	e, err := NewExporter(io.Discard, &Config{Datagram: true})
	if err != nil {
		t.Fatal(err)
	}
	flows := testFlows()
	n := testing.AllocsPerRun(100, func() {
		for i := range flows {
			if err := e.Add(&flows[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Flush(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("Add and Flush allocate %v times a round, want 0", n)
	}
}

func BenchmarkExporterAdd(b *testing.B) {
	e, err := NewExporter(io.Discard, &Config{Datagram: true})
	if err != nil {
		b.Fatal(err)
	}
	flows := testFlows()
	b.ReportAllocs()
	for b.Loop() {
		for i := range flows {
			if err := e.Add(&flows[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(flows)), "ns/record")
}
