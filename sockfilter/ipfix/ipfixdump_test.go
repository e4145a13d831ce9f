package ipfix

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// fixbufRecord returns what ipfixDump should print for f's record: its
// elements' IANA names and values, sorted.
func fixbufRecord(f *flow.Flow) string {
	k := &f.Key
	const layout = "2006-01-02 15:04:05.000"
	in, out, dir := k.Ifindex, 0, 0
	if k.Direction == packet.DirectionOutgoing {
		in, out, dir = 0, k.Ifindex, 1
	}
	fields := map[string]string{
		"vlanId": strconv.Itoa(int(k.VLAN)), "ingressInterface": strconv.Itoa(in), "egressInterface": strconv.Itoa(out),
		"flowDirection": strconv.Itoa(dir), "octetDeltaCount": strconv.FormatUint(f.Bytes, 10),
		"packetDeltaCount": strconv.FormatUint(f.Packets, 10), "flowStartMilliseconds": f.Start.UTC().Format(layout),
		"flowEndMilliseconds": f.End.UTC().Format(layout), "flowEndReason": strconv.Itoa(int(f.EndReason)),
	}
	sport, dport, icmp := k.SrcPort, k.DstPort, uint16(0)
	if k.IsICMP() {
		sport, dport, icmp = 0, 0, k.DstPort
	}
	ports := func() {
		fields["sourceTransportPort"], fields["destinationTransportPort"] = strconv.Itoa(int(sport)), strconv.Itoa(int(dport))
		fields["protocolIdentifier"] = strconv.Itoa(int(k.IPProto))
		fields["tcpControlBits"] = strconv.Itoa(int(f.TCPFlags))
	}
	switch k.EtherType {
	case 0x0800:
		fields["sourceIPv4Address"], fields["destinationIPv4Address"] = k.Src.String(), k.Dst.String()
		fields["icmpTypeCodeIPv4"] = strconv.Itoa(int(icmp))
		ports()
	case 0x86dd:
		fields["sourceIPv6Address"], fields["destinationIPv6Address"] = k.Src.String(), k.Dst.String()
		fields["icmpTypeCodeIPv6"] = strconv.Itoa(int(icmp))
		ports()
	default:
		fields["ethernetType"] = strconv.Itoa(int(k.EtherType))
	}
	var pairs []string
	for name, v := range fields {
		pairs = append(pairs, name+"="+v)
	}
	slices.Sort(pairs)
	return strings.Join(pairs, " ")
}

// fixbufDump is what ipfixDump printed for a file.
type fixbufDump struct {
	domains   []int      // each message's observation domain
	sequences []int      // each message's sequence number
	counts    []int      // each message's data records
	records   []string   // the data records, as fixbufRecord writes them
	file      [3]int     // its file stats: messages, data records, template records
	templates []Template // the template records (IDs and elements; lengths are not printed)
}

var (
	fixbufHeader   = regexp.MustCompile(`observation domain id: (\d+)`)
	fixbufSequence = regexp.MustCompile(`sequence number: (\d+) `)
	fixbufMsgStats = regexp.MustCompile(`^\*\*\* Msg Stats: (\d+) Data Records`)
	fixbufFile     = regexp.MustCompile(`^\*\*\* File Stats: (\d+) Messages, (\d+) Data Records, (\d+) Template Records`)
	fixbufField    = regexp.MustCompile(`^\s+\((\d+)\)\s+(\w+) : (.*)$`)
	fixbufTmplID   = regexp.MustCompile(`^\s+tid:\s+(\d+) `)
	fixbufTmplFld  = regexp.MustCompile(`^\s+ent:\s+(\d+)\s+id:\s+(\d+)\s+type: \w+\s+len:\s+(\d+)\s+(\w+)$`)
)

