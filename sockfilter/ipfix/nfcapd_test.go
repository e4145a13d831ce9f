package ipfix

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// nfcapd is a running nfcapd (nfdump's collector) on 127.0.0.1.
type nfcapd struct {
	cmd    *exec.Cmd
	dir    string // where it writes its files
	port   int
	output lockedBuffer  // its stdout and stderr
	exited chan struct{} // closed when it has exited
}

// lockedBuffer is a bytes.Buffer that a process writes while the test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startNfcapd starts nfcapd on a free UDP port of 127.0.0.1, writing its
// files to a temporary directory, and waits until it says "Startup
// nfcapd.", which it prints, a line at a time, once it has bound the
// port and set its signal handlers. nfcapd 1.7 takes -b host -p port -w
// dir; -t 60 keeps it from rotating the file while the test runs: the
// test stops it with SIGTERM, which makes it write the file.
func startNfcapd(t *testing.T) *nfcapd {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	n := &nfcapd{dir: t.TempDir(), port: port}
	n.cmd = exec.Command("nfcapd", "-b", "127.0.0.1", "-p", strconv.Itoa(port), "-w", n.dir, "-t", "60")
	n.cmd.Stdout, n.cmd.Stderr = &n.output, &n.output
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { n.cmd.Wait(); close(exited) }()
	n.exited = exited
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-exited
	})
	for start := time.Now(); !strings.Contains(n.output.String(), "Startup nfcapd."); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("nfcapd exited: %v\n%s", n.cmd.ProcessState, n.output.String())
		default:
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("nfcapd did not start in 10 s:\n%s", n.output.String())
		}
	}
	return n
}

// drain waits until nfcapd has read all that was sent to it: SIGTERM makes
// it stop reading, and what is still queued on its socket is lost. On
// Linux the socket's receive queue is in /proc/net/udp; elsewhere drain
// waits a while.
func (n *nfcapd) drain(t *testing.T) {
	t.Helper()
	local := fmt.Sprintf("0100007F:%04X", n.port)
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			time.Sleep(500 * time.Millisecond)
			return
		}
		queued := ""
		for line := range strings.Lines(string(b)) {
			// sl local_address rem_address st tx_queue:rx_queue ...
			if f := strings.Fields(line); len(f) > 4 && f[1] == local {
				queued = f[4][strings.IndexByte(f[4], ':')+1:]
			}
		}
		if queued == "" {
			t.Fatalf("nfcapd's socket 127.0.0.1:%d is not in /proc/net/udp", n.port)
		}
		if strings.Trim(queued, "0") == "" {
			time.Sleep(50 * time.Millisecond) // it has read the last datagram; let it write it down
			return
		}
	}
	t.Fatalf("nfcapd did not read its socket in 5 s:\n%s", n.output.String())
}

// stop sends nfcapd SIGTERM, waits for it to write its file and exit, and
// returns the counts its exit report gives.
func (n *nfcapd) stop(t *testing.T) (flows, seqErrors, bad int) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("nfcapd did not exit in 10 s after SIGTERM:\n%s", n.output.String())
	}
	if !n.cmd.ProcessState.Success() {
		t.Fatalf("nfcapd: %v\n%s", n.cmd.ProcessState, n.output.String())
	}
	// "Ident: 'none' Flows: 7, Packets: 41, Bytes: 36352, Sequence Errors: 0, Bad Packets: 0"
	m := regexp.MustCompile(`Flows: (\d+), .*Sequence Errors: (\d+), Bad Packets: (\d+)`).FindStringSubmatch(n.output.String())
	if m == nil {
		t.Fatalf("nfcapd printed no report:\n%s", n.output.String())
	}
	flows, _ = strconv.Atoi(m[1])
	seqErrors, _ = strconv.Atoi(m[2])
	bad, _ = strconv.Atoi(m[3])
	return flows, seqErrors, bad
}

// nfdumpFormat is the line nfdump prints for each flow. (Its %ter, the
// raw end time, prints the milliseconds modulo 100 in nfdump 1.7.1: the
// test reads %ts and %te, in UTC.) With -N, nfdump prints the protocol
// and the counts as plain numbers.
const nfdumpFormat = "fmt:%ts|%te|%pr|%sa|%da|%sp|%dp|%it|%ic|%pkt|%byt|%flg|%in|%out|%dir|%svln|%end"

