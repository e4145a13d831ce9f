package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
)

// The end-to-end tests run the lo-capture binary — and, where tcpdump has
// the same behaviour, tcpdump beside it on the same traffic — inside a
// network namespace of the test's own (testutil.NewNetNS), on its lo, with
// traffic the test sends and counts.

// nsProc is lo-capture or tcpdump running in a namespace.
type nsProc struct {
	name   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	stdout *lockedBuffer // nil when the test gave its own standard output
	done   chan error
	code   int
	exited bool
}

// startNS starts prog ("lo-capture" or "tcpdump") in ns with args and
// waits for its "listening on" line. stdout, if not nil, is its standard
// output; otherwise the output is kept in p.stdout.
func startNS(t *testing.T, ns *testutil.NetNS, stdout *os.File, prog string, args ...string) *nsProc {
	t.Helper()
	p := launchNS(t, ns, stdout, prog, args...)
	p.waitStderr(t, "listening on")
	return p
}

// launchNS starts prog in ns without waiting for anything.
func launchNS(t *testing.T, ns *testutil.NetNS, stdout *os.File, prog string, args ...string) *nsProc {
	t.Helper()
	path := prog
	if prog == "lo-capture" {
		path = build(t)
	} else if _, err := exec.LookPath(prog); err != nil {
		t.Skipf("%s is not installed", prog)
	}
	p := &nsProc{name: prog, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns.Name, path}, args...)...)
	p.cmd.Stderr = p.stderr
	if stdout != nil {
		p.cmd.Stdout = stdout
	} else {
		p.stdout = &lockedBuffer{}
		p.cmd.Stdout = p.stdout
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.exited {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitStderr waits for s on the process's standard error.
func (p *nsProc) waitStderr(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.stderr.String(), s) {
		if p.hasExited() {
			t.Fatalf("%s exited (status %d) before printing %q; stderr:\n%s", p.name, p.code, s, p.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q; stderr:\n%s", p.name, s, p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hasExited reports whether the process has exited, setting p.code.
func (p *nsProc) hasExited() bool {
	if p.exited {
		return true
	}
	select {
	case err := <-p.done:
		p.exited, p.code = true, statusOf(err)
		return true
	default:
		return false
	}
}

func statusOf(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

func (p *nsProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
}

// wait waits for the process to exit, within limit, and returns its exit
// status.
func (p *nsProc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !p.hasExited() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not exit within %v; stderr:\n%s", p.name, limit, p.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return p.code
}

var capturedRE = regexp.MustCompile(`(\d+) packets? captured`)

// waitCaptured asks the process for its counts with SIGUSR1 (both
// lo-capture and tcpdump print them) until it says it has captured n
// packets, and returns the count it gave.
func (p *nsProc) waitCaptured(t *testing.T, n int) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p.signal(t, syscall.SIGUSR1)
		time.Sleep(30 * time.Millisecond)
		if m := capturedRE.FindAllStringSubmatch(p.stderr.String(), -1); m != nil {
			if got, _ := strconv.Atoi(m[len(m)-1][1]); got >= n {
				return got
			}
		}
		if p.hasExited() || time.Now().After(deadline) {
			t.Fatalf("%s did not capture %d packets; stderr:\n%s", p.name, n, p.stderr.String())
		}
	}
}

// udpFlow is a UDP socket in a namespace that sends datagrams to a sink
// there.
type udpFlow struct {
	c    *net.UDPConn
	port int // the sink's port
}

func newUDPFlow(t *testing.T, ns *testutil.NetNS) *udpFlow {
	t.Helper()
	var f udpFlow
	ns.Do(t, func() {
		sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sink.Close() })
		go io.Copy(io.Discard, sink) // keep its queue empty
		f.port = sink.LocalAddr().(*net.UDPAddr).Port
		if f.c, err = net.DialUDP("udp4", nil, sink.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.c.Close() })
	})
	return &f
}

// filter is the expression that selects the flow's datagrams.
func (f *udpFlow) filter() string { return fmt.Sprintf("udp dst port %d", f.port) }

// send sends n datagrams of size bytes of payload.
func (f *udpFlow) send(t *testing.T, n, size int) {
	t.Helper()
	payload := bytes.Repeat([]byte("x"), size)
	for i := range n {
		copy(payload, fmt.Sprintf("datagram %d ", i))
		if _, err := f.c.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
}

// readPcap reads a pcap file to its end with pcapfile's reader, failing
// the test at any error — a record cut short included — and returns its
// frames and snap length.
func readPcap(t *testing.T, name string) ([][]byte, int) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, err := pcapfile.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var frames [][]byte
	var info packet.Info
	for {
		buf, err := pr.ReadPacket(nil, &info)
		if err == io.EOF {
			return frames, pr.Snaplen()
		}
		if err != nil {
			t.Fatalf("%s after %d records: %v", name, len(frames), err)
		}
		frames = append(frames, buf)
	}
}

// tcpdumpRead returns what tcpdump -r -nn prints of a file, one line a
// packet, failing the test if tcpdump finds anything wrong with the file
// ("truncated dump file", a bad header).
func tcpdumpRead(t *testing.T, name string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("tcpdump", append([]string{"-nn", "-r", name}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if msg := stderr.String(); err != nil || strings.Contains(msg, "truncated") || strings.Contains(msg, "tcpdump: ") {
		t.Fatalf("tcpdump -r %s: %v\n%s", name, err, msg)
	}
	out := strings.TrimSuffix(stdout.String(), "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// errorLines returns the lines of stderr that lo-capture prints for
// errors.
func errorLines(stderr string) []string {
	var lines []string
	for line := range strings.Lines(stderr) {
		if strings.HasPrefix(line, "lo-capture: ") && !strings.Contains(line, "packets captured") && !strings.Contains(line, "warning:") {
			lines = append(lines, strings.TrimSuffix(line, "\n"))
		}
	}
	return lines
}

// cmdStatus runs cmd and returns its exit status and standard error.
func cmdStatus(cmd *exec.Cmd) (int, string) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return statusOf(cmd.Run()), stderr.String()
}
