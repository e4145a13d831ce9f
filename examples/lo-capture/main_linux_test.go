package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
)

// builtBinary is the lo-capture binary the tests run, built once.
var builtBinary struct {
	once sync.Once
	path string
	err  error
}

// build builds lo-capture into a directory any user can read, so that the
// unprivileged test can run it too.
func build(t *testing.T) string {
	t.Helper()
	builtBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "lo-capture-test")
		if err != nil {
			builtBinary.err = err
			return
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			builtBinary.err = err
			return
		}
		builtBinary.path = filepath.Join(dir, "lo-capture")
		out, err := exec.Command("go", "build", "-o", builtBinary.path, ".").CombinedOutput()
		if err != nil {
			builtBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if builtBinary.err != nil {
		t.Fatal(builtBinary.err)
	}
	return builtBinary.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinary.path != "" {
		os.RemoveAll(filepath.Dir(builtBinary.path))
	}
	os.Exit(code)
}

// jsonRecord holds the fields of a -json line the tests check.
type jsonRecord struct {
	Time  string `json:"time"`
	Proto string `json:"proto"`
	Src   string `json:"src"`
	Sport *int   `json:"sport"`
	Dst   string `json:"dst"`
	Dport *int   `json:"dport"`
	Len   int    `json:"len"`
	Flags string `json:"flags"`
}

// key renders every field, for comparing records.
func (r jsonRecord) key() string {
	port := func(p *int) string {
		if p == nil {
			return "-"
		}
		return strconv.Itoa(*p)
	}
	return fmt.Sprintf("%s %s %s:%s > %s:%s len %d %s", r.Time, r.Proto, r.Src, port(r.Sport), r.Dst, port(r.Dport), r.Len, r.Flags)
}

