package main

import (
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
	"golang.org/x/sys/unix"
)

// TestStopSignals stops lo-capture -w and tcpdump -w, capturing the same
// datagrams, with SIGINT, SIGTERM and SIGHUP: each exits 0 with its counts,
// and the two files read back the same, every record whole.
func TestStopSignals(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			ns := testutil.NewNetNS(t)
			flow := newUDPFlow(t, ns)
			dir := t.TempDir()
			ours, theirs := filepath.Join(dir, "lo-capture.pcap"), filepath.Join(dir, "tcpdump.pcap")
			lc := startNS(t, ns, nil, "lo-capture", "-w", ours, flow.filter())
			td := startNS(t, ns, nil, "tcpdump", "-i", "lo", "-w", theirs, flow.filter())
			const n = 50
			flow.send(t, n, 64)
			lc.waitCaptured(t, n)
			td.waitCaptured(t, n)
			lc.signal(t, sig)
			td.signal(t, sig)
			if code := lc.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("lo-capture exit status %d; stderr:\n%s", code, lc.stderr.String())
			}
			if code := td.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("tcpdump exit status %d; stderr:\n%s", code, td.stderr.String())
			}
			for _, want := range []string{"50 packets captured\n", "50 packets received by filter\n", "0 packets dropped by kernel\n", "50 records, 50 frames received by filter, 0 dropped by kernel\n"} {
				if !strings.Contains(lc.stderr.String(), want) {
					t.Errorf("lo-capture's stderr lacks %q:\n%s", want, lc.stderr.String())
				}
			}
			if lc.stdout.String() != "" {
				t.Errorf("-w printed to standard output:\n%s", lc.stdout.String())
			}
			if frames, _ := readPcap(t, ours); len(frames) != n {
				t.Errorf("lo-capture's file holds %d records, want %d", len(frames), n)
			}
			a, b := tcpdumpRead(t, ours, "-t"), tcpdumpRead(t, theirs, "-t") // each socket has its own time stamps
			if !slices.Equal(a, b) {
				t.Errorf("tcpdump -r reads the files differently:\nlo-capture's:\n%s\ntcpdump's:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
			}
		})
	}
}

