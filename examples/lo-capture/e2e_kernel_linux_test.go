package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/purebpf/purebpf/internal/testutil"
)

// The tests of -k, -flows and -ipfix: records and flows built in the
// kernel, checked against a capture of frames and against what the test
// sent, and IPFIX checked with nfdump's collector and tshark's dissector.

// udpSenders are UDP sockets in a namespace, each with a port of its own,
// sending to one sink there.
type udpSenders struct {
	sink  *net.UDPConn
	conns []*net.UDPConn
}

func newUDPSenders(t *testing.T, ns *testutil.NetNS, n int) *udpSenders {
	t.Helper()
	var s udpSenders
	ns.Do(t, func() {
		var err error
		if s.sink, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.sink.Close() })
		go io.Copy(io.Discard, s.sink)
		for range n {
			c, err := net.DialUDP("udp4", nil, s.sink.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			s.conns = append(s.conns, c)
		}
	})
	return &s
}

func (s *udpSenders) port() int { return s.sink.LocalAddr().(*net.UDPAddr).Port }

func (s *udpSenders) sport(i int) int { return s.conns[i].LocalAddr().(*net.UDPAddr).Port }

// send sends n datagrams of size bytes from sender i.
func (s *udpSenders) send(t *testing.T, i, n, size int) {
	t.Helper()
	b := bytes.Repeat([]byte{'x'}, size)
	for range n {
		if _, err := s.conns[i].Write(b); err != nil {
			t.Fatal(err)
		}
	}
}

// udpWire is the length on lo's wire of a UDP datagram over IPv4 with
// size bytes of payload: Ethernet, IPv4 and UDP headers.
func udpWire(size int) int { return 14 + 20 + 8 + size }

// tcpExchange opens a TCP connection in ns to a server there, sends msgs
// and closes it, and waits for the server to have read everything and
// closed its side; it returns the server's port.
func tcpExchange(t *testing.T, ns *testutil.NetNS, msgs ...string) int {
	t.Helper()
	var ln net.Listener
	var c net.Conn
	ns.Do(t, func() {
		var err error
		if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
	})
	done := make(chan error, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(io.Discard, s)
		s.Close()
		done <- err
	}()
	ns.Do(t, func() {
		var err error
		if c, err = net.Dial("tcp4", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
	})
	for _, m := range msgs {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // a segment each
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return ln.Addr().(*net.TCPAddr).Port
}

// stop stops a capture with SIGINT and returns its standard output,
// failing unless it exits 0.
func (p *nsProc) stop(t *testing.T) string {
	t.Helper()
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("%s exit status %d; stderr:\n%s", p.name, code, p.stderr.String())
	}
	return p.stdout.String()
}

// withoutTime returns the lines of records with their time stamps taken
// out — two sockets stamp a packet each at its own moment — sorted.
func withoutTime(t *testing.T, out string, asJSON bool) []string {
	t.Helper()
	var lines []string
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		if asJSON {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			delete(m, "time")
			b, _ := json.Marshal(m)
			line = string(b)
		} else if cols := strings.Split(line, "\t"); len(cols) > 6 {
			line = strings.Join(slices.Delete(cols, 5, 6), "\t") // the Time column
		}
		lines = append(lines, line)
	}
	slices.Sort(lines)
	return lines
}

