package main

import (
	"encoding/json"
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
)

// TestReadMatchesTcpdump runs lo-capture -r and tcpdump -r on one file of
// varied frames for every expression of the test list: lo-capture, whose
// filter runs in sockfilter/vm, passes the frames tcpdump passes. It needs
// no privileges.
func TestReadMatchesTcpdump(t *testing.T) {
	needTcpdump(t)
	frames := testFrames(t)
	file := writeFrames(t, packet.LinkEthernet, frames)
	bin := build(t)
	compared := 0
	for _, expr := range testutil.Expressions(t) {
		out, err := exec.Command("tcpdump", "-r", file, "-tt", "-nn", "--", expr).Output()
		if err != nil {
			continue // an expression tcpdump takes for other link types
		}
		var want []int
		for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
			sec, _, ok := strings.Cut(line, ".")
			if n, err := strconv.Atoi(sec); ok && err == nil {
				want = append(want, n-1)
			}
		}
		cmd := exec.Command(bin, "-r", file, "-json", "-f", expr)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		ours, err := cmd.Output()
		if err != nil {
			t.Errorf("%q: %v: %s", expr, err, stderr.String())
			continue
		}
		var got []int
		for line := range strings.SplitSeq(strings.TrimSpace(string(ours)), "\n") {
			if line == "" {
				continue
			}
			var r struct{ Time time.Time }
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%q: %v: %s", expr, err, line)
			}
			got = append(got, int(r.Time.Unix())-1)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q: lo-capture -r passes %v, tcpdump -r %v", expr, got, want)
		}
		compared++
	}
	if compared < 100 {
		t.Errorf("only %d expressions compared", compared)
	}
}

// TestReadUnprivileged reads a file as nobody, with no capabilities: -r
// needs none, as tcpdump -r needs none.
func TestReadUnprivileged(t *testing.T) {
	testutil.RequirePrivileged(t) // to drop privileges, one needs them
	dir, err := os.MkdirTemp("", "lo-capture-read")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(udpCapture(t, 4, 20))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "in.pcap")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := testutil.NobodyCommand(t, build(t), "-r", file, "-json", "udp")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("-r as nobody: %v: %s", err, stderr.String())
	}
	if n := strings.Count(stdout.String(), "\n"); n != 4 || !strings.Contains(stderr.String(), "4 records, 4 frames read from file") {
		t.Errorf("%d records; stderr %q", n, stderr.String())
	}
}

// TestReadPcapng reads a pcapng file made by editcap from a pcap file:
// the same records as from the pcap file.
func TestReadPcapng(t *testing.T) {
	if _, err := exec.LookPath("editcap"); err != nil {
		t.Skip("editcap is not installed (apt-get install wireshark-common)")
	}
	in := udpCapture(t, 5, 20)
	ng := filepath.Join(t.TempDir(), "in.pcapng")
	if out, err := exec.Command("editcap", "-F", "pcapng", in, ng).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v %s", err, out)
	}
	_, a, _ := runLC(t, nil, "-r", in, "-json")
	code, b, stderr := runLC(t, nil, "-r", ng, "-json")
	if code != 0 || a != b || strings.Count(b, "\n") != 5 {
		t.Errorf("-r pcapng: status %d, stderr %q\n%s\nwant\n%s", code, stderr, b, a)
	}
}

// TestCountOnly compares --count with tcpdump --count.
func TestCountOnly(t *testing.T) {
	needTcpdump(t)
	in := udpCapture(t, 7, 20)
	code, stdout, stderr := runLC(t, nil, "-r", in, "--count", "udp")
	want, err := exec.Command("tcpdump", "-r", in, "--count", "udp").Output()
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || stdout != string(want) || stdout != "7 packets\n" {
		t.Errorf("--count: status %d, %q (tcpdump %q), stderr %q", code, stdout, want, stderr)
	}
}

// TestReadCookedMatchesTcpdump reads files of Linux cooked frames (what
// tcpdump -i any writes) with lo-capture -r and tcpdump -r: for
// expressions on IP and on the cooked header (its protocol, direction,
// interface index and bytes), the same frames pass.
func TestReadCookedMatchesTcpdump(t *testing.T) {
	needTcpdump(t)
	exprs := []string{"", "ip", "ip6", "udp", "tcp", "tcp or udp", "host 127.0.0.1", "port 8080 or port 41021", "not udp", "ip[8] = 64", "tcp[tcpflags] & tcp-syn != 0",
		"arp", "not ip", "not ip and not ip6", "inbound", "outbound", "outbound and tcp", "ether proto 0x86dd", "ether proto 0x8100", "ether proto 4", "link[0:2] != 0", "len > 80"}
	for _, link := range []packet.LinkType{packet.LinkLinuxSLL, packet.LinkLinuxSLL2} {
		exprs := exprs
		if link == packet.LinkLinuxSLL2 {
			exprs = append(exprs, "ifindex 1", "ifindex 2 or arp")
		}
		var frames [][]byte
		for _, f := range testutil.FramesOf(t, uint16(link)) {
			frames = append(frames, f.Data)
		}
		file := writeFrames(t, link, frames)
		for _, expr := range exprs {
			out, err := exec.Command("tcpdump", "-r", file, "-tt", "-nn", "--", expr).Output()
			if err != nil {
				t.Fatalf("tcpdump %q: %v", expr, err)
			}
			var want []int
			for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
				if sec, _, ok := strings.Cut(line, "."); ok {
					n, _ := strconv.Atoi(sec)
					want = append(want, n-1)
				}
			}
			code, stdout, stderr := runLC(t, nil, "-r", file, "-json", "-f", expr)
			if code != 0 {
				t.Fatalf("%v %q: status %d: %s", link, expr, code, stderr)
			}
			var got []int
			for line := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
				var r struct{ Time time.Time }
				if line != "" && json.Unmarshal([]byte(line), &r) == nil {
					got = append(got, int(r.Time.Unix())-1)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%v %q: lo-capture -r passes %v, tcpdump -r %v", link, expr, got, want)
			}
		}
	}
}
