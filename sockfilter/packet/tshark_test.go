package packet_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
)

// The differential test against tshark: the test frames are written to
// pcap files with pcapfile.Writer, one a link type (Ethernet, raw IP, SLL,
// SLL2), tshark decodes them, and every packet.Record Parse makes must
// agree with tshark's fields. Frames captured short of their wire length
// (tcpdump -s 60 style) must agree on the fields Parse keeps and on the
// header where the capture cut them (tshark's _ws.short).
//
// tshark's output is kept in testdata/frames/tshark.tsv, so the test runs
// where tshark is not installed; where it is, the test also runs tshark
// and compares. After changing the frames, regenerate the file with
//
//	go test ./sockfilter/packet -run TestTshark -update-tshark

var updateTshark = flag.Bool("update-tshark", false, "rewrite testdata/frames/tshark.tsv from tshark's output")

// tsharkGolden returns the path of the golden file.
func tsharkGolden(t *testing.T) string { return testutil.Testdata(t, "frames", "tshark.tsv") }

// tsharkFields are the fields the test asks tshark for.
var tsharkFields = []string{
	"frame.len", "frame.cap_len", "frame.protocols", "eth.type",
	"sll.pkttype", "sll.hatype", "sll.ifindex", "sll.etype", "sll.ltype",
	"ieee8021ad.id", "vlan.id", "vlan.etype",
	"ip.src", "ip.dst", "ip.ttl", "ip.proto", "ip.id", "ip.flags.df", "ip.flags.mf", "ip.frag_offset", "ip.len", "ip.hdr_len",
	"ipv6.src", "ipv6.dst", "ipv6.hlim", "ipv6.plen", "ipv6.fraghdr.offset", "ipv6.fraghdr.more", "ipv6.fraghdr.ident",
	"tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.window_size_value", "tcp.hdr_len", "tcp.len",
	"udp.srcport", "udp.dstport", "udp.length", "icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code",
	"arp.opcode", "arp.src.proto_ipv4", "arp.dst.proto_ipv4", "_ws.expert.severity", "_ws.short",
}

// tsharkShort returns the Layer that tshark's _ws.short message, "[Packet
// size limited during capture: TCP truncated]", names, or LayerNone when
// the message is empty.
func tsharkShort(t *testing.T, msg string) packet.Layer {
	t.Helper()
	if msg == "" {
		return packet.LayerNone
	}
	name := strings.TrimSuffix(strings.TrimPrefix(msg, "[Packet size limited during capture: "), " truncated]")
	switch name {
	case "Ethernet":
		return packet.LayerEthernet
	case "Linux cooked-mode capture v1":
		return packet.LayerSLL
	case "Linux cooked-mode capture v2":
		return packet.LayerSLL2
	case "802.1Q Virtual LAN":
		return packet.LayerVLAN
	case "IPv4":
		return packet.LayerIPv4
	case "IPv6":
		return packet.LayerIPv6
	case "IPv6 Hop-by-Hop", "IPv6 Destination Options", "IPv6 Routing", "IPv6 Fragment", "Authentication Header":
		return packet.LayerIPv6Ext
	case "TCP":
		return packet.LayerTCP
	case "UDP":
		return packet.LayerUDP
	case "ICMP":
		return packet.LayerICMP
	case "ICMPv6":
		return packet.LayerICMPv6
	case "ARP/RARP":
		return packet.LayerARP
	}
	t.Fatalf("tshark's short frame message %q names no layer the test knows", msg)
	return packet.LayerNone
}

// runTshark writes the frames of one link type to a pcap file and returns
// tshark's fields for them, a tab-separated line a frame with the frame's
// name first.
func runTshark(t *testing.T, tshark string, frames []testutil.Frame) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "frames.pcap")
	if err := os.WriteFile(path, framesPcap(t, frames), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-r", path, "-n", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE", "-T", "fields"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(tshark, args...)
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
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(frames) {
		t.Fatalf("tshark printed %d lines for %d frames:\n%s", len(lines), len(frames), out)
	}
	for i := range lines {
		lines[i] = frames[i].Name + "\t" + lines[i]
	}
	return lines
}

// tsharkRow is tshark's fields for one frame; a field tshark gave several
// times (once a header) has several values.
type tsharkRow map[string][]string