// TestKernelRecords checks -k against the capture of frames on the same
// traffic — UDP datagrams and a TCP connection on lo — in both output
// formats: the same records, time stamps aside, and the counts at the
// end.
func TestKernelRecords(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	udp := newUDPSenders(t, ns, 2)
	// The ports of the namespace's TCP are all the test's.
	filter := fmt.Sprintf("udp dst port %d or tcp", udp.port())
	var procs []*nsProc
	for _, args := range [][]string{{"-json"}, {"-k", "-json"}, {}, {"-k"}} {
		procs = append(procs, startNS(t, ns, nil, "lo-capture", append(args, filter)...))
	}
	udp.send(t, 0, 10, 20)
	udp.send(t, 1, 5, 300)
	tcpExchange(t, ns, "hello", "world", strings.Repeat("z", 1000))
	// The frames' capture first: how many it saw is what -k must see.
	time.Sleep(200 * time.Millisecond)
	n := procs[0].waitCaptured(t, 15+6)
	for _, p := range procs[1:] {
		if got := p.waitCaptured(t, n); got != n {
			t.Errorf("%v captured %d, the frames' capture %d", p.cmd.Args, got, n)
		}
	}
	var outs []string
	for _, p := range procs {
		outs = append(outs, p.stop(t))
	}
	for i, asJSON := range []bool{true, false} {
		frames, records := withoutTime(t, outs[2*i], asJSON), withoutTime(t, outs[2*i+1], asJSON)
		if len(frames) < 21 || !slices.Equal(frames, records) {
			t.Errorf("json %v: the records differ:\nframes':\n%s\n-k's:\n%s", asJSON, strings.Join(frames, "\n"), strings.Join(records, "\n"))
		}
	}
	want := fmt.Sprintf("%d packets captured\n%d packets received by filter\n0 packets dropped by kernel (ring buffer full)\n%d records, %d frames received by filter, 0 dropped by kernel\n", n, n, n, n)
	for _, p := range []*nsProc{procs[1], procs[3]} {
		if !strings.HasSuffix(p.stderr.String(), want) {
			t.Errorf("%v's counts:\n%s\nwant:\n%s", p.cmd.Args, p.stderr.String(), want)
		}
	}
}

// flowLine is a -flows -json line.
type flowLine struct {
	Report  string  `json:"report"`
	Src     string  `json:"src"`
	Sport   *int    `json:"sport"`
	Dst     string  `json:"dst"`
	Dport   *int    `json:"dport"`
	Proto   string  `json:"proto"`
	Packets uint64  `json:"packets"`
	Bytes   uint64  `json:"bytes"`
	Start   string  `json:"start"`
	End     string  `json:"end"`
	BPS     float64 `json:"bps"`
	raw     map[string]any
}

func flowLines(t *testing.T, out string) []flowLine {
	t.Helper()
	var lines []flowLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l flowLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		if err := json.Unmarshal(sc.Bytes(), &l.raw); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		for _, ts := range []string{l.Start, l.End} {
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Errorf("%q: %v", sc.Text(), err)
			}
		}
		lines = append(lines, l)
	}
	return lines
}

// TestFlowsJSON sends known numbers of datagrams in three flows, in two
// bursts, under -flows -json, and checks that the interval lines add up
// to exactly what each flow sent, and so do the totals.
func TestFlowsJSON(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	udp := newUDPSenders(t, ns, 3)
	lc := startNS(t, ns, nil, "lo-capture", "-flows", "300ms", "-json", "-f", "udp dst port "+strconv.Itoa(udp.port()))
	sent := []struct{ n, size int }{{7, 100}, {3, 500}, {40, 10}}
	for i, s := range sent {
		udp.send(t, i, s.n/2, s.size)
	}
	time.Sleep(700 * time.Millisecond) // an interval or two
	for i, s := range sent {
		udp.send(t, i, s.n-s.n/2, s.size)
	}
	time.Sleep(400 * time.Millisecond)
	lines := flowLines(t, lc.stop(t))
	type sum struct{ packets, bytes uint64 }
	intervals, totals := map[int]sum{}, map[int]sum{}
	reports := 0
	for _, l := range lines {
		if l.Proto != "UDP" || l.Src != "127.0.0.1" || l.Dst != "127.0.0.1" || l.Sport == nil || l.Dport == nil || *l.Dport != udp.port() {
			t.Errorf("a flow not sent: %+v", l)
			continue
		}
		m := intervals
		if l.Report == "total" {
			m = totals
		} else {
			reports++
		}
		s := m[*l.Sport]
		s.packets += l.Packets
		s.bytes += l.Bytes
		m[*l.Sport] = s
	}
	for i, s := range sent {
		want := sum{uint64(s.n), uint64(s.n * udpWire(s.size))}
		if got := intervals[udp.sport(i)]; got != want {
			t.Errorf("flow %d: the intervals have %+v, want %+v", i, got, want)
		}
		if got := totals[udp.sport(i)]; got != want {
			t.Errorf("flow %d: the totals have %+v, want %+v", i, got, want)
		}
	}
	if reports < 6 {
		t.Errorf("%d interval lines, want the three flows in two intervals at least", reports)
	}
	wantCounts := "50 packets counted in "
	if !strings.Contains(lc.stderr.String(), wantCounts) || !strings.Contains(lc.stderr.String(), "50 records, 50 frames received by filter, 0 dropped by kernel\n") {
		t.Errorf("counts:\n%s", lc.stderr.String())
	}
}

