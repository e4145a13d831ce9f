package pcapfile

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// lookPcapTool returns the path of an external tool, or skips the test when
// it is not installed. CI installs tcpdump and tshark.
func lookPcapTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
	return path
}

// TestPcapTcpdumpReads checks that tcpdump reads the files Writer
// writes, with each frame's nanosecond time, addresses, ports and flags.
func TestPcapTcpdumpReads(t *testing.T) {
	t.Parallel()
	tcpdump := lookPcapTool(t, "tcpdump")
	for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP, packet.LinkLinuxSLL, packet.LinkLinuxSLL2} {
		t.Run(link.String(), func(t *testing.T) {
			frames := testutil.FramesOf(t, uint16(link))
			path := filepath.Join(t.TempDir(), "frames.pcap")
			if err := os.WriteFile(path, writePcap(t, link, 0, frames), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(tcpdump, "-r", path, "-nn", "-tt", "--time-stamp-precision=nano")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tcpdump: %v\n%s", err, stderr.Bytes())
			}
			wantHeader := fmt.Sprintf("reading from file %s, link-type %s (%s), snapshot length %d", path, link, link.Description(), DefaultSnaplen)
			for line := range strings.Lines(stderr.String()) {
				if strings.TrimSpace(line) != wantHeader && line != "Warning: interface names might be incorrect\n" {
					t.Errorf("tcpdump says %q; want only %q", line, wantHeader)
				}
			}
			// A line a frame, and indented lines after some, such as the
			// hex dump of a frame tcpdump does not decode.
			var lines []string
			for line := range strings.Lines(string(out)) {
				if strings.HasPrefix(line, "\t") && len(lines) > 0 {
					lines[len(lines)-1] += line
				} else {
					lines = append(lines, line)
				}
			}
			if len(lines) != len(frames) {
				t.Fatalf("tcpdump printed %d frames for %d:\n%s", len(lines), len(frames), out)
			}
			for i, f := range frames {
				var r packet.Record
				if err := packet.Parse(f.Data, packet.LinkType(f.Link), &packet.Info{Length: f.Length}, &r); err != nil && !f.Truncated() {
					t.Fatal(err)
				}
				for _, want := range tcpdumpWants(&r, frameTime(i)) {
					if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(lines[i], w) }) {
						t.Errorf("%s: tcpdump printed %q, want one of %q in it", f.Name, lines[i], want)
					}
				}
			}
		})
	}
}

// tcpdumpWants returns what tcpdump -nn -tt --time-stamp-precision=nano
// prints about r captured at ts: a list of strings of which one must be
// in the line, for each thing printed.
func tcpdumpWants(r *packet.Record, ts time.Time) [][]string {
	wants := [][]string{{fmt.Sprintf("%d.%09d ", ts.Unix(), ts.Nanosecond())}}
	if r.Status != packet.StatusOK {
		// Cut short: tcpdump marks it, and prints the ports it has.
		wants = append(wants, []string{" [|"})
		if r.HasPorts() {
			wants = append(wants, []string{fmt.Sprintf("%s.%d > %s.%d: ", r.Src.Addr(), r.Src.Port(), r.Dst.Addr(), r.Dst.Port())})
		}
		return wants
	}
	switch {
	case r.HasPorts():
		// tcpdump joins address and port with a dot, also for IPv6,
		// unless IPv6 extension headers come between.
		wants = append(wants, []string{
			fmt.Sprintf("%s.%d > %s.%d: ", r.Src.Addr(), r.Src.Port(), r.Dst.Addr(), r.Dst.Port()),
			fmt.Sprintf(" %d > %d: ", r.Src.Port(), r.Dst.Port()),
		}, []string{fmt.Sprintf("%s > %s: ", r.Src.Addr(), r.Dst.Addr()), fmt.Sprintf("%s.%d > ", r.Src.Addr(), r.Src.Port())})
	case r.Proto == packet.ProtoARP && r.ARPOp == 1:
		wants = append(wants, []string{fmt.Sprintf("who-has %s tell %s", r.Dst.Addr(), r.Src.Addr())})
	case r.Proto == packet.ProtoARP && r.ARPOp == 2:
		wants = append(wants, []string{fmt.Sprintf("Reply %s is-at ", r.Src.Addr())})
	case r.IPVersion != 0:
		wants = append(wants, []string{fmt.Sprintf("%s > %s: ", r.Src.Addr(), r.Dst.Addr())})
	}
	if r.Proto == packet.ProtoTCP && r.Transport && !r.TCPFlags.Has(packet.TCPAe) { // tcpdump 4.99 ignores AE
		wants = append(wants, []string{"Flags " + r.TCPFlags.String()}, []string{fmt.Sprintf("length %d", r.PayloadLen)})
	}
	if r.Proto == packet.ProtoUDP && r.Transport && !r.Fragment {
		wants = append(wants, []string{fmt.Sprintf("UDP, length %d", r.PayloadLen)})
	}
	return wants
}