// nfdumpLine returns the line nfdump should print for f: for ICMP, the
// destination port as type.code and source port 0; the interface as input
// (ingress) or output (egress), direction I or E; for a flow that is not
// IP, which nfdump keeps, addresses 0.0.0.0 and protocol 0.
func nfdumpLine(f flow.Flow) string {
	k := f.Key
	src, dst := k.Src.String(), k.Dst.String()
	if !k.IsIP() {
		src, dst = "0.0.0.0", "0.0.0.0"
	}
	sport, dport := strconv.Itoa(int(k.SrcPort)), strconv.Itoa(int(k.DstPort))
	var it, ic uint8
	if k.IsICMP() {
		it, ic = k.ICMPType(), k.ICMPCode()
		sport, dport = "0", fmt.Sprintf("%d.%d", it, ic)
	}
	in, out, dir := k.Ifindex, 0, "I"
	if k.Direction == packet.DirectionOutgoing {
		in, out, dir = 0, k.Ifindex, "E"
	}
	const layout = "2006-01-02 15:04:05.000"
	return strings.Join([]string{
		f.Start.UTC().Format(layout), f.End.UTC().Format(layout), strconv.Itoa(int(k.IPProto)), src, dst,
		sport, dport, strconv.Itoa(int(it)), strconv.Itoa(int(ic)),
		strconv.FormatUint(f.Packets, 10), strconv.FormatUint(f.Bytes, 10), nfdumpFlags(f.TCPFlags),
		strconv.Itoa(in), strconv.Itoa(out), dir, strconv.Itoa(int(k.VLAN)), strconv.Itoa(int(f.EndReason)),
	}, "|")
}

// nfdumpFlags returns TCP flags as nfdump prints them: eight columns of
// CWR ECE URG ACK PSH RST SYN FIN, a dot for a flag not set.
func nfdumpFlags(f packet.TCPFlags) string {
	const letters = "CEUAPRSF"
	b := []byte("........")
	for i := range 8 {
		if f&(1<<(7-i)) != 0 {
			b[i] = letters[i]
		}
	}
	return string(b)
}

// runNfdump returns nfdump's lines for the files in dir, one per flow,
// with the fields' padding removed, sorted.
func runNfdump(t *testing.T, dir string) []string {
	t.Helper()
	cmd := exec.Command("nfdump", "-R", dir, "-q", "-N", "-6", "-o", nfdumpFormat)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nfdump -R %s: %v\n%s", dir, err, out)
	}
	var lines []string
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		fields := strings.Split(strings.TrimSpace(line), "|")
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		lines = append(lines, strings.Join(fields, "|"))
	}
	slices.Sort(lines)
	return lines
}

// TestNfcapd sends the test flows to nfdump's nfcapd over UDP and checks
// that nfdump prints the same flows: addresses, ports, ICMP type and
// code, protocol, packets, bytes, times to the millisecond, flags,
// interfaces, direction, VLAN and end reason; and that nfcapd counted no
// sequence error and no bad packet, across a sequence number that wraps
// past 2^32.
func TestNfcapd(t *testing.T) {
	t.Parallel()
	testutil.RequireTool(t, "nfcapd", "nfdump")
	n := startNfcapd(t)
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", n.port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	const domain = 4242
	e, err := NewExporter(conn, &Config{ObservationDomain: domain, MaxMessageSize: 512, TemplateRefreshMessages: 3})
	if err != nil {
		t.Fatal(err)
	}
	e.seq = 1<<32 - 10 // the count of records wraps in the third message
	var want []string
	flows := testFlows()
	for round := range 6 {
		for i, f := range flows {
			f.Start = f.Start.Add(time.Duration(round) * time.Hour)
			f.End = f.End.Add(time.Duration(round) * time.Hour)
			f.Packets += uint64(round*100 + i)
			if err := e.Add(&f); err != nil {
				t.Fatal(err)
			}
			want = append(want, nfdumpLine(f))
		}
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Messages < 4 || st.TemplateSets < 2 {
		t.Fatalf("Stats %+v: the test means to send several messages and refresh the templates", st)
	}
	n.drain(t)
	got, seqErrors, bad := n.stop(t)
	if got != len(want) || seqErrors != 0 || bad != 0 {
		t.Errorf("nfcapd: %d flows, %d sequence errors, %d bad packets; want %d, 0, 0\n%s", got, seqErrors, bad, len(want), n.output.String())
	}
	slices.Sort(want)
	if lines := runNfdump(t, n.dir); !slices.Equal(lines, want) {
		t.Errorf("nfdump prints:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
