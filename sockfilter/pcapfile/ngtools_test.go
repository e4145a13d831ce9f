package pcapfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The pcapng Writer and Reader against the Wireshark tools (tshark,
// capinfos, editcap, mergecap, dumpcap) and tcpdump: the files one writes
// the others read, with the same packets, time stamps, lengths,
// interfaces and directions. The tests skip a tool that is not installed;
// CI installs tcpdump and tshark, which brings the others.

// runTool runs a tool and returns what it printed, failing the test if it
// fails. Its standard error, but for the warning Wireshark's tools give
// root, goes to stderr if not nil, and must be empty otherwise.
func runTool(t *testing.T, stderr *strings.Builder, name string, args ...string) string {
	t.Helper()
	path := lookPcapTool(t, name)
	cmd := exec.Command(path, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.Bytes())
	}
	for line := range strings.Lines(errb.String()) {
		switch {
		case strings.HasPrefix(line, "Running as user"):
		case stderr != nil:
			stderr.WriteString(line)
		default:
			t.Errorf("%s %s complains: %s", name, strings.Join(args, " "), line)
		}
	}
	return string(out)
}

// toolPacket is a packet as written, to compare with what a tool read.
type toolPacket struct {
	data []byte
	info packet.Info
	id   int
}

// writeNgFile writes the test frames of links, an interface each, to a
// pcapng file in dir and returns its path and the packets written: every
// direction in turn, and frame i at frameTime(i).
func writeNgFile(t *testing.T, dir string, links ...packet.LinkType) (string, []Interface, []toolPacket) {
	t.Helper()
	var ifaces []Interface
	for _, l := range links {
		ifaces = append(ifaces, Interface{Name: "if-" + strings.ToLower(l.String()), LinkType: l})
	}
	path := filepath.Join(dir, "ours.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	pw, err := NewNgWriter(f, ifaces...)
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.SetBufferSize(4096); err != nil {
		t.Fatal(err)
	}
	dirs := []packet.Direction{packet.DirectionUnknown, packet.DirectionHost, packet.DirectionBroadcast,
		packet.DirectionMulticast, packet.DirectionOtherHost, packet.DirectionOutgoing}
	var pkts []toolPacket
	for id, l := range links {
		for _, fr := range testutil.FramesOf(t, uint16(l)) {
			i := len(pkts)
			info := packet.Info{Time: frameTime(i), Length: fr.Length, Direction: dirs[i%len(dirs)]}
			if err := pw.WriteInterfacePacket(id, fr.Data, &info); err != nil {
				t.Fatal(err)
			}
			pkts = append(pkts, toolPacket{fr.Data, info, id})
		}
	}
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, pw.Interfaces(), pkts
}

// epochNano formats t as tshark's frame.time_epoch and tcpdump -tt
// --time-stamp-precision=nano print it.
func epochNano(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

// TestNgTsharkReads checks that tshark reads a pcapng file of four
// interfaces of four link types as it was written: each packet's
// interface, its name, direction and reception type, time stamp and
// lengths.
func TestNgTsharkReads(t *testing.T) {
	t.Parallel()
	links := []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP, packet.LinkLinuxSLL, packet.LinkLinuxSLL2}
	path, ifaces, pkts := writeNgFile(t, t.TempDir(), links...)
	out := runTool(t, nil, "tshark", "-r", path, "-n", "-T", "fields", "-e", "frame.interface_id", "-e", "frame.interface_name",
		"-e", "frame.packet_flags_direction", "-e", "frame.packet_flags_reception_type", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(pkts) {
		t.Fatalf("tshark printed %d lines for %d packets", len(lines), len(pkts))
	}
	for i, p := range pkts {
		dir, recv := "", ""
		if flags, ok := flagsFromDirection(p.info.Direction); ok {
			dir, recv = fmt.Sprintf("0x%08x", flags&3), strconv.Itoa(int(flags>>2&7))
		}
		want := fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%d\t%d", p.id, ifaces[p.id].Name, dir, recv, epochNano(p.info.Time), p.info.Length, len(p.data))
		if lines[i] != want {
			t.Errorf("packet %d: tshark %q, want %q", i, lines[i], want)
		}
	}
}

// TestNgCapinfos checks what capinfos says of a pcapng file the Writer
// wrote: its type, packet count, nanosecond precision, application and
// each interface's name and encapsulation.
func TestNgCapinfos(t *testing.T) {
	t.Parallel()
	links := []packet.LinkType{packet.LinkEthernet, packet.LinkLinuxSLL2}
	path, _, pkts := writeNgFile(t, t.TempDir(), links...)
	out := runTool(t, nil, "capinfos", path)
	for _, want := range []string{
		"File type:           Wireshark/... - pcapng\n",
		fmt.Sprintf("Number of packets:   %d\n", len(pkts)),
		"File timestamp precision:  nanoseconds (9)\n",
		"Capture application: purebpf\n",
		"Number of interfaces in file: 2\n",
		"Interface #0 info:\n                     Name = if-en10mb\n                     Encapsulation = Ethernet (1 - ether)\n                     Capture length = 262144\n                     Time precision = nanoseconds (9)\n",
		"Interface #1 info:\n                     Name = if-linux_sll2\n                     Encapsulation = Linux cooked-mode capture v2 (210 - linux-sll2)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("capinfos lacks %q:\n%s", want, out)
		}
	}
}

// TestNgTcpdumpAndEditcapRead checks, for each link type, that tcpdump
// reads a pcapng file the Writer wrote, a line a packet at its time, and
// that editcap converts it to pcap files, in nanoseconds and
// microseconds, which the Reader reads with the same packets.
func TestNgTcpdumpAndEditcapRead(t *testing.T) {
	t.Parallel()
	for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP, packet.LinkLinuxSLL, packet.LinkLinuxSLL2} {
		t.Run(link.String(), func(t *testing.T) {
			dir := t.TempDir()
			path, _, pkts := writeNgFile(t, dir, link)

			var stderr strings.Builder
			out := runTool(t, &stderr, "tcpdump", "-r", path, "-nn", "-tt", "--time-stamp-precision=nano")
			for line := range strings.Lines(stderr.String()) {
				want := fmt.Sprintf("reading from file %s, link-type %s (%s), snapshot length %d\n", path, link, link.Description(), DefaultSnaplen)
				if line != want && line != "Warning: interface names might be incorrect\n" {
					t.Errorf("tcpdump says %q, want %q", line, want)
				}
			}
			var starts []string
			for line := range strings.Lines(out) {
				if !strings.HasPrefix(line, "\t") {
					starts = append(starts, line)
				}
			}
			if len(starts) != len(pkts) {
				t.Fatalf("tcpdump printed %d packets of %d:\n%s", len(starts), len(pkts), out)
			}
			for i, p := range pkts {
				if !strings.HasPrefix(starts[i], epochNano(p.info.Time)+" ") {
					t.Errorf("packet %d: tcpdump %q, want it at %s", i, starts[i], epochNano(p.info.Time))
				}
			}

			for _, format := range []string{"nsecpcap", "pcap"} {
				conv := filepath.Join(dir, format+".pcap")
				runTool(t, nil, "editcap", "-F", format, path, conv)
				got := readFile(t, conv, FormatPcap)
				if len(got) != len(pkts) {
					t.Fatalf("editcap -F %s: %d packets of %d", format, len(got), len(pkts))
				}
				for i, p := range pkts {
					want := p.info.Time
					if format == "pcap" {
						want = want.Truncate(time.Microsecond)
					}
					if g := got[i]; !bytes.Equal(g.data, p.data) || !g.info.Time.Equal(want) || g.info.Length != p.info.Length || g.id != 0 {
						t.Errorf("editcap -F %s, packet %d: % x at %v length %d; want % x at %v length %d",
							format, i, g.data, g.info.Time, g.info.Length, p.data, want, p.info.Length)
					}
				}
			}
		})
	}
}