// TestPcapTsharkReads checks that tshark reads the files Writer
// writes without complaint and counts their frames. (TestTshark compares
// the fields.)
func TestPcapTsharkReads(t *testing.T) {
	t.Parallel()
	tshark := lookPcapTool(t, "tshark")
	frames := testutil.FramesOf(t, uint16(packet.LinkEthernet))
	path := filepath.Join(t.TempDir(), "frames.pcap")
	if err := os.WriteFile(path, writePcap(t, packet.LinkEthernet, 0, frames), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tshark, "-r", path, "-n", "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.Bytes())
	}
	for line := range strings.Lines(stderr.String()) {
		if !strings.HasPrefix(line, "Running as user") {
			t.Errorf("tshark complains: %s", line)
		}
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(frames) {
		t.Fatalf("tshark printed %d lines for %d frames", len(lines), len(frames))
	}
	for i, f := range frames {
		ts := frameTime(i)
		want := fmt.Sprintf("%d\t%d.%09d\t%d\t%d", i+1, ts.Unix(), ts.Nanosecond(), f.Length, len(f.Data))
		if lines[i] != want {
			t.Errorf("tshark: %q, want %q", lines[i], want)
		}
	}
}

// TestPcapReaderReadsTcpdump captures UDP datagrams on lo with tcpdump,
// in microsecond and in nanosecond files, and reads them back.
func TestPcapReaderReadsTcpdump(t *testing.T) {
	t.Parallel()
	testutil.RequirePrivileged(t)
	tcpdump := lookPcapTool(t, "tcpdump")
	for _, nano := range []bool{false, true} {
		t.Run(fmt.Sprintf("nano=%v", nano), func(t *testing.T) {
			const n = 5
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			port := conn.LocalAddr().(*net.UDPAddr).Port
			path := filepath.Join(t.TempDir(), "lo.pcap")

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			t.Cleanup(cancel)
			// -Z root: write the file as root, into the test's private
			// directory; -U: write each packet as it comes.
			args := []string{"-i", "lo", "-w", path, "-c", fmt.Sprint(n), "-U", "-Z", "root", "-nn",
				"udp", "and", "dst", "port", fmt.Sprint(port)}
			if nano {
				args = append([]string{"--time-stamp-precision=nano"}, args...)
			}
			cmd := exec.CommandContext(ctx, tcpdump, args...)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// tcpdump says "listening on lo" once its filter is in place.
			sc := bufio.NewScanner(stderr)
			var said []string
			ready := false
			for !ready && sc.Scan() {
				ready = strings.Contains(sc.Text(), "listening on")
				said = append(said, sc.Text())
			}
			if !ready {
				cmd.Wait()
				t.Fatalf("tcpdump did not start: %s", strings.Join(said, "\n"))
			}
			go io.Copy(io.Discard, stderr)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()

			// Send until tcpdump has its n packets, at most 20 times n.
			payload := []byte("purebpf pcap reader test")
			sent := 0
		send:
			for ; sent < 20*n; sent++ {
				if _, err := conn.WriteToUDP(payload, conn.LocalAddr().(*net.UDPAddr)); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("tcpdump: %v", err)
					}
					break send
				case <-time.After(50 * time.Millisecond):
				}
			}
			if sent == 20*n {
				if err := <-done; err != nil {
					t.Fatalf("tcpdump: %v", err)
				}
			}
			end := time.Now()

			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			pr, err := NewReader(bufio.NewReader(f))
			if err != nil {
				t.Fatal(err)
			}
			if pr.Nanosecond() != nano || pr.LinkType() != packet.LinkEthernet {
				t.Errorf("Nanosecond %v packet.LinkType %v, want %v EN10MB", pr.Nanosecond(), pr.LinkType(), nano)
			}
			var buf []byte
			count := 0
			for {
				var info packet.Info
				buf, err = pr.ReadPacket(buf, &info)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				count++
				var r packet.Record
				if err := packet.Parse(buf, pr.LinkType(), &info, &r); err != nil {
					t.Fatalf("packet %d: %v", count, err)
				}
				if r.Proto != packet.ProtoUDP || r.Dst != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)) ||
					r.PayloadLen != len(payload) || r.Length != 14+20+8+len(payload) || r.CapLen != r.Length {
					t.Errorf("packet %d: %s", count, r.String())
				}
				if r.Time.Before(start.Add(-time.Second)) || r.Time.After(end.Add(time.Second)) {
					t.Errorf("packet %d at %v, outside the capture's %v to %v", count, r.Time, start, end)
				}
				if !nano && r.Time.Nanosecond()%1000 != 0 {
					t.Errorf("packet %d: %v has nanoseconds in a microsecond file", count, r.Time)
				}
			}
			if count != n {
				t.Errorf("read %d packets, want %d", count, n)
			}
		})
	}
}