func parseTsharkLines(t *testing.T, text string) map[string]tsharkRow {
	t.Helper()
	rows := map[string]tsharkRow{}
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 1+len(tsharkFields) {
			t.Fatalf("%d columns, want %d: %q", len(cols), 1+len(tsharkFields), line)
		}
		row := tsharkRow{}
		for i, f := range tsharkFields {
			if cols[i+1] != "" {
				row[f] = strings.Split(cols[i+1], ",")
			}
		}
		rows[cols[0]] = row
	}
	return rows
}

// first returns the first value of field, from the outermost header.
func (row tsharkRow) first(field string) string {
	if v := row[field]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// num returns the first value of field as a number ("0x1234" is hex).
func (row tsharkRow) num(t *testing.T, field string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(row.first(field), 0, 64)
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	return n
}

// compareTshark reports where r disagrees with tshark's row.
func compareTshark(t *testing.T, r *packet.Record, row tsharkRow) {
	t.Helper()
	eq := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: Parse says %v, tshark %v", what, got, want)
		}
	}
	for _, sev := range row["_ws.expert.severity"] {
		// PI_ERROR: malformed. (A RST is a warning, PI_WARN.)
		if n, _ := strconv.ParseUint(sev, 0, 32); n >= 0x800000 {
			t.Errorf("tshark finds an error in the frame (severity %#x)", n)
		}
	}
	eq("Length", r.Length, row.num(t, "frame.len"))
	eq("CapLen", r.CapLen, row.num(t, "frame.cap_len"))
	// Where the capture cut a header, both say so; a frame cut after its
	// headers is whole to both.
	eq("ErrLayer", r.ErrLayer, tsharkShort(t, row.first("_ws.short")))
	wantStatus := packet.StatusOK
	if r.ErrLayer != packet.LayerNone {
		wantStatus = packet.StatusTruncated
	}
	eq("Status", r.Status, wantStatus)
	if _, ok := row["sll.pkttype"]; ok {
		eq("Direction", r.Direction, packet.Direction(row.num(t, "sll.pkttype")+1))
		if _, ok := row["sll.ifindex"]; ok {
			eq("Ifindex", r.Ifindex, row.first("sll.ifindex"))
		} else {
			eq("Ifindex", r.Ifindex, 0)
		}
	}
	vlans := append(slices.Clone(row["ieee8021ad.id"]), row["vlan.id"]...)
	eq("VLANs", r.VLANs, len(vlans))
	if len(vlans) > 0 {
		eq("VLAN", r.VLAN, vlans[0])
	}
	if len(vlans) > 1 {
		eq("InnerVLAN", r.InnerVLAN, vlans[1])
	}

	// The protocols tshark found, after the link layer and the IPv6
	// extension headers, name the Proto.
	var layers []string
	for p := range strings.SplitSeq(row.first("frame.protocols"), ":") {
		switch p {
		case "eth", "sll", "ethertype", "vlan", "ieee8021ad", "raw", "ipv6.hopopts", "ipv6.dstopts", "ipv6.routing", "ipv6.fraghdr", "ah":
		default:
			layers = append(layers, p)
		}
	}
	if len(layers) == 0 {
		t.Fatalf("no protocols in %q", row.first("frame.protocols"))
	}
	switch layers[0] {
	case "arp":
		eq("Proto", r.Proto, packet.ProtoARP)
		eq("ARPOp", r.ARPOp, row.first("arp.opcode"))
		if _, ok := row["arp.src.proto_ipv4"]; ok || r.Status == packet.StatusOK {
			eq("Src", r.Src, netip.AddrPortFrom(netip.MustParseAddr(row.first("arp.src.proto_ipv4")), 0))
			eq("Dst", r.Dst, netip.AddrPortFrom(netip.MustParseAddr(row.first("arp.dst.proto_ipv4")), 0))
		} else {
			eq("Src valid", r.Src.IsValid(), false)
		}
		return
	case "ip", "ipv6":
	default:
		eq("Proto", r.Proto, packet.ProtoOther)
		var ets []string
		for _, f := range []string{"eth.type", "sll.etype", "sll.ltype", "vlan.etype"} {
			ets = append(ets, row[f]...)
		}
		eq("EtherType", fmt.Sprintf("0x%04x", r.EtherType), ets[len(ets)-1])
		return
	}

	var src, dst string
	if layers[0] == "ip" {
		eq("IPVersion", r.IPVersion, 4)
		src, dst = row.first("ip.src"), row.first("ip.dst")
		eq("TTL", r.TTL, row.first("ip.ttl"))
		eq("IPProto", r.IPProto, row.first("ip.proto"))
		eq("FragID", r.FragID, row.num(t, "ip.id"))
		eq("DontFragment", r.DontFragment, row.first("ip.flags.df") == "1")
		eq("MoreFragments", r.MoreFragments, row.first("ip.flags.mf") == "1")
		eq("FragOffset", r.FragOffset, 8*row.num(t, "ip.frag_offset"))
		eq("IPPayloadLen", r.IPPayloadLen, row.num(t, "ip.len")-row.num(t, "ip.hdr_len"))
	} else {
		eq("IPVersion", r.IPVersion, 6)
		src, dst = row.first("ipv6.src"), row.first("ipv6.dst")
		eq("TTL", r.TTL, row.first("ipv6.hlim"))
		if _, ok := row["ipv6.fraghdr.offset"]; ok {
			eq("Fragment", r.Fragment, true)
			eq("FragOffset", r.FragOffset, 8*row.num(t, "ipv6.fraghdr.offset"))
			eq("MoreFragments", r.MoreFragments, row.first("ipv6.fraghdr.more") == "1")
			eq("FragID", r.FragID, row.num(t, "ipv6.fraghdr.ident"))
		} else {
			eq("Fragment", r.Fragment, false)
		}
		if !strings.Contains(row.first("frame.protocols"), ":ipv6.") && !strings.Contains(row.first("frame.protocols"), ":ah:") {
			eq("IPPayloadLen", r.IPPayloadLen, row.num(t, "ipv6.plen"))
		}
	}
	eq("Src address", r.Src.Addr(), src)
	if dst != "" || r.ErrLayer != packet.LayerIPv4 {
		// (tshark 4.0 stops before the destination of an IPv4 header
		// cut in its options, though it was captured.)
		eq("Dst address", r.Dst.Addr(), dst)
	}

	next := "data"
	if len(layers) > 1 {
		next = layers[1]
	}
	if r.ErrLayer == packet.LayerIPv4 || r.ErrLayer == packet.LayerIPv6Ext {
		// Cut in the IPv4 options or the extension headers: no transport
		// header, but the IP protocol and payload length are known.
		eq("Transport", r.Transport, false)
		eq("HasPorts", r.HasPorts(), false)
		return
	}
	if r.PortsOnly {
		// Cut in the TCP or UDP header after the ports: tshark has them,
		// and what more it decoded Parse leaves zero.
		eq("Transport", r.Transport, false)
		eq("Src port", r.Src.Port(), row.first(next+".srcport"))
		eq("Dst port", r.Dst.Port(), row.first(next+".dstport"))
		eq("TCP fields", [...]uint64{uint64(r.TCPFlags), uint64(r.Seq), uint64(r.Ack), uint64(r.Window), uint64(r.PayloadLen)}, [5]uint64{})
		return
	}
	switch next {
	case "tcp":
		eq("Proto", r.Proto, packet.ProtoTCP)
		eq("Src port", r.Src.Port(), row.first("tcp.srcport"))
		eq("Dst port", r.Dst.Port(), row.first("tcp.dstport"))
		eq("TCPFlags", uint64(r.TCPFlags), row.num(t, "tcp.flags"))
		eq("Seq", r.Seq, row.first("tcp.seq_raw"))
		eq("Ack", r.Ack, row.first("tcp.ack_raw"))
		eq("Window", r.Window, row.first("tcp.window_size_value"))
		eq("PayloadLen", r.PayloadLen, row.first("tcp.len"))
		eq("IPPayloadLen", r.IPPayloadLen, row.num(t, "tcp.hdr_len")+row.num(t, "tcp.len"))
	case "udp":
		eq("Proto", r.Proto, packet.ProtoUDP)
		eq("Src port", r.Src.Port(), row.first("udp.srcport"))
		eq("Dst port", r.Dst.Port(), row.first("udp.dstport"))
		if r.Fragment {
			eq("PayloadLen", r.PayloadLen, r.IPPayloadLen-8)
		} else {
			eq("PayloadLen", r.PayloadLen, row.num(t, "udp.length")-8)
			eq("IPPayloadLen", r.IPPayloadLen, row.first("udp.length"))
		}
	case "icmp":
		eq("Proto", r.Proto, packet.ProtoICMP)
		if r.ErrLayer == packet.LayerICMP {
			// Cut inside the 8-byte header, which Parse, as tcpdump,
			// does not decode; tshark may have its first bytes.
			eq("Transport", r.Transport, false)
			return
		}
		eq("ICMPType", r.ICMPType, row.first("icmp.type"))
		eq("ICMPCode", r.ICMPCode, row.first("icmp.code"))
	case "icmpv6":
		eq("Proto", r.Proto, packet.ProtoICMPv6)
		eq("ICMPType", r.ICMPType, row.first("icmpv6.type"))
		eq("ICMPCode", r.ICMPCode, row.first("icmpv6.code"))
	case "data":
		// A non-first fragment: tshark, not reassembling, sees data.
		eq("Transport", r.Transport, false)
		eq("HasPorts", r.HasPorts(), false)
		if r.FragOffset == 0 {
			t.Errorf("tshark sees no transport header in a first fragment")
		}
	default:
		// Another IP protocol (GRE, ...).
		want := packet.ProtoIPv4
		if r.IPVersion == 6 {
			want = packet.ProtoIPv6
		}
		eq("Proto", r.Proto, want)
		eq("Transport", r.Transport, false)
	}
}

