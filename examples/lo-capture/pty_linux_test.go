package main

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal and returns its terminal side (the
// master is kept open until the test ends), or nil, having logged why,
// when the system has none.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	_, pts := openPTYPair(t)
	return pts
}

// openPTYPair opens a pseudo-terminal and returns both its sides, closed
// when the test ends, or nils when the system has none.
func openPTYPair(t *testing.T) (master, pts *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Logf("no pseudo-terminal: %v", err)
		return nil, nil
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return master, pts
}

// setPTYSize sets the terminal's size (TIOCSWINSZ).
func setPTYSize(t *testing.T, f *os.File, rows, cols int) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(rows), Col: uint16(cols)}); err != nil {
		t.Fatal(err)
	}
}

// TestTerminal checks that a pipe and a buffer are not taken for a
// terminal, and a pseudo-terminal is, with its size.
func TestTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if tty, _ := terminal(w); tty {
		t.Error("a pipe taken for a terminal")
	}
	if tty, _ := terminal(&bytes.Buffer{}); tty {
		t.Error("a buffer taken for a terminal")
	}
	pty := openPTY(t)
	if pty == nil {
		return
	}
	tty, size := terminal(pty)
	if !tty || size == nil {
		t.Fatal("a pseudo-terminal not taken for one")
	}
	setPTYSize(t, pty, 30, 100)
	if rows, cols := size(); rows != 30 || cols != 100 {
		t.Errorf("size %dx%d, want 30x100", rows, cols)
	}
}
