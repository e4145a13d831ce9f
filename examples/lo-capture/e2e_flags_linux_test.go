package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
)

// TestListInterfaces compares -D with tcpdump -D in a namespace with lo
// and a veth pair, one end up and one down: the same interfaces (any
// among them), each with the same flags and connection status.
func TestListInterfaces(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	ns.IP(t, "link", "add", "pbd0", "type", "veth", "peer", "name", "pbd1")
	ns.IP(t, "link", "set", "pbd0", "up")
	ours := ns.Exec(t, build(t), "-D")
	theirs := ns.Exec(t, "tcpdump", "-D")
	lineRE := regexp.MustCompile(`^(\d+)\.(\S+)(?: \((.*)\))? \[(.*)\]$`)
	flags := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(theirs), "\n") {
		if m := lineRE.FindStringSubmatch(line); m != nil {
			flags[m[2]] = m[4]
		}
	}
	seen := 0
	for line := range strings.SplitSeq(strings.TrimSpace(ours), "\n") {
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("-D line %q", line)
			continue
		}
		want, ok := flags[m[2]]
		if !ok {
			t.Errorf("-D lists %s, tcpdump -D does not:\n%s", m[2], theirs)
			continue
		}
		seen++
		if m[4] != want {
			t.Errorf("%s: [%s], tcpdump -D says [%s]", m[2], m[4], want)
		}
		if m[2] == "lo" && (m[1] != "1" || m[3] != "link-type EN10MB, Ethernet") {
			t.Errorf("-D line %q, want lo's index 1 and its link type", line)
		}
	}
	if seen != 4 {
		t.Errorf("-D listed %d of any, lo, pbd0 and pbd1:\n%s", seen, ours)
	}
	// -i takes the number -D prints.
	if out := ns.Exec(t, build(t), "-L", "-i", "1"); !strings.HasPrefix(out, "Data link types for lo:\n") {
		t.Errorf("-L -i 1: %q", out)
	}
}

// TestListLinkTypes compares -L's link type with tcpdump -L's.
func TestListLinkTypes(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	ours := strings.Split(ns.Exec(t, build(t), "-L", "-i", "lo"), "\n")
	theirs := strings.Split(ns.Exec(t, "tcpdump", "-L", "-i", "lo"), "\n")
	if len(ours) < 2 || len(theirs) < 2 || ours[1] != theirs[1] || !strings.HasPrefix(theirs[0], "Data link types for lo") {
		t.Errorf("-L:\n%s\ntcpdump -L:\n%s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
	}
}

// TestDirections checks -Q and -both on lo, where each datagram is sent
// and received, beside tcpdump -Q: both show each once for in and for
// inout (the outgoing copy dropped), the default being inout; for out,
// lo-capture shows the sent copy and libpcap none; -both keeps both
// copies.
func TestDirections(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, tc := range []struct {
		args         []string
		want, theirs int // theirs: tcpdump's, or -1 for no tcpdump run
	}{
		{nil, 3, 3},
		{[]string{"-Q", "in"}, 3, 3},
		{[]string{"-Q", "inout"}, 3, 3},
		{[]string{"-Q", "out"}, 3, 0},
		{[]string{"-both"}, 6, -1},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ns := testutil.NewNetNS(t)
			flow := newUDPFlow(t, ns)
			dir := t.TempDir()
			p := startNS(t, ns, nil, "lo-capture", append(tc.args, "-w", filepath.Join(dir, "ours"), flow.filter())...)
			var td *nsProc
			if tc.theirs >= 0 {
				td = startNS(t, ns, nil, "tcpdump", append(append([]string{"-i", "lo"}, tc.args...), "-w", filepath.Join(dir, "theirs"), flow.filter())...)
			}
			flow.send(t, 3, 16)
			p.waitCaptured(t, tc.want)
			if tc.theirs > 0 {
				td.waitCaptured(t, tc.theirs)
			}
			time.Sleep(100 * time.Millisecond) // no more than that
			for _, q := range []*nsProc{p, td} {
				if q != nil {
					q.signal(t, syscall.SIGINT)
					q.wait(t, 10*time.Second)
				}
			}
			if got := len(tcpdumpRead(t, filepath.Join(dir, "ours"))); got != tc.want {
				t.Errorf("lo-capture: %d frames, want %d", got, tc.want)
			}
			if td != nil {
				if got := len(tcpdumpRead(t, filepath.Join(dir, "theirs"))); got != tc.theirs {
					t.Errorf("tcpdump: %d frames, want %d", got, tc.theirs)
				}
			}
		})
	}
}