// TestCount checks -c N against tcpdump -c N: both stop by themselves
// after N packets, exit 0, and leave the same file.
func TestCount(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	flow := newUDPFlow(t, ns)
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "lo-capture.pcap"), filepath.Join(dir, "tcpdump.pcap")
	lc := startNS(t, ns, nil, "lo-capture", "-c", "7", "-w", ours, flow.filter())
	td := startNS(t, ns, nil, "tcpdump", "-i", "lo", "-c", "7", "-w", theirs, flow.filter())
	flow.send(t, 20, 32)
	for _, p := range []*nsProc{lc, td} {
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Fatalf("%s exit status %d; stderr:\n%s", p.name, code, p.stderr.String())
		}
	}
	if !strings.Contains(lc.stderr.String(), "7 packets captured\n") {
		t.Errorf("lo-capture's counts:\n%s", lc.stderr.String())
	}
	a, b := tcpdumpRead(t, ours, "-t"), tcpdumpRead(t, theirs, "-t") // each socket has its own time stamps
	if len(a) != 7 || !slices.Equal(a, b) {
		t.Errorf("the files differ:\nlo-capture's:\n%s\ntcpdump's:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}

// TestInfoSignal checks that SIGUSR1 prints the counts and the capture
// goes on, as tcpdump's does.
func TestInfoSignal(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	flow := newUDPFlow(t, ns)
	lc := startNS(t, ns, nil, "lo-capture", "-json", flow.filter())
	flow.send(t, 3, 16)
	lc.waitCaptured(t, 3)
	line := regexp.MustCompile(`(?m)^lo-capture: 3 packets captured, 3 packets received by filter, 0 packets dropped by kernel\n3 records, 3 frames received by filter, 0 dropped by kernel$`)
	if !line.MatchString(lc.stderr.String()) {
		t.Errorf("SIGUSR1 printed:\n%s", lc.stderr.String())
	}
	if lc.hasExited() {
		t.Fatalf("SIGUSR1 stopped lo-capture; stderr:\n%s", lc.stderr.String())
	}
	flow.send(t, 2, 16)
	lc.waitCaptured(t, 5)
	lc.signal(t, syscall.SIGINT)
	if code := lc.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if got := strings.Count(lc.stdout.String(), "\n"); got != 5 {
		t.Errorf("%d records printed, want 5:\n%s", got, lc.stdout.String())
	}
}

// TestBrokenPipe runs lo-capture | head -1, with and without -w, and
// tcpdump -l | head -1: each reports "Unable to write output: Broken pipe"
// on one line and exits non-zero, and lo-capture's -w file is whole.
func TestBrokenPipe(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, tc := range []struct {
		prog string
		args []string
		file bool
	}{
		{"lo-capture", []string{"-w", "FILE", "--print"}, true},
		{"lo-capture", nil, false},
		{"tcpdump", []string{"-i", "lo", "-l"}, false},
	} {
		t.Run(tc.prog+strings.Join(tc.args, " "), func(t *testing.T) {
			ns := testutil.NewNetNS(t)
			flow := newUDPFlow(t, ns)
			file := filepath.Join(t.TempDir(), "f.pcap")
			args := slices.Clone(tc.args)
			if i := slices.Index(args, "FILE"); i >= 0 {
				args[i] = file
			}
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			p := startNS(t, ns, w, tc.prog, append(args, flow.filter())...)
			w.Close()
			// head -1: read a line, then close the pipe.
			flow.send(t, 5, 16)
			buf := make([]byte, 1)
			for {
				if _, err := r.Read(buf); err != nil || buf[0] == '\n' {
					break
				}
			}
			r.Close()
			deadline := time.Now().Add(10 * time.Second)
			for !p.hasExited() && time.Now().Before(deadline) {
				flow.send(t, 5, 16)
				time.Sleep(20 * time.Millisecond)
			}
			code := p.wait(t, time.Second)
			stderr := p.stderr.String()
			if code == 0 || code > 128 {
				t.Errorf("exit status %d, want an error status (not 0, not a signal); stderr:\n%s", code, stderr)
			}
			if tc.prog == "tcpdump" {
				if !strings.Contains(stderr, "tcpdump: Unable to write output: Broken pipe\n") {
					t.Errorf("tcpdump said:\n%s", stderr)
				}
				return
			}
			lines := errorLines(stderr)
			if len(lines) != 1 || !regexp.MustCompile(`^lo-capture: unable to write output: .*broken pipe$`).MatchString(lines[0]) {
				t.Errorf("error lines %q, want one saying unable to write output: broken pipe; stderr:\n%s", lines, stderr)
			}
			if tc.file {
				if frames, _ := readPcap(t, file); len(frames) == 0 {
					t.Error("the -w file is empty")
				}
				tcpdumpRead(t, file)
			}
		})
	}
}

// TestStdoutClosed runs lo-capture with standard output closed (>&-):
// printing records is an error said at once, before capturing, as tcpdump
// fails to write; with -w (and no --print) it captures as usual, and the
// file is not mixed up with descriptor 1.
func TestStdoutClosed(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	flow := newUDPFlow(t, ns)
	bin := build(t)
	run := func(args string) (int, string) {
		// sh closes descriptor 1 just before lo-capture starts (ip netns
		// exec, run with it closed, would open a file on it).
		return cmdStatus(exec.Command("ip", "netns", "exec", ns.Name, "sh", "-c", "exec "+bin+" "+args+" >&-"))
	}
	code, stderr := run("-c 1 " + flow.filter())
	if code != 1 || !strings.Contains(stderr, "lo-capture: unable to write output: standard output is closed\n") || strings.Contains(stderr, "listening on") {
		t.Errorf("records to a closed stdout: status %d, stderr:\n%s", code, stderr)
	}
	code, stderr = run("-d udp")
	if code != 1 || !strings.Contains(stderr, "standard output is closed") {
		t.Errorf("-d to a closed stdout: status %d, stderr:\n%s", code, stderr)
	}

	file := filepath.Join(t.TempDir(), "f.pcap")
	done := make(chan struct{})
	var wcode int
	var wstderr string
	go func() {
		defer close(done)
		wcode, wstderr = run("-c 3 -w " + file + " " + flow.filter())
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		flow.send(t, 1, 16)
		select {
		case <-done:
		case <-time.After(50 * time.Millisecond):
			if time.Now().Before(deadline) {
				continue
			}
			t.Fatal("-c 3 -w with stdout closed did not exit")
		}
		break
	}
	if wcode != 0 || !strings.Contains(wstderr, "3 packets captured") {
		t.Errorf("-w with stdout closed: status %d, stderr:\n%s", wcode, wstderr)
	}
	if frames, _ := readPcap(t, file); len(frames) != 3 {
		t.Errorf("the -w file holds %d records, want 3", len(frames))
	}
}

// TestBlockedStdout fills a pipe nobody reads (lo-capture --print -w f |
// sleep) and signals lo-capture while it is blocked: it exits at once,
// with the counts and a whole -w file holding every frame it captured.
func TestBlockedStdout(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ns := testutil.NewNetNS(t)
			flow := newUDPFlow(t, ns)
			file := filepath.Join(t.TempDir(), "f.pcap")
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			p := startNS(t, ns, w, "lo-capture", "--print", "-w", file, flow.filter())
			w.Close()
			// More records than the pipe and lo-capture's queue hold.
			const n = 30000
			flow.send(t, n, 64)
			waitPipeFull(t, r)
			start := time.Now()
			p.signal(t, sig)
			code := p.wait(t, 10*time.Second)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v to exit", took)
			}
			stderr := p.stderr.String()
			if code != 0 || !strings.Contains(stderr, "lo-capture: warning: standard output stopped taking data") {
				t.Fatalf("exit status %d, want 0 and a warning; stderr:\n%s", code, stderr)
			}
			m := regexp.MustCompile(`(?m)^(\d+) packets captured$`).FindStringSubmatch(stderr)
			if m == nil {
				t.Fatalf("no counts; stderr:\n%s", stderr)
			}
			captured, _ := strconv.Atoi(m[1])
			frames, _ := readPcap(t, file)
			if len(frames) != captured || captured == 0 || captured >= n {
				t.Errorf("the file holds %d records, %d were captured of %d sent (some should be left when stdout blocks)", len(frames), captured, n)
			}
			tcpdumpRead(t, file)
		})
	}
}