// readFile reads every packet of a capture file of the given format.
func readFile(t *testing.T, path string, format Format) []toolPacket {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	pr, err := NewReader(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	if pr.Format() != format {
		t.Errorf("%s: format %v, want %v", path, pr.Format(), format)
	}
	var pkts []toolPacket
	var buf []byte
	for {
		var info packet.Info
		buf, err = pr.ReadPacket(buf, &info)
		if err == io.EOF {
			return pkts
		}
		if err != nil {
			t.Fatalf("%s: packet %d: %v", path, len(pkts), err)
		}
		id, iface := pr.Interface()
		if iface.LinkType == 0 {
			t.Fatalf("%s: packet %d of interface %d, which has no link type", path, len(pkts), id)
		}
		pkts = append(pkts, toolPacket{bytes.Clone(buf), info, id})
	}
}

// TestNgReadsWireshark checks that the Reader reads the pcapng files the
// Wireshark tools write from pcap files the Writer wrote: editcap -F
// pcapng, tshark -w, mergecap of files of four link types (an interface
// each) and editcap of a pcapng file with directions, which it keeps.
func TestNgReadsWireshark(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	links := []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP, packet.LinkLinuxSLL, packet.LinkLinuxSLL2}
	var pcaps []string
	for _, link := range links {
		frames := testutil.FramesOf(t, uint16(link))
		path := filepath.Join(dir, link.String()+".pcap")
		if err := os.WriteFile(path, writePcap(t, link, 0, frames), 0o644); err != nil {
			t.Fatal(err)
		}
		pcaps = append(pcaps, path)
		for _, tool := range [][]string{{"editcap", "-F", "pcapng", path}, {"tshark", "-F", "pcapng", "-r", path, "-w"}} {
			ng := filepath.Join(dir, link.String()+"-"+tool[0]+".pcapng")
			runTool(t, nil, tool[0], append(tool[1:], ng)...)
			got := readFile(t, ng, FormatPcapng)
			if len(got) != len(frames) {
				t.Fatalf("%s: %d packets of %d", ng, len(got), len(frames))
			}
			for i, fr := range frames {
				if g := got[i]; !bytes.Equal(g.data, fr.Data) || !g.info.Time.Equal(frameTime(i)) || g.info.Length != fr.Length || g.info.Direction != packet.DirectionUnknown {
					t.Errorf("%s, packet %d: % x at %v length %d %v; want % x at %v length %d",
						ng, i, g.data, g.info.Time, g.info.Length, g.info.Direction, fr.Data, frameTime(i), fr.Length)
				}
			}
		}
	}

	// mergecap gives each input file an interface, in order, and merges
	// the packets by time: compare with what tshark reads.
	merged := filepath.Join(dir, "merged.pcapng")
	runTool(t, nil, "mergecap", append([]string{"-F", "pcapng", "-w", merged}, pcaps...)...)
	checkWithTshark(t, merged, links)

	// editcap keeps the directions of a pcapng file the Writer wrote.
	ours, _, pkts := writeNgFile(t, t.TempDir(), links...)
	copied := filepath.Join(dir, "copied.pcapng")
	runTool(t, nil, "editcap", "-F", "pcapng", ours, copied)
	got := readFile(t, copied, FormatPcapng)
	if len(got) != len(pkts) {
		t.Fatalf("editcap copy: %d packets of %d", len(got), len(pkts))
	}
	for i, p := range pkts {
		g := got[i]
		g.info.Time = g.info.Time.In(p.info.Time.Location())
		if !bytes.Equal(g.data, p.data) || g.info != p.info || g.id != p.id {
			t.Errorf("editcap copy, packet %d: %+v on %d, want %+v on %d", i, g.info, g.id, p.info, p.id)
		}
	}
}