// parseFixbuf parses ipfixDump's output.
func parseFixbuf(t *testing.T, out string) fixbufDump {
	t.Helper()
	var d fixbufDump
	var rec []string
	flush := func() {
		if rec != nil {
			slices.Sort(rec)
			d.records = append(d.records, strings.Join(rec, " "))
			rec = nil
		}
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	inData := false
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		switch m := (*regexp.Regexp).FindStringSubmatch; {
		case strings.HasPrefix(line, "--- data record"):
			flush()
			rec, inData = []string{}, true
		case strings.HasPrefix(line, "--- template record"):
			flush()
			inData = false
			d.templates = append(d.templates, Template{})
		case m(fixbufHeader, line) != nil:
			flush()
			d.domains = append(d.domains, atoi(m(fixbufHeader, line)[1]))
		case m(fixbufSequence, line) != nil:
			d.sequences = append(d.sequences, atoi(m(fixbufSequence, line)[1]))
		case m(fixbufMsgStats, line) != nil:
			flush()
			d.counts = append(d.counts, atoi(m(fixbufMsgStats, line)[1]))
		case m(fixbufFile, line) != nil:
			f := m(fixbufFile, line)
			d.file = [3]int{atoi(f[1]), atoi(f[2]), atoi(f[3])}
		case inData && m(fixbufField, line) != nil:
			f := m(fixbufField, line)
			v := f[3]
			if a, err := netip.ParseAddr(v); err == nil {
				v = a.String() // ipfixDump writes 2001:0db8::0001
			}
			rec = append(rec, f[2]+"="+v)
		case !inData && len(d.templates) > 0 && m(fixbufTmplID, line) != nil:
			d.templates[len(d.templates)-1].ID = uint16(atoi(m(fixbufTmplID, line)[1]))
		case !inData && len(d.templates) > 0 && m(fixbufTmplFld, line) != nil:
			f := m(fixbufTmplFld, line)
			tm := &d.templates[len(d.templates)-1]
			tm.Fields = append(tm.Fields, FieldSpec{Element: Element(atoi(f[2])), Length: uint16(atoi(f[3])), Enterprise: uint32(atoi(f[1]))})
		}
	}
	flush()
	return d
}

// TestIpfixDump writes a file of IPFIX messages with the Exporter on an
// io.Writer and checks that libfixbuf's ipfixDump reads it all: the
// templates once, at the start, as Templates says, and every record with
// the values sent, in messages numbered by their records.
func TestIpfixDump(t *testing.T) {
	t.Parallel()
	testutil.RequireTool(t, "ipfixDump")
	path := filepath.Join(t.TempDir(), "flows.ipfix")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(file)
	e, err := NewExporter(bw, &Config{ObservationDomain: 77})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	flows := testFlows()
	for round := range 400 { // 2800 records, 180 kB: four messages
		for _, f := range flows {
			f.Packets += uint64(round)
			if err := e.Add(&f); err != nil {
				t.Fatal(err)
			}
			want = append(want, fixbufRecord(&f))
		}
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("ipfixDump", "-i", path)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ipfixDump -i %s: %v\n%s", path, err, stderr.Bytes())
	}
	d := parseFixbuf(t, string(out))

	st := e.Stats()
	if st.Messages < 3 {
		t.Fatalf("%d messages: the test means to write several", st.Messages)
	}
	if wantFile := [3]int{int(st.Messages), len(want), 3}; d.file != wantFile {
		t.Errorf("ipfixDump's file stats: %d messages, %d data records, %d template records; want %v", d.file[0], d.file[1], d.file[2], wantFile)
	}
	if len(d.sequences) != int(st.Messages) || len(d.counts) != int(st.Messages) {
		t.Fatalf("ipfixDump shows %d message headers and %d message stats for %d messages", len(d.sequences), len(d.counts), st.Messages)
	}
	seq := 0
	for i := range d.sequences {
		if d.sequences[i] != seq || d.domains[i] != 77 {
			t.Errorf("message %d: domain %d, sequence %d; want 77, %d", i, d.domains[i], d.sequences[i], seq)
		}
		seq += d.counts[i]
	}
	if !slices.EqualFunc(d.templates, Templates(), func(a, b Template) bool { return a.ID == b.ID && slices.Equal(a.Fields, b.Fields) }) {
		t.Errorf("ipfixDump's templates:\n%+v\nwant:\n%+v", d.templates, Templates())
	}
	slices.Sort(want)
	slices.Sort(d.records)
	if !slices.Equal(d.records, want) {
		n := min(len(d.records), len(want), 10)
		t.Errorf("ipfixDump read %d records, %d written; the first:\n%s\nwant:\n%s", len(d.records), len(want),
			strings.Join(d.records[:n], "\n"), strings.Join(want[:n], "\n"))
	}
}