// proc is a running lo-capture.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr *lockedBuffer
	done   chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs lo-capture with args and waits for its start line.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	p := &proc{cmd: exec.CommandContext(ctx, build(t), args...), stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.stderr.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("no start line; stderr:\n%s", p.stderr.String())
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("lo-capture exited early (%v); stderr:\n%s", err, p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return p
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return exitCode(t, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("lo-capture did not exit; stderr:\n%s", p.stderr.String())
		return -1
	}
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// records parses JSON lines.
func records(t *testing.T, out []byte) []jsonRecord {
	t.Helper()
	var recs []jsonRecord
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r jsonRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// udpSink returns a UDP socket on loopback that receives (and ignores)
// the test's datagrams.
func udpSink(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sendUDP(t *testing.T, to *net.UDPAddr, n int) (src *net.UDPAddr) {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		if _, err := fmt.Fprintf(c, "datagram %d", i); err != nil {
			t.Fatal(err)
		}
	}
	return c.LocalAddr().(*net.UDPAddr)
}

// TestCapture checks the records of known traffic exactly, then -w and -r.
func TestCapture(t *testing.T) {
	testutil.RequirePrivileged(t)
	sink := udpSink(t)
	other := udpSink(t)
	port := sink.LocalAddr().(*net.UDPAddr).Port
	tl, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Skipf("TCP port %d taken: %v", port, err)
	}
	t.Cleanup(func() { tl.Close() })
	pcapFile := filepath.Join(t.TempDir(), "out.pcap")

	const datagrams = 5
	// 5 datagrams, then the TCP handshake's three segments.
	p := start(t, "-json", "-c", strconv.Itoa(datagrams+3), "-f", fmt.Sprintf("port %d", port), "-w", pcapFile, "--print")
	src := sendUDP(t, sink.LocalAddr().(*net.UDPAddr), datagrams)
	sendUDP(t, other.LocalAddr().(*net.UDPAddr), 3) // filtered out
	time.Sleep(200 * time.Millisecond)              // the UDP records come first
	go func() {
		c, err := tl.Accept()
		if err == nil {
			time.Sleep(500 * time.Millisecond)
			c.Close()
		}
	}()
	tc, err := net.DialTCP("tcp4", nil, tl.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	cport := tc.LocalAddr().(*net.TCPAddr).Port

	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, p.stderr.String())
	}
	recs := records(t, p.stdout.Bytes())
	if len(recs) != datagrams+3 {
		t.Fatalf("got %d records, want %d:\n%s", len(recs), datagrams+3, p.stdout.String())
	}
	for i, r := range recs[:datagrams] {
		if r.Proto != "UDP" || r.Src != "127.0.0.1" || r.Dst != "127.0.0.1" || r.Sport == nil || *r.Sport != src.Port || r.Dport == nil || *r.Dport != port {
			t.Errorf("record %d = %s, want UDP 127.0.0.1:%d > 127.0.0.1:%d", i, r.key(), src.Port, port)
		}
		if want := 14 + 20 + 8 + len("datagram 0"); r.Len != want {
			t.Errorf("record %d: len %d, want %d", i, r.Len, want)
		}
	}
	wantTCP := []struct {
		sport, dport int
		flags        string
	}{{cport, port, "S"}, {port, cport, "S."}, {cport, port, "."}}
	for i, w := range wantTCP {
		r := recs[datagrams+i]
		if r.Proto != "TCP" || r.Sport == nil || *r.Sport != w.sport || r.Dport == nil || *r.Dport != w.dport || r.Flags != w.flags {
			t.Errorf("TCP record %d = %s, want %d > %d %s", i, r.key(), w.sport, w.dport, w.flags)
		}
	}
	wantEnd := fmt.Sprintf("%d records, ", datagrams+3)
	if !strings.Contains(p.stderr.String(), wantEnd) {
		t.Errorf("stderr lacks %q:\n%s", wantEnd, p.stderr.String())
	}

	// tcpdump reads the -w file, with the same count.
	out, err := exec.Command("tcpdump", "-nn", "-r", pcapFile).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, out)
	}
	var lines int
	for l := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(l, " IP ") {
			lines++
		}
	}
	if lines != datagrams+3 {
		t.Errorf("tcpdump -r read %d packets, want %d:\n%s", lines, datagrams+3, out)
	}

	// -r with a narrower filter gives the UDP subset.
	cmd := exec.Command(build(t), "-r", pcapFile, "-json", "--verifier-log", "-f", "udp")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("-r: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "verifier log:") || !strings.Contains(stderr.String(), "processed ") {
		t.Errorf("--verifier-log printed no verifier log:\n%s", stderr.String())
	}
	sub := records(t, stdout.Bytes())
	if len(sub) != datagrams {
		t.Fatalf("-r -f udp: %d records, want %d", len(sub), datagrams)
	}
	for i, r := range sub {
		if r.key() != recs[i].key() {
			t.Errorf("-r record %d = %s, live record was %s", i, r.key(), recs[i].key())
		}
	}
}

// TestBoth checks that -both keeps the outgoing loopback copy, and that
// the default does not.
func TestBoth(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, tc := range []struct {
		args []string
		want int
	}{{nil, 3}, {[]string{"-both"}, 6}} {
		sink := udpSink(t)
		port := sink.LocalAddr().(*net.UDPAddr).Port
		args := append([]string{"-json", "-timeout", "1500ms", "-f", fmt.Sprintf("udp dst port %d", port)}, tc.args...)
		p := start(t, args...)
		sendUDP(t, sink.LocalAddr().(*net.UDPAddr), 3)
		if code := p.wait(t); code != 0 {
			t.Fatalf("%v: exit status %d; stderr:\n%s", args, code, p.stderr.String())
		}
		if got := len(records(t, p.stdout.Bytes())); got != tc.want {
			t.Errorf("%v: %d records, want %d", tc.args, got, tc.want)
		}
	}
}

