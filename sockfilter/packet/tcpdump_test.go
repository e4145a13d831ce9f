package packet_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// TestTcpdumpText checks AppendLine's tcpdump conventions against tcpdump
// reading the test frames: the mark that ends the line of a frame cut
// short ("[|tcp]", "[|ip]", "[|hbhopt]", ...) and the length it prints
// ("length N") for TCP, UDP, ICMP and ICMPv6. It skips where tcpdump is
// not installed; CI installs it.
func TestTcpdumpText(t *testing.T) {
	t.Parallel()
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skipf("tcpdump not installed: %v", err)
	}
	mark := regexp.MustCompile(`\[\|[a-z0-9]+\]$`)
	length := regexp.MustCompile(`length [0-9]+`)
	checked := map[string]int{}
	for _, link := range []uint16{testutil.LinkEthernet, testutil.LinkRawIP, testutil.LinkLinuxSLL, testutil.LinkLinuxSLL2} {
		frames := testutil.FramesOf(t, link)
		path := filepath.Join(t.TempDir(), "frames.pcap")
		if err := os.WriteFile(path, framesPcap(t, frames), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(tcpdump, "-r", path, "-n")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tcpdump: %v\n%s", err, stderr.Bytes())
		}
		var lines []string // one a frame, with its hex dump lines, if any, dropped
		for line := range strings.Lines(string(out)) {
			if !strings.HasPrefix(line, "\t") {
				lines = append(lines, strings.TrimRight(line, " \n"))
			}
		}
		if len(lines) != len(frames) {
			t.Fatalf("tcpdump printed %d lines for %d frames:\n%s", len(lines), len(frames), out)
		}
		for i, f := range frames {
			var r packet.Record
			packet.Parse(f.Data, packet.LinkType(f.Link), &packet.Info{Length: f.Length}, &r)
			ours := strings.TrimSuffix(string(r.AppendLine(nil)), "\n")
			theirs := lines[i]
			if m := mark.FindString(ours); m != "" || r.Status != packet.StatusOK {
				if got := mark.FindString(theirs); got != m {
					t.Errorf("%s: mark %q, tcpdump's %q in %q", f.Name, m, got, theirs)
				}
				checked["mark"]++
				continue
			}
			if m := length.FindString(ours); m != "" {
				if !strings.Contains(theirs, m) {
					t.Errorf("%s: %q, tcpdump: %q", f.Name, m, theirs)
				}
				checked["length"]++
			}
		}
	}
	t.Logf("checked %v", checked)
	if checked["mark"] < 8 || checked["length"] < 15 {
		t.Errorf("checked %d marks and %d lengths: too few frames", checked["mark"], checked["length"])
	}
}