// TestFlowsCount checks that -flows with -c N stops by itself after N
// intervals, with the totals, and that the table's rows are the flows
// sent, largest first.
func TestFlowsCount(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	udp := newUDPSenders(t, ns, 2)
	lc := startNS(t, ns, nil, "lo-capture", "-flows", "400ms", "-c", "2", "udp dst port "+strconv.Itoa(udp.port()))
	udp.send(t, 0, 4, 100)
	udp.send(t, 1, 2, 1000)
	if code := lc.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, lc.stderr.String())
	}
	out := lc.stdout.String()
	if got := strings.Count(out, "flows on lo, "); got != 3 {
		t.Errorf("%d reports, want 2 intervals and the totals:\n%s", got, out)
	}
	_, totals, _ := strings.Cut(out, "totals over")
	want := fmt.Sprintf("UDP    127.0.0.1  %-6d  127.0.0.1    %-6d        2  %5d", udp.sport(1), udp.port(), 2*udpWire(1000))
	want2 := fmt.Sprintf("UDP    127.0.0.1  %-6d  127.0.0.1    %-6d        4  %5d", udp.sport(0), udp.port(), 4*udpWire(100))
	i, j := strings.Index(totals, want), strings.Index(totals, want2)
	if i < 0 || j < 0 || i > j {
		t.Errorf("totals: want\n%s\n%s\nin that order, in:\n%s", want, want2, totals)
	}
}

// TestFlowsTerminal runs -flows with its standard output on a
// pseudo-terminal: each interval's report clears the screen and starts at
// the top, and the totals come after the last, uncleared.
func TestFlowsTerminal(t *testing.T) {
	testutil.RequirePrivileged(t)
	master, pty := openPTYPair(t)
	if pty == nil {
		t.Skip("no pseudo-terminal")
	}
	setPTYSize(t, pty, 24, 100)
	var buf lockedBuffer
	go io.Copy(&buf, master)
	ns := testutil.NewNetNS(t)
	udp := newUDPSenders(t, ns, 1)
	lc := startNS(t, ns, pty, "lo-capture", "-flows", "200ms", "-c", "3", "udp dst port "+strconv.Itoa(udp.port()))
	udp.send(t, 0, 5, 10)
	if code := lc.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, lc.stderr.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "totals over") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := buf.String()
	screens := strings.Split(out, clearHome)
	if len(screens) != 4 || strings.TrimSpace(screens[0]) != "" {
		t.Fatalf("want 3 screens, each after %q:\n%q", clearHome, out)
	}
	if !strings.Contains(screens[3], "totals over") || strings.Contains(screens[2], "totals over") {
		t.Errorf("the totals are not after the last screen:\n%q", out)
	}
}

// nfdumpFlow is a flow as nfdump prints it.
type nfdumpFlow struct {
	sa, da         string
	sp, dp         int
	proto          string
	packets, bytes uint64
}

// nfdumpRead returns the flows of nfcapd's files in dir, from nfdump -o
// csv, found by the header's names.
func nfdumpRead(t *testing.T, dir string) []nfdumpFlow {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "nfcapd.2*"))
	if len(files) == 0 {
		names, _ := os.ReadDir(dir)
		t.Fatalf("nfcapd wrote no file in %s: %v", dir, names)
	}
	var flows []nfdumpFlow
	for _, f := range files {
		out, err := exec.Command("nfdump", "-r", f, "-o", "csv").Output()
		if err != nil {
			t.Fatalf("nfdump -r %s: %v", f, err)
		}
		text, _, _ := strings.Cut(string(out), "\nSummary")
		recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
		if err != nil || len(recs) == 0 {
			t.Fatalf("nfdump's csv: %v\n%s", err, out)
		}
		col := map[string]int{}
		for i, name := range recs[0] {
			col[name] = i
		}
		for _, r := range recs[1:] {
			num := func(name string) uint64 {
				n, err := strconv.ParseUint(strings.TrimSpace(r[col[name]]), 10, 64)
				if err != nil {
					t.Fatalf("nfdump's %s %q: %v", name, r[col[name]], err)
				}
				return n
			}
			flows = append(flows, nfdumpFlow{sa: r[col["sa"]], da: r[col["da"]], sp: int(num("sp")), dp: int(num("dp")), proto: r[col["pr"]],
				packets: num("ipkt"), bytes: num("ibyt")})
		}
	}
	return flows
}