// TestVethDirections captures on one end of a veth pair between two
// namespaces, beside tcpdump: by default both directions — the ARP
// request and the datagrams sent, the ARP reply received — and with -Q
// in or -Q out one of them; the files read back the same as tcpdump's.
func TestVethDirections(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, q := range []string{"", "in", "out"} {
		t.Run("-Q "+q, func(t *testing.T) {
			a, b := testutil.NewNetNS(t), testutil.NewNetNS(t)
			a.IP(t, "link", "add", "pbv0", "type", "veth", "peer", "name", "pbv1", "netns", b.Name)
			a.IP(t, "addr", "add", "10.200.0.1/24", "dev", "pbv0")
			b.IP(t, "addr", "add", "10.200.0.2/24", "dev", "pbv1")
			a.IP(t, "link", "set", "pbv0", "up")
			b.IP(t, "link", "set", "pbv1", "up")
			a.WaitTransmit(t, "pbv0")
			b.WaitTransmit(t, "pbv1")
			var args []string
			if q != "" {
				args = []string{"-Q", q}
			}
			dir := t.TempDir()
			ours, theirs := filepath.Join(dir, "ours"), filepath.Join(dir, "theirs")
			filter := "arp or udp port 9"
			lc := startNS(t, a, nil, "lo-capture", append(append([]string{"-i", "pbv0"}, args...), "-w", ours, filter)...)
			td := startNS(t, a, nil, "tcpdump", append(append([]string{"-i", "pbv0"}, args...), "-w", theirs, filter)...)
			var c net.Conn
			a.Do(t, func() {
				var err error
				if c, err = net.Dial("udp4", "10.200.0.2:9"); err != nil {
					t.Fatal(err)
				}
			})
			defer c.Close()
			for range 3 {
				c.Write([]byte("to the other side"))
				time.Sleep(50 * time.Millisecond)
			}
			want := map[string]int{"": 5, "in": 1, "out": 4}[q]
			lc.waitCaptured(t, want)
			td.waitCaptured(t, want)
			for _, p := range []*nsProc{lc, td} {
				p.signal(t, syscall.SIGINT)
				p.wait(t, 10*time.Second)
			}
			x, y := tcpdumpRead(t, ours, "-t"), tcpdumpRead(t, theirs, "-t")
			if !slices.Equal(x, y) || len(y) == 0 {
				t.Errorf("lo-capture's file:\n%s\ntcpdump's:\n%s", strings.Join(x, "\n"), strings.Join(y, "\n"))
			}
		})
	}
}

// TestPromiscuous checks that lo-capture puts the interface in
// promiscuous mode, as tcpdump does, and not with -p.
func TestPromiscuous(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, tc := range []struct {
		args []string
		want string
	}{{nil, "promiscuity 1 "}, {[]string{"-p"}, "promiscuity 0 "}} {
		ns := testutil.NewNetNS(t)
		p := startNS(t, ns, nil, "lo-capture", tc.args...)
		if out := ns.IP(t, "-d", "link", "show", "lo"); !strings.Contains(out, tc.want) {
			t.Errorf("%v: ip -d link show lo:\n%s", tc.args, out)
		}
		p.signal(t, syscall.SIGINT)
		p.wait(t, 10*time.Second)
	}
}

// TestBufferSize captures with -B 1024, a ring of 8 blocks of 128 KiB,
// and checks the mapping of that size in the process.
func TestBufferSize(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	flow := newUDPFlow(t, ns)
	p := startNS(t, ns, nil, "lo-capture", "-B", "1024", flow.filter())
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for line := range strings.SplitSeq(string(maps), "\n") {
		var lo, hi uint64
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil && hi-lo == 1<<20 && strings.Contains(line, "socket:") {
			found = true
		}
	}
	if !found {
		t.Errorf("no 1 MiB ring mapped:\n%s", maps)
	}
	flow.send(t, 2, 16)
	p.waitCaptured(t, 2)
}

