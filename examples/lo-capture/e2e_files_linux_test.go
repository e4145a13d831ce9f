package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// runLC runs lo-capture with args to its end and returns its exit status,
// standard output and standard error.
func runLC(t *testing.T, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(build(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	return statusOf(err), stdout.String(), stderr.String()
}

// udpCapture writes a pcap file of n UDP datagrams of size bytes of
// payload, as a capture on lo would hold them, and returns its name.
func udpCapture(t *testing.T, n, size int) string {
	t.Helper()
	var frames [][]byte
	for i := range n {
		f := append([]byte{}, udpFrame[:42]...)
		f = append(f, bytes.Repeat([]byte{byte(i)}, size)...)
		total := len(f) - 14
		f[16], f[17] = byte(total>>8), byte(total)
		f[38], f[39] = byte((total-20)>>8), byte(total-20)
		frames = append(frames, f)
	}
	return writeFrames(t, packet.LinkEthernet, frames)
}

// TestWriteDir checks that -w DIR fails before printing anything, with
// one line, as tcpdump fails.
func TestWriteDir(t *testing.T) {
	testutil.RequirePrivileged(t)
	dir := t.TempDir()
	in := udpCapture(t, 3, 10)
	for _, args := range [][]string{{"-w", dir}, {"-r", in, "-w", dir}} {
		code, stdout, stderr := runLC(t, nil, args...)
		if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "is a directory") {
			t.Errorf("%v: status %d, stdout %q, stderr %q; want 1, nothing, one line", args, code, stdout, stderr)
		}
	}
	out, err := exec.Command("tcpdump", "-r", in, "-w", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Is a directory") {
		t.Errorf("tcpdump -w DIR: %v %s", err, out)
	}
}

// TestWriteSymlink checks that -w refuses a symbolic link, leaving its
// target alone, unless --follow-symlink.
func TestWriteSymlink(t *testing.T) {
	testutil.RequirePrivileged(t)
	dir := t.TempDir()
	target, link := filepath.Join(dir, "precious"), filepath.Join(dir, "link.pcap")
	if err := os.WriteFile(target, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	in := udpCapture(t, 3, 10)
	code, _, stderr := runLC(t, nil, "-r", in, "-w", link)
	if b, _ := os.ReadFile(target); code != 1 || string(b) != "keep me" || !strings.Contains(stderr, "symbolic link") || !strings.Contains(stderr, "--follow-symlink") {
		t.Errorf("-w LINK: status %d, target now %q, stderr %q", code, b, stderr)
	}
	code, _, stderr = runLC(t, nil, "-r", in, "-w", link, "--follow-symlink")
	if code != 0 {
		t.Fatalf("--follow-symlink: status %d: %s", code, stderr)
	}
	if frames, _ := readPcap(t, target); len(frames) != 3 {
		t.Errorf("the link's target holds %d records, want 3", len(frames))
	}
}

// TestWriteInput checks that -w refuses the file -r reads, by its name,
// another path to it or a hard link, leaving it whole.
func TestWriteInput(t *testing.T) {
	testutil.RequirePrivileged(t)
	in := udpCapture(t, 5, 10)
	before, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(filepath.Dir(in), "hard.pcap")
	if err := os.Link(in, hard); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(filepath.Dir(in), ".", "..", filepath.Base(filepath.Dir(in)), filepath.Base(in))
	for _, w := range []string{in, other, hard} {
		code, _, stderr := runLC(t, nil, "-r", in, "-w", w)
		if code != 1 || !strings.Contains(stderr, "the file -r reads") {
			t.Errorf("-r %s -w %s: status %d, stderr %q", in, w, code, stderr)
		}
	}
	// The same through standard input and output: -r - -w - with both
	// the file.
	cmd := exec.Command("sh", "-c", "exec "+build(t)+" -r - -w - <"+in+" 1<>"+in)
	if code, stderr := cmdStatus(cmd); code != 1 || !strings.Contains(stderr, "the file -r reads") {
		t.Errorf("-r - -w - on one file: status %d, stderr %q", code, stderr)
	}
	if after, _ := os.ReadFile(in); !bytes.Equal(before, after) {
		t.Error("the input changed")
	}
}

// TestStdinStdout pipes -w - into tcpdump -r -, and a file into -r -.
func TestStdinStdout(t *testing.T) {
	testutil.RequirePrivileged(t)
	in := udpCapture(t, 6, 20)
	want := tcpdumpRead(t, in)
	lc := exec.Command(build(t), "-r", in, "-w", "-")
	td := exec.Command("tcpdump", "-nn", "-r", "-")
	pipe, err := lc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	td.Stdin = pipe
	var out, tderr, lcerr bytes.Buffer
	td.Stdout, td.Stderr, lc.Stderr = &out, &tderr, &lcerr
	if err := lc.Start(); err != nil {
		t.Fatal(err)
	}
	if err := td.Run(); err != nil {
		t.Fatalf("tcpdump -r -: %v %s", err, tderr.String())
	}
	if err := lc.Wait(); err != nil {
		t.Fatalf("lo-capture -w -: %v %s", err, lcerr.String())
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); !slices.Equal(got, want) {
		t.Errorf("-w - | tcpdump -r - gave\n%s\nwant\n%s", out.String(), strings.Join(want, "\n"))
	}
	b, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runLC(t, b, "-r", "-", "-json")
	if code != 0 || strings.Count(stdout, "\n") != 6 || !strings.Contains(stderr, "reading from file standard input") {
		t.Errorf("-r -: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestRotateSize runs -C and -C with -W on the same file as tcpdump: the
// same files, with the same packets in each.
func TestRotateSize(t *testing.T) {
	testutil.RequirePrivileged(t)
	in := udpCapture(t, 1500, 1400) // 2.2 MB
	for _, extra := range [][]string{nil, {"-W", "2"}, {"-W", "12"}} {
		t.Run(strings.Join(append([]string{"-C", "1"}, extra...), " "), func(t *testing.T) {
			ours, theirs := t.TempDir(), t.TempDir()
			args := append([]string{"-r", in, "-C", "1"}, extra...)
			code, _, stderr := runLC(t, nil, append(args, "-w", filepath.Join(ours, "cap"), "udp")...)
			if code != 0 {
				t.Fatalf("status %d: %s", code, stderr)
			}
			cmd := exec.Command("tcpdump", append(args, "-Z", "root", "-w", filepath.Join(theirs, "cap"), "udp")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("tcpdump: %v %s", err, out)
			}
			compareDirs(t, ours, theirs)
		})
	}
}

// compareDirs checks that two directories hold pcap files of the same
// names that tcpdump reads the same.
func compareDirs(t *testing.T, ours, theirs string) {
	t.Helper()
	names := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, e := range ents {
			n = append(n, e.Name())
		}
		return n
	}
	a, b := names(ours), names(theirs)
	if !slices.Equal(a, b) {
		t.Fatalf("lo-capture wrote %v, tcpdump %v", a, b)
	}
	for _, n := range a {
		if x, y := tcpdumpRead(t, filepath.Join(ours, n)), tcpdumpRead(t, filepath.Join(theirs, n)); !slices.Equal(x, y) {
			t.Errorf("%s: lo-capture's holds %d packets, tcpdump's %d", n, len(x), len(y))
		}
	}
}

// TestRotateTime runs -G 1 -W 3 with strftime names beside tcpdump on
// the same traffic: both stop by themselves with "Maximum file limit
// reached: 3", exit 0, and leave three files named by the time, valid.
func TestRotateTime(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	flow := newUDPFlow(t, ns)
	ours, theirs := t.TempDir(), t.TempDir()
	lc := startNS(t, ns, nil, "lo-capture", "-G", "1", "-W", "3", "-w", filepath.Join(ours, "cap-%Y%m%d-%H%M%S.pcap"), flow.filter())
	td := startNS(t, ns, nil, "tcpdump", "-i", "lo", "-Z", "root", "-G", "1", "-W", "3", "-w", filepath.Join(theirs, "cap-%Y%m%d-%H%M%S.pcap"), flow.filter())
	deadline := time.Now().Add(15 * time.Second)
	for !(lc.hasExited() && td.hasExited()) && time.Now().Before(deadline) {
		flow.send(t, 1, 16)
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range []*nsProc{lc, td} {
		if code := p.wait(t, time.Second); code != 0 || !strings.Contains(p.stderr.String(), "Maximum file limit reached: 3\n") {
			t.Errorf("%s: status %d; stderr:\n%s", p.name, code, p.stderr.String())
		}
	}
	// A file's period may pass without a packet (the first, before the
	// traffic starts): it is then a header alone, for both.
	re := regexp.MustCompile(`^cap-\d{8}-\d{6}\.pcap$`)
	for _, dir := range []string{ours, theirs} {
		ents, _ := os.ReadDir(dir)
		if len(ents) != 3 {
			t.Errorf("%s holds %d files, want 3", dir, len(ents))
		}
		packets := 0
		for _, e := range ents {
			if !re.MatchString(e.Name()) {
				t.Errorf("file name %q", e.Name())
			}
			packets += len(tcpdumpRead(t, filepath.Join(dir, e.Name())))
		}
		if packets == 0 {
			t.Errorf("%s: no packets in its files", dir)
		}
	}
}

// TestRelinquish runs -Z nobody beside tcpdump -Z nobody: every thread of
// lo-capture runs as nobody once capturing, the -w file it created is
// nobody's, as tcpdump's is, and the capture goes on.
func TestRelinquish(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	flow := newUDPFlow(t, ns)
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "ours.pcap"), filepath.Join(dir, "theirs.pcap")
	lc := startNS(t, ns, nil, "lo-capture", "-Z", "nobody", "-w", ours, flow.filter())
	td := startNS(t, ns, nil, "tcpdump", "-i", "lo", "-Z", "nobody", "-w", theirs, flow.filter())
	flow.send(t, 4, 16)
	lc.waitCaptured(t, 4)
	td.waitCaptured(t, 4)
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(lc.cmd.Process.Pid) + "/task/*/status")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no tasks: %v", err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // the thread ended
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, "Uid:") || strings.HasPrefix(line, "Gid:") {
				if f := strings.Fields(line); len(f) != 5 || f[1] != "65534" || f[2] != "65534" || f[3] != "65534" || f[4] != "65534" {
					t.Errorf("%s: %s", task, line)
				}
			}
		}
	}
	for _, p := range []*nsProc{lc, td} {
		p.signal(t, syscall.SIGINT)
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Errorf("%s: status %d: %s", p.name, code, p.stderr.String())
		}
	}
	for _, f := range []string{ours, theirs} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 {
			t.Errorf("%s is owned by %d, want nobody", f, st.Uid)
		}
	}
	if a, b := tcpdumpRead(t, ours, "-t"), tcpdumpRead(t, theirs, "-t"); len(a) != 4 || !slices.Equal(a, b) {
		t.Errorf("the files differ:\n%s\n--\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}

// TestSnaplen captures with -s 60 beside tcpdump -s 60: both files say
// snap length 60, every frame is cut to 60 bytes, and tcpdump reads them
// the same.
func TestSnaplen(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	flow := newUDPFlow(t, ns)
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "ours.pcap"), filepath.Join(dir, "theirs.pcap")
	lc := startNS(t, ns, nil, "lo-capture", "-s", "60", "-w", ours, flow.filter())
	if !strings.Contains(lc.stderr.String(), "snapshot length 60 bytes") {
		t.Errorf("start line: %s", lc.stderr.String())
	}
	td := startNS(t, ns, nil, "tcpdump", "-i", "lo", "-s", "60", "-w", theirs, flow.filter())
	flow.send(t, 5, 200)
	lc.waitCaptured(t, 5)
	td.waitCaptured(t, 5)
	for _, p := range []*nsProc{lc, td} {
		p.signal(t, syscall.SIGINT)
		p.wait(t, 10*time.Second)
	}
	frames, snaplen := readPcap(t, ours)
	if snaplen != 60 || len(frames) != 5 {
		t.Errorf("snap length %d, %d frames", snaplen, len(frames))
	}
	for i, f := range frames {
		if len(f) != 60 {
			t.Errorf("frame %d: %d bytes, want 60", i, len(f))
		}
	}
	if a, b := tcpdumpRead(t, ours, "-t"), tcpdumpRead(t, theirs, "-t"); !slices.Equal(a, b) {
		t.Errorf("the files differ:\n%s\n--\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}