// waitPipeFull waits until the pipe r reads from is full: it holds most
// of its capacity (a writer's chunk may not fit in the rest) and takes no
// more.
func waitPipeFull(t *testing.T, r *os.File) {
	t.Helper()
	size, err := unix.FcntlInt(r.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	last, since := -1, time.Now()
	for {
		n, err := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if n != last {
			last, since = n, time.Now()
		} else if n > size/2 && time.Since(since) > 300*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipe holds %d bytes of %d", n, size)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFullDisk writes -w to a small tmpfs until it is full: lo-capture
// stops with one line saying so and how many records the file keeps, and
// the file, cut back to its last whole record, reads to its end.
func TestFullDisk(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	flow := newUDPFlow(t, ns)
	dir := smallTmpfs(t, "256k")
	file := filepath.Join(dir, "f.pcap")
	p := startNS(t, ns, nil, "lo-capture", "-w", file, flow.filter())
	deadline := time.Now().Add(20 * time.Second)
	for !p.hasExited() && time.Now().Before(deadline) {
		flow.send(t, 200, 100)
		time.Sleep(10 * time.Millisecond)
	}
	code := p.wait(t, time.Second)
	stderr := p.stderr.String()
	lines := errorLines(stderr)
	re := regexp.MustCompile(`^lo-capture: .*f\.pcap: no space left on device \(.*last whole record, (\d+) bytes\)$`)
	if code != 1 || len(lines) != 1 || !re.MatchString(lines[0]) {
		t.Fatalf("exit status %d, error lines %q; stderr:\n%s", code, lines, stderr)
	}
	kept, _ := strconv.ParseInt(re.FindStringSubmatch(lines[0])[1], 10, 64)
	if fi, err := os.Stat(file); err != nil || fi.Size() != kept {
		t.Errorf("the file is %v bytes (%v); the message says %d", fi.Size(), err, kept)
	}
	frames, _ := readPcap(t, file)
	if len(frames) == 0 {
		t.Error("the file holds no records")
	}
	if got := len(tcpdumpRead(t, file)); got != len(frames) {
		t.Errorf("tcpdump -r reads %d packets, pcapfile %d", got, len(frames))
	}
}

// smallTmpfs mounts a tmpfs of size bytes on a temporary directory, and
// unmounts it when the test ends.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