// TestFilterFile checks -F: the expression from a file, with a comment,
// compiles to the program the same expression as arguments gives.
func TestFilterFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "filter")
	if err := os.WriteFile(file, []byte("# web traffic\ntcp port 80 # or 8080\n and not host 10.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, a, _ := runLC(t, nil, "-d", "-F", file)
	_, b, _ := runLC(t, nil, "-d", "tcp", "port", "80", "and", "not", "host", "10.0.0.1")
	if a == "" || a != b {
		t.Errorf("-d -F printed\n%s\nthe arguments give\n%s", a, b)
	}
	_, _, stderr := runLC(t, nil, "-d", "-F", file, "udp")
	if !strings.Contains(stderr, "warning: the filter comes from -F") {
		t.Errorf("no warning for the ignored arguments: %q", stderr)
	}
}

// TestFormatsTcpdump reads one file with lo-capture -r and tcpdump -r
// under the output flags and compares what they print: -X's dumps,
// -e's columns, -tttt's times, -v's IP fields; -q drops Info.
func TestFormatsTcpdump(t *testing.T) {
	testutil.RequirePrivileged(t) // -r runs the filter in the kernel
	in := udpCapture(t, 4, 30)
	code, stdout, stderr := runLC(t, nil, "-r", in, "-X", "-e", "-tttt", "-v", "udp")
	if code != 0 {
		t.Fatalf("status %d: %s", code, stderr)
	}
	cmd := exec.Command("tcpdump", "-nn", "--nano", "-r", in, "-X", "-e", "-tttt", "-v", "udp")
	cmd.Env = append(os.Environ(), "TZ="+os.Getenv("TZ"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var ourDump, theirDump []string
	var ourLines []string
	for l := range strings.SplitSeq(stdout, "\n") {
		if strings.HasPrefix(l, "\t0x") {
			ourDump = append(ourDump, l)
		} else if l != "" {
			ourLines = append(ourLines, l)
		}
	}
	var theirHeads []string
	for l := range strings.SplitSeq(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "\t0x"):
			theirDump = append(theirDump, l)
		case l != "" && !strings.HasPrefix(l, " "):
			theirHeads = append(theirHeads, l)
		}
	}
	if !slices.Equal(ourDump, theirDump) || len(ourDump) == 0 {
		t.Errorf("-X dumps differ:\n%s\n--\n%s", strings.Join(ourDump, "\n"), strings.Join(theirDump, "\n"))
	}
	header := strings.Split(ourLines[0], "\t")
	if !slices.Equal(header[:3], []string{"S-MAC", "D-MAC", "EtherType"}) || len(ourLines) != 5 || len(theirHeads) != 4 {
		t.Fatalf("lines:\n%s\n--\n%s", strings.Join(ourLines, "\n"), strings.Join(theirHeads, "\n"))
	}
	timeCol := slices.Index(header, "Time")
	for i, l := range ourLines[1:] {
		cols := strings.Split(l, "\t")
		want := theirHeads[i]
		prefix := cols[timeCol] + " " + cols[0] + " > " + cols[1] + ", ethertype " + cols[2]
		if !strings.HasPrefix(want, prefix) {
			t.Errorf("line %d: %q does not start as tcpdump's %q", i, prefix, want)
		}
		ip := regexp.MustCompile(`^\(tos .*?, length \d+\)`).FindString(cols[len(cols)-1])
		if ip == "" || !strings.Contains(want, ": "+strings.TrimSuffix(ip, ")")) {
			t.Errorf("line %d: -v %q, tcpdump %q", i, ip, want)
		}
	}
	_, stdout, _ = runLC(t, nil, "-r", in, "-q", "-t", "udp")
	if first, _, _ := strings.Cut(stdout, "\n"); strings.Contains(first, "Info") || strings.Contains(first, "Time") {
		t.Errorf("-q -t header %q", first)
	}
}

// TestVerboseGot checks -v with -w: the count of packets captured each
// second on standard error, as tcpdump -v -w reports it.
func TestVerboseGot(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	flow := newUDPFlow(t, ns)
	file := filepath.Join(t.TempDir(), "f.pcap")
	lc := startNS(t, ns, nil, "lo-capture", "-v", "-w", file, flow.filter())
	td := startNS(t, ns, nil, "tcpdump", "-i", "lo", "-v", "-w", file+".tcpdump", flow.filter())
	flow.send(t, 3, 16)
	for _, p := range []*nsProc{lc, td} {
		p.waitStderr(t, "Got 3\r")
		p.signal(t, syscall.SIGINT)
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Errorf("%s: status %d", p.name, code)
		}
	}
	if !strings.Contains(lc.stderr.String(), "Got 3\r3 packets captured\n") {
		t.Errorf("stderr %q", lc.stderr.String())
	}
}

// TestAnyInterface captures on "any" beside tcpdump -i any: both write
// LINUX_SLL2 files that tcpdump reads the same, each packet on lo once;
// the records name the interface; promiscuous mode is refused with
// tcpdump's warning.
func TestAnyInterface(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	flow := newUDPFlow(t, ns)
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "ours"), filepath.Join(dir, "theirs")
	lc := startNS(t, ns, nil, "lo-capture", "-i", "any", "-w", ours, "--print", "-json", flow.filter())
	td := startNS(t, ns, nil, "tcpdump", "-i", "any", "-w", theirs, flow.filter())
	for _, want := range []string{"link-type LINUX_SLL2 (Linux cooked v2)", "lo-capture: warning: any: that device does not support promiscuous mode"} {
		if !strings.Contains(lc.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, lc.stderr.String())
		}
	}
	flow.send(t, 4, 16)
	lc.waitCaptured(t, 4)
	td.waitCaptured(t, 4)
	for _, p := range []*nsProc{lc, td} {
		p.signal(t, syscall.SIGINT)
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Errorf("%s: status %d: %s", p.name, code, p.stderr.String())
		}
	}
	frames, _ := readPcap(t, ours)
	x, y := tcpdumpRead(t, ours, "-t"), tcpdumpRead(t, theirs, "-t")
	if len(frames) != 4 || !slices.Equal(x, y) {
		t.Errorf("lo-capture's file:\n%s\ntcpdump's:\n%s", strings.Join(x, "\n"), strings.Join(y, "\n"))
	}
	for line := range strings.SplitSeq(strings.TrimSpace(lc.stdout.String()), "\n") {
		if !strings.Contains(line, `"proto":"UDP"`) {
			t.Errorf("record %s", line)
		}
	}
}