// freeUDPPort returns a UDP port free on the namespace's lo.
func freeUDPPort(t *testing.T, ns *testutil.NetNS) int {
	t.Helper()
	var port int
	ns.Do(t, func() {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port = c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
	})
	return port
}

// TestIPFIXNfcapd exports flows of known sizes with -ipfix to nfdump's
// nfcapd on 127.0.0.1, and checks that nfdump reads back the same flows
// with the same packet and byte counts; the export itself, captured
// with lo-capture -w, is decoded by tshark's IPFIX dissector without a
// malformed packet.
func TestIPFIXNfcapd(t *testing.T) {
	testutil.RequirePrivileged(t)
	testutil.RequireTool(t, "nfcapd", "nfdump")
	ns := testutil.NewNetNS(t)
	udp := newUDPSenders(t, ns, 3)
	port := freeUDPPort(t, ns)
	dir := t.TempDir()
	nfcapd := exec.Command("ip", "netns", "exec", ns.Name, "nfcapd", "-b", "127.0.0.1", "-p", strconv.Itoa(port), "-w", dir)
	var nflog lockedBuffer
	nfcapd.Stdout, nfcapd.Stderr = &nflog, &nflog
	if err := nfcapd.Start(); err != nil {
		t.Fatal(err)
	}
	nfdone := make(chan struct{})
	go func() {
		nfcapd.Wait()
		close(nfdone)
	}()
	t.Cleanup(func() {
		nfcapd.Process.Kill()
		<-nfdone
	})
	pcap := filepath.Join(dir, "export.pcap")
	tap := startNS(t, ns, nil, "lo-capture", "-w", pcap, "udp dst port "+strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(nflog.String(), "Startup") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	lc := startNS(t, ns, nil, "lo-capture", "-ipfix", "127.0.0.1:"+strconv.Itoa(port), "-flow-idle", "1s", "udp dst port "+strconv.Itoa(udp.port()))
	sent := []struct{ n, size int }{{9, 100}, {2, 1200}, {30, 1}}
	for i, s := range sent {
		udp.send(t, i, s.n, s.size)
	}
	// The first flow ends idle while the capture runs, the others at
	// its end.
	time.Sleep(300 * time.Millisecond)
	udp.send(t, 1, 1, 1200)
	sent[1].n++
	time.Sleep(2500 * time.Millisecond)
	lc.stop(t)
	time.Sleep(300 * time.Millisecond)
	tap.stop(t)
	nfcapd.Process.Signal(syscall.SIGTERM)
	select {
	case <-nfdone:
	case <-time.After(10 * time.Second):
		t.Fatalf("nfcapd did not stop; its log:\n%s", nflog.String())
	}
	if !strings.Contains(lc.stderr.String(), "0 failed") {
		t.Errorf("the export failed:\n%s", lc.stderr.String())
	}
	got := map[int]nfdumpFlow{}
	for _, f := range nfdumpRead(t, dir) {
		if f.dp != udp.port() {
			t.Errorf("a flow not sent: %+v", f)
			continue
		}
		g := got[f.sp]
		g.packets += f.packets
		g.bytes += f.bytes
		g.sa, g.da, g.proto = f.sa, f.da, f.proto
		got[f.sp] = g
	}
	for i, s := range sent {
		g := got[udp.sport(i)]
		if g.packets != uint64(s.n) || g.bytes != uint64(s.n*udpWire(s.size)) || g.sa != "127.0.0.1" || g.da != "127.0.0.1" || g.proto != "UDP" {
			t.Errorf("flow %d from port %d: nfdump has %+v, want %d packets, %d bytes", i, udp.sport(i), g, s.n, s.n*udpWire(s.size))
		}
	}
	if !strings.Contains(nflog.String(), "Sequence Errors: 0") {
		t.Errorf("nfcapd's log:\n%s", nflog.String())
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("no tshark: the export's capture is not dissected")
		return
	}
	out, err := exec.Command("tshark", "-r", pcap, "-d", fmt.Sprintf("udp.port==%d,cflow", port), "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	if bytes.Contains(bytes.ToLower(out), []byte("malformed")) {
		t.Errorf("tshark finds malformed packets in the export:\n%s", out)
	}
	if !bytes.Contains(out, []byte("Version: 10")) {
		t.Errorf("tshark did not decode IPFIX (version 10):\n%.2000s", out)
	}
}

// TestFlowsProtocols checks -flows -json's totals on ICMP echoes, UDP
// over IPv6 and a TCP connection: the protocols named, ICMP's type and
// code in place of ports, the IPv6 addresses, and the packets and bytes
// sent.
func TestFlowsProtocols(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	ns.Exec(t, "sysctl", "-q", "-w", "net.ipv6.conf.lo.disable_ipv6=0")
	var c6 *net.UDPConn
	var sink6 *net.UDPConn
	ns.Do(t, func() {
		var err error
		if sink6, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
			t.Fatalf("IPv6 on lo: %v", err)
		}
		t.Cleanup(func() { sink6.Close() })
		go io.Copy(io.Discard, sink6)
		if c6, err = net.DialUDP("udp6", nil, sink6.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c6.Close() })
	})
	lc := startNS(t, ns, nil, "lo-capture", "-flows", "10s", "-json", "icmp or ip6 or tcp")
	sendEchoes(t, ns, 3, 56)
	for range 6 {
		if _, err := c6.Write(make([]byte, 77)); err != nil {
			t.Fatal(err)
		}
	}
	tcpPort := tcpExchange(t, ns, "one", "two")
	time.Sleep(300 * time.Millisecond)
	var echo, reply, udp6 *flowLine
	tcp := map[string]*flowLine{}
	for _, l := range flowLines(t, lc.stop(t)) {
		if l.Report != "total" {
			continue
		}
		switch {
		case l.Proto == "ICMP" && l.raw["icmp_type"] == 8.0:
			echo = &l
		case l.Proto == "ICMP" && l.raw["icmp_type"] == 0.0:
			reply = &l
		case l.Proto == "UDP" && l.Src == "::1":
			udp6 = &l
		case l.Proto == "TCP":
			tcp[fmt.Sprint(*l.Sport, ">", *l.Dport)] = &l
		}
	}
	// An echo request of 56 bytes of data: 14 + 20 + 8 + 56 on lo's wire.
	for name, l := range map[string]*flowLine{"echo request": echo, "echo reply": reply} {
		if l == nil || l.Packets != 3 || l.Bytes != 3*98 || l.Sport != nil || l.Dport != nil || l.raw["icmp_code"] != 0.0 {
			t.Errorf("%s: %+v, want 3 packets of 98 bytes, no ports", name, l)
		}
	}
	if udp6 == nil || udp6.Dst != "::1" || udp6.Packets != 6 || udp6.Bytes != 6*(14+40+8+77) || *udp6.Dport != sink6.LocalAddr().(*net.UDPAddr).Port {
		t.Errorf("UDP over IPv6: %+v, want 6 packets of %d bytes", udp6, 14+40+8+77)
	}
	toServer := 0
	for k, l := range tcp {
		if *l.Dport == tcpPort {
			toServer++
			if flags, _ := l.raw["tcp_flags"].(string); !strings.Contains(flags, "S") || !strings.Contains(flags, "F") {
				t.Errorf("TCP %s: flags %q, want the SYN and the FIN", k, flags)
			}
		}
	}
	if toServer != 1 && toServer != 2 { // the ACK after the FIN may make a flow of its own
		t.Errorf("TCP flows to the server: %d, want 1 (or 2, after the FIN); all: %v", toServer, tcp)
	}
}

// sendEchoes sends n ICMP echo requests of size bytes of data to
// 127.0.0.1 in ns, from a raw socket; the kernel answers each.
func sendEchoes(t *testing.T, ns *testutil.NetNS, n, size int) {
	t.Helper()
	var c net.PacketConn
	ns.Do(t, func() {
		var err error
		if c, err = net.ListenPacket("ip4:icmp", "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	})
	defer c.Close()
	for i := range n {
		m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 7, Seq: i, Data: make([]byte, size)}}
		b, err := m.Marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteTo(b, &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
	}
}
