package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
)

// These tests run tcpdump -r on a pcap file of frames and compare what it
// prints with lo-capture's formatting of the same frames: the payload
// dumps, the link-level columns, the IP header fields of -v and the time
// formats. tcpdump needs no privileges to read a file.

// needTcpdump skips the test when tcpdump is not installed.
func needTcpdump(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is not installed (apt-get install tcpdump)")
	}
}

// frameAt is the time stamp of frame i of a test file: i seconds after
// the epoch, so that tcpdump -tt starts its line with "i.000000 ".
func frameAt(i int) time.Time { return time.Unix(int64(i+1), 0) }

// writeFrames writes frames to a pcap file of link type link and returns
// its name.
func writeFrames(t *testing.T, link packet.LinkType, frames [][]byte) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "frames.pcap")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	pw, err := pcapfile.NewWriter(bw, link, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		if err := pw.WritePacket(fr, &packet.Info{Time: frameAt(i), Length: len(fr)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return name
}

// tcpdumpPackets runs tcpdump -r file -tt -nn with args and returns what
// it printed for each packet: its first line (without the time stamp)
// and the lines after it, up to the next packet's.
func tcpdumpPackets(t *testing.T, file string, n int, args ...string) (heads, bodies []string) {
	t.Helper()
	cmd := exec.Command("tcpdump", append([]string{"-r", file, "-tt", "-nn"}, args...)...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tcpdump %v: %v\n%s", args, err, stderr.String())
	}
	text := string(out)
	for i := range n {
		mark := fmt.Sprintf("%d.000000 ", frameAt(i).Unix())
		if !strings.HasPrefix(text, mark) {
			t.Fatalf("tcpdump %v: packet %d does not start with %q:\n%.300s", args, i, mark, text)
		}
		text = text[len(mark):]
		end := len(text)
		if i+1 < n {
			end = strings.Index(text, "\n"+fmt.Sprintf("%d.000000 ", frameAt(i+1).Unix()))
			if end < 0 {
				t.Fatalf("tcpdump %v: no packet %d", args, i+1)
			}
			end++
		}
		head, body, _ := strings.Cut(text[:end], "\n")
		heads, bodies = append(heads, head), append(bodies, body)
		text = text[end:]
	}
	return heads, bodies
}

// testFrames returns the corpus frames of link type Ethernet, random ones,
// and a few made for the dumps' corner cases (carriage returns, odd
// lengths, a frame with nothing after its Ethernet header).
func testFrames(t *testing.T) [][]byte {
	t.Helper()
	var frames [][]byte
	for _, f := range testutil.FramesOf(t, testutil.LinkEthernet) {
		frames = append(frames, f.Data)
	}
	frames = append(frames, testutil.GenFrames(7, 300)...)
	eth := udpFrame[:14]
	for _, tail := range []string{"a\r\nb\rc\r", "\r\r\n\r", "x\r", "odd", "\r", "", "tab\there space\x7f\x80\xff\n"} {
		frames = append(frames, append(append([]byte{}, eth...), append([]byte("\x45\x00\x00\x14"), tail...)...))
	}
	frames = append(frames, append([]byte{}, eth...))
	return frames
}

// TestDumpsTcpdump compares -A, -AA, -x, -xx, -X and -XX with tcpdump's
// output for the same frames, byte for byte. Where one of tcpdump's
// printers ran out of data (its line ends "[|proto]") tcpdump may dump the
// frame whole, as if doubled — it depends on the printer: lo-capture,
// which has no such printers, does not, and the test takes either there.
func TestDumpsTcpdump(t *testing.T) {
	needTcpdump(t)
	frames := testFrames(t)
	file := writeFrames(t, packet.LinkEthernet, frames)
	for _, flag := range []string{"-A", "-AA", "-x", "-xx", "-X", "-XX"} {
		t.Run(flag, func(t *testing.T) {
			opts, err := parseArgs([]string{flag})
			if err != nil {
				t.Fatal(err)
			}
			tf := newTextFormat(&opts)
			whole := *tf
			whole.dumpLink = true
			heads, bodies := tcpdumpPackets(t, file, len(frames), flag)
			bad, normal := 0, 0
			dump := func(f *textFormat, fr []byte) string {
				data := f.dumpBytes(fr, packet.LinkEthernet)
				if len(data) == 0 && f.dump == dumpASCII {
					return "" // tcpdump prints no newline for nothing
				}
				return string(f.appendDump(nil, data))
			}
			for i, fr := range frames {
				got := dump(tf, fr)
				want := tcpdumpDump(bodies[i], tf.dump == dumpASCII)
				if strings.Contains(heads[i], "[|") {
					if dump(&whole, fr) == want {
						continue
					}
				} else {
					normal++
				}
				if got != want && bad < 5 {
					bad++
					t.Errorf("frame %d (%x):\ngot  %q\nwant %q", i, fr, got, want)
				}
			}
			if normal < len(frames)*3/4 {
				t.Errorf("tcpdump printed only %d of %d frames without [|proto]", normal, len(frames))
			}
		})
	}
}

// tcpdumpDump returns tcpdump's dump of a packet from what it printed
// after the packet's first line: a printer's own hex lines come first
// (for payloads it does not know), then the dump of -x and -X — from its
// last line at offset 0 — or -A's text, after the printer's lines.
func tcpdumpDump(body string, ascii bool) string {
	if ascii {
		for strings.HasPrefix(body, "\t0x") {
			_, body, _ = strings.Cut(body, "\n")
		}
		return body
	}
	if i := strings.LastIndex("\n"+body, "\n\t0x0000:"); i >= 0 {
		body = body[i:]
	}
	return body
}

// TestLinkColumnsTcpdump compares -e's columns with tcpdump -e's link
// header: the MAC addresses and the EtherType's name and value, for the
// test frames and a frame of every EtherType (and of some 802.3 lengths).
func TestLinkColumnsTcpdump(t *testing.T) {
	needTcpdump(t)
	frames := testFrames(t)
	for et := 1400; et <= 0xffff; et++ {
		f := append([]byte{}, udpFrame[:12]...)
		f = binary.BigEndian.AppendUint16(f, uint16(et))
		frames = append(frames, append(f, make([]byte, 46)...))
	}
	file := writeFrames(t, packet.LinkEthernet, frames)
	heads, _ := tcpdumpPackets(t, file, len(frames), "-e")
	re := regexp.MustCompile(`^(\S+) > (\S+), (?:ethertype (.+?) \((0x[0-9a-f]{4})\)|(802\.3), length|(LLC),)`)
	for i, fr := range frames {
		if len(fr) < 14 {
			continue
		}
		m := re.FindStringSubmatch(heads[i])
		if m == nil {
			t.Errorf("frame %d: tcpdump -e printed %q", i, heads[i])
			continue
		}
		want := m[1] + "\t" + m[2] + "\t" + m[3] + " (" + m[4] + ")"
		switch {
		case m[5] != "":
			want = m[1] + "\t" + m[2] + "\t802.3"
		case m[6] != "":
			want = m[1] + "\t" + m[2] + "\tLLC (" + fmt.Sprintf("0x%04x", binary.BigEndian.Uint16(fr[12:14])) + ")"
		}
		if got := string(appendLinkColumns(nil, fr, packet.LinkEthernet, &packet.Info{})); got != want {
			t.Errorf("frame %d: -e columns %q, tcpdump -e says %q", i, got, want)
		}
	}
}

// TestIPVerboseTcpdump compares -v's IP header text with tcpdump -v's, for
// the test frames and an IPv4 and an IPv6 packet of every protocol number.
func TestIPVerboseTcpdump(t *testing.T) {
	needTcpdump(t)
	frames := testFrames(t)
	eth4, eth6 := udpFrame[:14], append(append([]byte{}, udpFrame[:12]...), 0x86, 0xdd)
	for p := range 256 {
		ip4 := []byte{0x45, 0xb9, 0, 28, 0x12, 0x34, 0x20, 0x01, 64, byte(p), 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
		frames = append(frames, append(append(append([]byte{}, eth4...), ip4...), make([]byte, 8)...))
		ip6 := append([]byte{0x6a, 0xb1, 0x23, 0x45, 0, 8, byte(p), 7}, make([]byte, 32)...)
		frames = append(frames, append(append(append([]byte{}, eth6...), ip6...), make([]byte, 8)...))
	}
	file := writeFrames(t, packet.LinkEthernet, frames)
	heads, _ := tcpdumpPackets(t, file, len(frames), "-v")
	re4 := regexp.MustCompile(`IP (?:truncated-ip - \d+ bytes missing! )?(\(tos .*?, length \d+)([,)])`)
	re6 := regexp.MustCompile(`IP6 (?:truncated-ip6 - \d+ bytes missing!)?(\((?:class 0x[0-9a-f]+, )?(?:flowlabel 0x[0-9a-f]+, )?hlim \d+, next-header .*? \(\d+\) payload length: \d+\))`)
	checked := 0
	for i, fr := range frames {
		got := string(appendIPVerbose(nil, fr, packet.LinkEthernet))
		var want string
		if m := re4.FindStringSubmatch(heads[i]); m != nil {
			want = m[1] + ")"
		} else if m := re6.FindStringSubmatch(heads[i]); m != nil {
			want = m[1]
		}
		switch {
		case want == "" && got == "":
		case got != want:
			t.Errorf("frame %d (%x):\n-v   %q\nwant %q\n(tcpdump: %q)", i, fr, got, want, heads[i])
		default:
			checked++
		}
	}
	if checked < 512 {
		t.Errorf("only %d frames compared", checked)
	}
}

// TestTimeFormatsTcpdump compares -t ... -ttttt with tcpdump --nano's
// time stamps on frames with nanosecond times. A delta of a day or more
// is where they differ: tcpdump prints its hours modulo 24, lo-capture
// all of them.
func TestTimeFormatsTcpdump(t *testing.T) {
	needTcpdump(t)
	times := []time.Time{
		time.Date(2026, 12, 2, 1, 13, 27, 648531123, time.UTC),
		time.Date(2026, 12, 2, 1, 13, 27, 648542000, time.UTC),
		time.Date(2026, 12, 2, 3, 0, 0, 1, time.UTC),
		time.Date(2026, 12, 2, 2, 59, 59, 999999999, time.UTC), // before the previous one
		time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC),
	}
	name := filepath.Join(t.TempDir(), "times.pcap")
	var buf bytes.Buffer
	pw, err := pcapfile.NewWriter(&buf, packet.LinkEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range times {
		if err := pw.WritePacket(udpFrame, &packet.Info{Time: tm}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone database")
	}
	for tflag := 2; tflag <= maxTimeFlags; tflag++ {
		flag := "-" + strings.Repeat("t", tflag)
		t.Run(flag, func(t *testing.T) {
			cmd := exec.Command("tcpdump", "-r", name, "-nn", "--nano", flag)
			cmd.Env = append(os.Environ(), "TZ=Europe/Paris")
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			tf := &textFormat{tflag: tflag, loc: loc}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != len(times) {
				t.Fatalf("tcpdump printed %d lines", len(lines))
			}
			for i, tm := range times {
				got := string(tf.appendTime(nil, tm))
				want, _, _ := strings.Cut(strings.TrimSpace(lines[i]), " IP ")
				if h, rest, ok := strings.Cut(got, ":"); ok && (tflag == 3 || tflag == 5) {
					if n, err := strconv.Atoi(h); err == nil && n >= 24 {
						got = fmt.Sprintf("%02d:%s", n%24, rest)
					}
				}
				if got != want {
					t.Errorf("packet %d: %s gives %q, tcpdump %q", i, flag, got, want)
				}
			}
		})
	}
}

// TestReshape checks the table's columns under -t, -e, -q and -v, for the
// header and for a record.
func TestReshape(t *testing.T) {
	info := packet.Info{Time: time.Date(2026, 12, 1, 18, 0, 0, 5, time.UTC), Length: len(udpFrame)}
	var r packet.Record
	if err := packet.Parse(udpFrame, packet.LinkEthernet, &info, &r); err != nil {
		t.Fatal(err)
	}
	cols := strings.Split(strings.TrimSuffix(string(r.AppendLine(nil)), "\n"), "\t")
	hdr := strings.Split(strings.TrimSuffix(packet.TextHeader, "\n"), "\t")
	const ip = "(tos 0x0, ttl 64, id 4660, offset 0, flags [DF], proto UDP (17), length 92)"
	join := func(c ...[]string) string {
		var all []string
		for _, x := range c {
			all = append(all, x...)
		}
		return strings.Join(all, "\t") + "\n"
	}
	without := func(c []string, i int) []string { return append(append([]string{}, c[:i]...), c[i+1:]...) }
	with := func(c []string, i int, v string) []string {
		c = append([]string{}, c...)
		c[i] = v
		return c
	}
	tcol, last := columnIndex(packet.TextHeader, "Time"), len(cols)-1
	info0 := cols[last]
	ipInfo := ip
	if info0 != "-" {
		ipInfo = ip + " " + info0
	}
	tests := []struct {
		args         string
		header, line string
	}{
		{"-t", join(without(hdr, tcol)), join(without(cols, tcol))},
		{"-tt", join(hdr), join(with(cols, tcol, "1796148000.000000005"))},
		{"-q", join(without(hdr, last)), join(without(cols, last))},
		{"-e", join([]string{"S-MAC", "D-MAC", "EtherType"}, hdr), join([]string{"00:00:00:00:00:00", "00:00:00:00:00:00", "IPv4 (0x0800)"}, cols)},
		{"-v", join(hdr), join(with(cols, last, ipInfo))},
		{"-t -q -e", join([]string{"S-MAC", "D-MAC", "EtherType"}, without(without(hdr, last), tcol)),
			join([]string{"00:00:00:00:00:00", "00:00:00:00:00:00", "IPv4 (0x0800)"}, without(without(cols, last), tcol))},
	}
	for _, tc := range tests {
		t.Run(tc.args, func(t *testing.T) {
			opts, err := parseArgs(strings.Fields(tc.args))
			if err != nil {
				t.Fatal(err)
			}
			tf := newTextFormat(&opts)
			if got := string(tf.header(nil)); got != tc.header {
				t.Errorf("header\n%q\nwant\n%q", got, tc.header)
			}
			if got := string(tf.appendRecord(nil, &r, udpFrame, packet.LinkEthernet, &info)); got != tc.line {
				t.Errorf("line\n%q\nwant\n%q", got, tc.line)
			}
		})
	}
	// Without these flags the lines are TextEncoder's.
	tf := newTextFormat(&options{})
	if got, want := string(tf.appendRecord(nil, &r, udpFrame, packet.LinkEthernet, &info)), string(r.AppendLine(nil)); got != want {
		t.Errorf("plain line %q, want %q", got, want)
	}
}

// TestCookedTcpdump compares -e's columns, -X's dumps and -v's IP fields
// with tcpdump's for the Linux cooked (SLL, SLL2) test frames.
func TestCookedTcpdump(t *testing.T) {
	needTcpdump(t)
	for _, link := range []packet.LinkType{packet.LinkLinuxSLL, packet.LinkLinuxSLL2} {
		var frames [][]byte
		for _, f := range testutil.FramesOf(t, uint16(link)) {
			frames = append(frames, f.Data)
		}
		if len(frames) == 0 {
			t.Fatalf("no %v test frames", link)
		}
		file := writeFrames(t, link, frames)
		heads, _ := tcpdumpPackets(t, file, len(frames), "-e")
		re := regexp.MustCompile(` (\S+) (?:ethertype (.+?) \((0x[0-9a-f]{4})\)|(802\.[23])), length`)
		for i, fr := range frames {
			m := re.FindStringSubmatch(heads[i])
			if m == nil {
				t.Errorf("%v frame %d: tcpdump -e printed %q", link, i, heads[i])
				continue
			}
			want := m[1] + "\t-\t" + m[2] + " (" + m[3] + ")"
			if m[4] != "" {
				want = m[1] + "\t-\t" + m[4]
			}
			if got := string(appendLinkColumns(nil, fr, link, &packet.Info{})); got != want {
				t.Errorf("%v frame %d: -e columns %q, tcpdump -e %q", link, i, got, want)
			}
		}
		_, bodies := tcpdumpPackets(t, file, len(frames), "-X")
		heads, _ = tcpdumpPackets(t, file, len(frames), "-X")
		tf := &textFormat{dump: dumpHexASCII}
		for i, fr := range frames {
			got := string(tf.appendDump(nil, tf.dumpBytes(fr, link)))
			want := tcpdumpDump(bodies[i], false)
			// tcpdump also counts an 802.2 LLC header (STP's) as link
			// level, and may dump a truncated frame whole.
			if got != want && !strings.Contains(heads[i], "[|") && !strings.Contains(heads[i], "STP") {
				t.Errorf("%v frame %d: -X\n%q\ntcpdump\n%q", link, i, got, want)
			}
		}
		heads, _ = tcpdumpPackets(t, file, len(frames), "-v")
		for i, fr := range frames {
			got := string(appendIPVerbose(nil, fr, link))
			if got != "" && !strings.Contains(heads[i], strings.TrimSuffix(got, ")")) {
				t.Errorf("%v frame %d: -v %q, tcpdump %q", link, i, got, heads[i])
			}
			if got == "" && strings.Contains(heads[i], "(tos ") {
				t.Errorf("%v frame %d: no -v, tcpdump %q", link, i, heads[i])
			}
		}
	}
}
