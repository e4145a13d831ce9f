package ipfix

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
)

// ipfixPort is the IANA port for IPFIX over UDP (RFC 7011 §10.3.4).
const ipfixPort = 4739

// udpFrame wraps payload in Ethernet, IPv4 (192.0.2.1 > 192.0.2.2, with
// its checksum) and UDP (port 50000 > 4739, no checksum, which IPv4
// allows).
func udpFrame(payload []byte, id uint16) []byte {
	b := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}
	ip := len(b)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(20+8+len(payload)))
	b = binary.BigEndian.AppendUint16(b, id)
	b = append(b, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2) // DF, TTL 64, UDP, checksum below
	var sum uint32
	for i := ip; i < ip+20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[ip+10:], ^uint16(sum))
	b = binary.BigEndian.AppendUint16(b, 50000)
	b = binary.BigEndian.AppendUint16(b, ipfixPort)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = append(b, 0, 0)
	return append(b, payload...)
}

// writePcap writes the messages as UDP datagrams to a pcap file and
// returns its path.
func writePcap(t *testing.T, msgs [][]byte) string {
	t.Helper()
	var file bytes.Buffer
	w, err := pcapfile.NewWriter(&file, packet.LinkEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		frame := udpFrame(m, uint16(i+1))
		info := packet.Info{Time: testStart.Add(time.Duration(i) * time.Millisecond), Length: len(frame)}
		if err := w.WritePacket(frame, &info); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "ipfix.pcap")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tshark runs tshark on the pcap file with args, decoding UDP port 4739 as
// IPFIX, and returns its output; anything on stderr fails the test.
func tshark(t *testing.T, pcap string, args ...string) string {
	t.Helper()
	args = append([]string{"-r", pcap, "-n", "-d", fmt.Sprintf("udp.port==%d,cflow", ipfixPort)}, args...)
	cmd := exec.Command("tshark", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	for line := range strings.Lines(stderr.String()) {
		if !strings.HasPrefix(line, "Running as user") {
			t.Errorf("tshark complains: %s", line)
		}
	}
	return string(out)
}

// tsharkRecord returns what tshark should show for f's record: its
// fields' names and values, sorted.
func tsharkRecord(f *flow.Flow) string {
	k := &f.Key
	const layout = "Jan _2, 2006 15:04:05.000000000 UTC"
	in, out, dir := k.Ifindex, 0, 0
	if k.Direction == packet.DirectionOutgoing {
		in, out, dir = 0, k.Ifindex, 1
	}
	fields := map[string]string{
		"vlanid": strconv.Itoa(int(k.VLAN)), "inputint": strconv.Itoa(in), "outputint": strconv.Itoa(out),
		"direction": strconv.Itoa(dir), "octets": strconv.FormatUint(f.Bytes, 10), "packets": strconv.FormatUint(f.Packets, 10),
		"abstimestart": f.Start.UTC().Format(layout), "abstimeend": f.End.UTC().Format(layout),
		"flow_end_reason": strconv.Itoa(int(f.EndReason)),
	}
	sport, dport, icmp := k.SrcPort, k.DstPort, uint16(0)
	if k.IsICMP() {
		sport, dport, icmp = 0, 0, k.DstPort
	}
	ports := func() {
		fields["srcport"], fields["dstport"] = strconv.Itoa(int(sport)), strconv.Itoa(int(dport))
		fields["protocol"] = strconv.Itoa(int(k.IPProto))
		fields["tcpflags"] = fmt.Sprintf("0x%04x", uint16(f.TCPFlags))
	}
	switch k.EtherType {
	case 0x0800:
		fields["srcaddr"], fields["dstaddr"] = k.Src.String(), k.Dst.String()
		fields["icmp_type_code_ipv4"] = fmt.Sprintf("0x%04x", icmp)
		ports()
	case 0x86dd:
		fields["srcaddrv6"], fields["dstaddrv6"] = k.Src.String(), k.Dst.String()
		fields["icmp_ipv6_type"], fields["icmp_ipv6_code"] = strconv.Itoa(int(icmp>>8)), strconv.Itoa(int(icmp&0xff))
		ports()
	default:
		fields["ethernet_type"] = strconv.Itoa(int(k.EtherType))
	}
	var pairs []string
	for name, v := range fields {
		pairs = append(pairs, "cflow."+name+"="+v)
	}
	slices.Sort(pairs)
	return strings.Join(pairs, " ")
}

// pdmlField is a field of tshark's PDML output (-T pdml).
type pdmlField struct {
	Name   string      `xml:"name,attr"`
	Show   string      `xml:"show,attr"`
	Fields []pdmlField `xml:"field"`
}

type pdmlPacket struct {
	Protos []struct {
		Name   string      `xml:"name,attr"`
		Fields []pdmlField `xml:"field"`
	} `xml:"proto"`
}

// pdmlRecords returns the data records tshark decoded in each packet, as
// tsharkRecord writes them.
func pdmlRecords(t *testing.T, out string) [][]string {
	t.Helper()
	var doc struct {
		Packets []pdmlPacket `xml:"packet"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("tshark's PDML: %v", err)
	}
	var records [][]string
	for _, p := range doc.Packets {
		var recs []string
		for _, proto := range p.Protos {
			if proto.Name == "cflow" {
				recs = appendFlows(recs, proto.Fields)
			}
		}
		records = append(records, recs)
	}
	return records
}

// appendFlows appends the records among fields: the fields named "Flow N",
// as the names and values of the cflow fields in them.
func appendFlows(recs []string, fields []pdmlField) []string {
	for _, f := range fields {
		if f.Name != "" || !strings.HasPrefix(f.Show, "Flow ") {
			recs = appendFlows(recs, f.Fields)
			continue
		}
		var pairs []string
		var walk func([]pdmlField)
		walk = func(fs []pdmlField) {
			for _, g := range fs {
				if strings.HasPrefix(g.Name, "cflow.") && !strings.HasPrefix(g.Name, "cflow.tcpflags.") && g.Name != "cflow.timedelta" {
					pairs = append(pairs, g.Name+"="+g.Show)
				}
				walk(g.Fields)
			}
		}
		walk(f.Fields)
		slices.Sort(pairs)
		recs = append(recs, strings.Join(pairs, " "))
	}
	return recs
}

// TestTshark writes the export of the test flows, as UDP datagrams, to a
// pcap file, and checks that Wireshark's IPFIX dissector (cflow) decodes
// every message with no expert info — which it adds for a malformed
// packet, a data set without its template, or an unexpected sequence
// number — and shows in each record the values the Exporter sent.
func TestTshark(t *testing.T) {
	t.Parallel()
	testutil.RequireTool(t, "tshark")
	var d datagrams
	e, err := NewExporter(&d, &Config{Datagram: true, MaxMessageSize: 400, TemplateRefreshMessages: 4, ObservationDomain: 3})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	flows := testFlows()
	for round := range 5 {
		for _, f := range flows {
			f.Bytes += uint64(round)
			if err := e.Add(&f); err != nil {
				t.Fatal(err)
			}
			want = append(want, tsharkRecord(&f))
		}
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Messages < 5 || st.TemplateSets < 2 {
		t.Fatalf("Stats %+v: the test means to send several messages and refresh the templates", st)
	}
	pcap := writePcap(t, d.msgs)

	records := pdmlRecords(t, tshark(t, pcap, "-T", "pdml"))
	if len(records) != len(d.msgs) {
		t.Fatalf("tshark decoded %d packets of %d", len(records), len(d.msgs))
	}
	summary := tshark(t, pcap, "-T", "fields", "-E", "occurrence=f", "-e", "frame.number", "-e", "_ws.col.Protocol",
		"-e", "cflow.version", "-e", "cflow.sequence", "-e", "cflow.od_id", "-e", "_ws.expert", "-e", "_ws.malformed")
	lines := strings.Split(strings.TrimRight(summary, "\n"), "\n")
	if len(lines) != len(d.msgs) {
		t.Fatalf("tshark printed %d lines for %d messages:\n%s", len(lines), len(d.msgs), summary)
	}
	var got []string
	seq := 0
	for i, line := range lines {
		// The number, the protocol, version 10, the sequence number (the
		// records tshark counted in the messages before), domain 3, and no
		// expert info.
		want := []string{strconv.Itoa(i + 1), "CFLOW", "10", strconv.Itoa(seq), "3", "", ""}
		if cols := strings.Split(line, "\t"); !slices.Equal(cols, want) {
			t.Errorf("message %d: tshark says %q, want %q", i+1, cols, want)
		}
		seq += len(records[i])
		got = append(got, records[i]...)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("tshark decoded the records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