func TestTshark(t *testing.T) {
	t.Parallel()
	frames := testutil.Frames(t)
	golden, err := os.ReadFile(tsharkGolden(t))
	if err != nil && !*updateTshark {
		t.Fatal(err)
	}
	if tshark, lookErr := exec.LookPath("tshark"); lookErr == nil {
		version, _ := exec.Command(tshark, "--version").Output()
		vline, _, _ := strings.Cut(string(version), "\n")
		var live strings.Builder
		fmt.Fprintf(&live, "# tshark's fields for the frames in testdata/frames, from sockfilter/packet/tshark_test.go.\n")
		fmt.Fprintf(&live, "# Produced by %s on %s; regenerate with go test ./sockfilter/packet -run TestTshark -update-tshark\n", vline, time.Now().UTC().Format(time.DateOnly))
		fmt.Fprintf(&live, "# name\t%s\n", strings.Join(tsharkFields, "\t"))
		for _, link := range []uint16{testutil.LinkEthernet, testutil.LinkRawIP, testutil.LinkLinuxSLL, testutil.LinkLinuxSLL2} {
			for _, line := range runTshark(t, tshark, testutil.FramesOf(t, link)) {
				live.WriteString(line + "\n")
			}
		}
		if *updateTshark {
			if err := os.WriteFile(tsharkGolden(t), []byte(live.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			golden = []byte(live.String())
		} else if stripComments(live.String()) != stripComments(string(golden)) {
			// Another tshark version may print fields differently; the
			// live comparison below still checks every Record.
			if strings.Contains(string(golden), "# Produced by "+vline+" on ") {
				t.Errorf("tshark's output differs from %s: regenerate it with -update-tshark and check the diff", tsharkGolden(t))
			} else {
				t.Logf("tshark's output differs from %s, made by another version than %s", tsharkGolden(t), vline)
			}
		}
		// Compare with the live output too, in case it differs.
		t.Run("live", func(t *testing.T) {
			checkAgainstTshark(t, frames, parseTsharkLines(t, live.String()))
		})
	} else {
		t.Logf("tshark not installed (%v): comparing with %s only", lookErr, tsharkGolden(t))
	}
	t.Run("golden", func(t *testing.T) {
		checkAgainstTshark(t, frames, parseTsharkLines(t, string(golden)))
	})
}

func checkAgainstTshark(t *testing.T, frames []testutil.Frame, rows map[string]tsharkRow) {
	t.Helper()
	if len(rows) != len(frames) {
		t.Errorf("%d rows from tshark, %d frames", len(rows), len(frames))
	}
	for _, f := range frames {
		t.Run(f.Name, func(t *testing.T) {
			row, ok := rows[f.Name]
			if !ok {
				t.Fatal("tshark has no row for this frame")
			}
			var r packet.Record
			err := packet.Parse(f.Data, packet.LinkType(f.Link), &packet.Info{Length: f.Length}, &r)
			if err != nil && !(f.Truncated() && errors.Is(err, packet.ErrTruncated)) {
				t.Fatal(err)
			}
			compareTshark(t, &r, row)
		})
	}
}

// stripComments drops the #-lines of a golden file.
func stripComments(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !strings.HasPrefix(line, "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// framesPcap returns a pcap file of frames, all of one link type, one
// second apart.
func framesPcap(t *testing.T, frames []testutil.Frame) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := pcapfile.NewWriter(&b, packet.LinkType(frames[0].Link), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		info := packet.Info{Time: time.Unix(1700000000+int64(i), 0), Length: f.Length}
		if err := w.WritePacket(f.Data, &info); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}