// checkWithTshark compares what the Reader reads of path with what tshark
// reads: each packet's interface, time stamp and lengths; and that
// interface i has link type links[i].
func checkWithTshark(t *testing.T, path string, links []packet.LinkType) []toolPacket {
	t.Helper()
	got := readFile(t, path, FormatPcapng)
	out := runTool(t, nil, "tshark", "-r", path, "-n", "-T", "fields", "-e", "frame.interface_id", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(got) || len(got) == 0 {
		t.Fatalf("%s: tshark read %d packets, the Reader %d", path, len(lines), len(got))
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, err := NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for i, g := range got {
		if buf, err = pr.ReadPacket(buf, new(packet.Info)); err != nil {
			t.Fatal(err)
		}
		id, iface := pr.Interface()
		if links != nil && (id >= len(links) || iface.LinkType != links[id]) {
			t.Errorf("packet %d: interface %d of link type %v; want the link types %v by interface", i, id, iface.LinkType, links)
		}
		want := fmt.Sprintf("%d\t%s\t%d\t%d", g.id, epochNano(g.info.Time), g.info.Length, len(g.data))
		if lines[i] != want {
			t.Errorf("packet %d: the Reader gives %q, tshark %q", i, want, lines[i])
		}
	}
	return got
}

// TestNgReaderReadsDumpcap captures UDP datagrams on lo with dumpcap,
// which writes pcapng, and reads the file as tshark does.
func TestNgReaderReadsDumpcap(t *testing.T) {
	t.Parallel()
	testutil.RequirePrivileged(t)
	dumpcap := lookPcapTool(t, "dumpcap")
	const n = 4
	path := filepath.Join(t.TempDir(), "lo.pcapng")
	port := startUDPSender(t)
	cmd := exec.Command(dumpcap, "-i", "lo", "-c", strconv.Itoa(n), "-w", path, "-f", fmt.Sprintf("udp dst port %d", port))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dumpcap: %v\n%s", err, stderr.Bytes())
	}
	got := checkWithTshark(t, path, []packet.LinkType{packet.LinkEthernet})
	if len(got) != n {
		t.Errorf("%d packets, want %d", len(got), n)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, err := NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if ifaces := pr.Interfaces(); len(ifaces) != 1 || ifaces[0].Name != "lo" || ifaces[0].LinkType != packet.LinkEthernet {
		t.Errorf("interfaces %+v, want lo, EN10MB", ifaces)
	}
	for _, p := range got {
		var r packet.Record
		if err := packet.Parse(p.data, packet.LinkEthernet, &p.info, &r); err != nil || r.Dst.Port() != uint16(port) {
			t.Errorf("packet %s: %v", r.String(), err)
		}
	}
}

// startUDPSender sends UDP datagrams to 127.0.0.1 from a goroutine until
// the test ends, and returns their destination port.
func startUDPSender(t *testing.T) int {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		<-stopped
		conn.Close()
	})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				conn.WriteTo([]byte("purebpf pcapng test"), conn.LocalAddr())
			}
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).Port
}