// TestDemo runs -demo and checks that it shows both TCP and UDP records.
func TestDemo(t *testing.T) {
	testutil.RequirePrivileged(t)
	cmd := exec.Command(build(t), "-demo")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("-demo: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if !strings.HasPrefix(lines[0], "S-Address\tS-Port\tD-Address\tD-Port\tProtocol") {
		t.Errorf("no table header: %q", lines[0])
	}
	var udp, tcp int
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if len(f) < 5 {
			t.Fatalf("short line %q", l)
		}
		switch f[4] {
		case "UDP":
			udp++
		case "TCP":
			tcp++
		}
	}
	if udp != demoDatagrams || tcp < 6 {
		t.Errorf("demo showed %d UDP and %d TCP records, want %d and at least 6:\n%s", udp, tcp, demoDatagrams, stdout.String())
	}
	if !regexp.MustCompile(`\d+ records, \d+ frames received by filter, 0 dropped by kernel`).MatchString(stderr.String()) {
		t.Errorf("no final counts on stderr:\n%s", stderr.String())
	}
}

// TestDump checks -d against the instruction count of the start line.
func TestDump(t *testing.T) {
	cmd := exec.Command(build(t), "-d", "-f", "udp dst port 53")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("-d: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 4 {
		t.Fatalf("-d printed %d lines:\n%s", len(lines), out)
	}
	for i, l := range lines {
		if !regexp.MustCompile(`^\(\d{3}\) \S`).MatchString(l) {
			t.Errorf("line %d %q is not an instruction", i, l)
		}
	}
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, ") exit") {
		t.Errorf("last instruction %q, want exit", last)
	}
}

// TestErrors checks each error's message and exit status.
func TestErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.pcap")
	if err := os.WriteFile(bad, []byte("not a pcap file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		status int
		want   string
		priv   bool
	}{
		{"usage", []string{"-c", "x"}, 2, "invalid value", false},
		{"unknown flag", []string{"-y"}, 2, "unknown flag -y", false},
		{"bad expression", []string{"-d", "-f", "tcp and port"}, 1, "column", false},
		{"unknown interface", []string{"-i", "nope0"}, 1, `"nope0"`, true},
		{"bad -ipfix address", []string{"-ipfix", "127.0.0.1"}, 1, "-ipfix: dial udp: address 127.0.0.1: missing port in address", false},
		{"-k and -w", []string{"-k", "-w", "f.pcap"}, 2, "there are no frames for -w to write", false},
		{"unreadable pcap", []string{"-r", bad}, 1, bad, false},
		{"missing pcap", []string{"-r", filepath.Join(t.TempDir(), "missing.pcap")}, 1, "no such file", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.priv {
				testutil.RequirePrivileged(t)
			}
			cmd := exec.Command(build(t), tc.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			code := exitCode(t, cmd.Run())
			if code != tc.status {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tc.status, stderr.String())
			}
			msg := stderr.String()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q lacks %q", msg, tc.want)
			}
			if tc.status == 1 && strings.Count(strings.TrimSpace(msg), "\n") != 0 {
				t.Errorf("want one line, got:\n%s", msg)
			}
			if first, rest, _ := strings.Cut(msg, "\n"); tc.status == 2 && (!strings.Contains(first, tc.want) || !strings.HasPrefix(rest, "usage: lo-capture")) {
				t.Errorf("want one error line, then the usage; got:\n%s", msg)
			}
			if strings.Contains(msg, "goroutine ") {
				t.Errorf("stack trace:\n%s", msg)
			}
		})
	}
}

// TestUnprivileged runs lo-capture as nobody with no capabilities.
func TestUnprivileged(t *testing.T) {
	testutil.RequirePrivileged(t) // to drop privileges, one needs them
	cmd := testutil.NobodyCommand(t, build(t), "-c", "1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	code := exitCode(t, cmd.Run())
	msg := stderr.String()
	// Loading the filter comes first, and says what it lacks.
	if code != 1 || !strings.Contains(msg, "CAP_BPF") || !strings.Contains(msg, "does not hold") {
		t.Errorf("exit status %d, stderr %q; want 1 and a message naming the missing CAP_BPF", code, msg)
	}
	if strings.Count(strings.TrimSpace(msg), "\n") != 0 {
		t.Errorf("want one line, got:\n%s", msg)
	}
}
