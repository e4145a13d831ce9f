package sockfilter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// bpffsDir returns an empty directory on a bpf file system: one under
// /sys/fs/bpf if a bpffs is mounted there, else a bpffs mounted on a
// temporary directory for the test.
func bpffsDir(t *testing.T) string {
	t.Helper()
	if checkBPFFS("/sys/fs/bpf") == nil {
		dir, err := os.MkdirTemp("/sys/fs/bpf", "purebpf-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount a bpf file system on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func TestMapPin(t *testing.T) {
	testutil.RequirePrivileged(t)
	dir := bpffsDir(t)
	path := filepath.Join(dir, "flows")

	m := newTestMap(t, MapSpec{Type: Hash, Name: "flows", KeySize: 4, ValueSize: 8, MaxEntries: 8})
	if err := m.Update(ne32(1), ne64(11), UpdateAny); err != nil {
		t.Fatal(err)
	}
	if err := m.Pin(path); err != nil {
		t.Fatal(err)
	}
	err := m.Pin(path)
	if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "unpin what is there first") {
		t.Errorf("second Pin: %v, want EEXIST with a hint", err)
	}
	// The pin holds the map after its last fd is gone.
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPinnedMap(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	pinfo, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	if pinfo != info {
		t.Errorf("pinned map's info %+v, want %+v", pinfo, info)
	}
	if p.Type() != Hash || p.Name() != "flows" || p.KeySize() != 4 || p.ValueSize() != 8 || p.MaxEntries() != 8 {
		t.Errorf("pinned map: %v %q %d %d %d", p.Type(), p.Name(), p.KeySize(), p.ValueSize(), p.MaxEntries())
	}
	if v, err := p.Lookup(ne32(1)); err != nil || string(v) != string(ne64(11)) {
		t.Errorf("pinned map's value = %x, %v", v, err)
	}
	// A program is not a map.
	if _, err := LoadPinnedProgram(path); err == nil || !strings.Contains(err.Error(), "not a bpf-prog") {
		t.Errorf("LoadPinnedProgram of a map: %v", err)
	}
	if err := p.Unpin(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Unpin: %v", err)
	}
	if err := p.Unpin(); err != nil {
		t.Errorf("second Unpin: %v", err)
	}
}

func TestProgramPin(t *testing.T) {
	testutil.RequirePrivileged(t)
	dir := bpffsDir(t)
	path := filepath.Join(dir, "prog")
	prog, err := Load(asm.Instructions{asm.Mov.Imm(asm.R0, 7), asm.Exit()}, &LoadOptions{Name: "pinned"})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Pin(path); err != nil {
		t.Fatal(err)
	}
	info, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	prog.Close()

	p, err := LoadPinnedProgram(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pinfo, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	if pinfo.ID != info.ID || p.Name() != "pinned" || p.Instructions() != nil {
		t.Errorf("pinned program: id %d (want %d), name %q, %d instructions", pinfo.ID, info.ID, p.Name(), len(p.Instructions()))
	}
	frame := make([]byte, 64)
	frame[12], frame[13] = 0x08, 0x06 // ARP: no IP header to pull
	if ret, err := p.Test(frame, packet.LinkEthernet); err != nil || ret != 7 {
		t.Errorf("pinned program returns %d, %v; want 7", ret, err)
	}
	if _, err := LoadPinnedMap(path); err == nil || !strings.Contains(err.Error(), "not a bpf-map") {
		t.Errorf("LoadPinnedMap of a program: %v", err)
	}
	if err := p.Unpin(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Unpin: %v", err)
	}
}

func TestPinErrors(t *testing.T) {
	testutil.RequirePrivileged(t)
	m := newTestMap(t, MapSpec{Type: Array, ValueSize: 4, MaxEntries: 1})
	notBPF := filepath.Join(t.TempDir(), "m")
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"pin outside bpffs", m.Pin(notBPF), "is not on a bpf file system (bpffs): mount one with `mount -t bpf bpf /sys/fs/bpf`"},
		{"load outside bpffs", func() error { _, err := LoadPinnedMap(notBPF); return err }(), "no such file"},
		{"load a tmp dir", func() error { _, err := LoadPinnedMap(t.TempDir()); return err }(), "is not on a bpf file system"},
		{"pin empty path", m.Pin(""), "empty path"},
		{"load missing", func() error { _, err := LoadPinnedMap(filepath.Join(bpffsDir(t), "nope")); return err }(), "no such file or directory"},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.name, tt.err, tt.want)
		}
	}
}

// countFDs returns the number of open file descriptors of the process.
func countFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestMapFDsDoNotLeak(t *testing.T) {
	testutil.RequirePrivileged(t)
	dir := bpffsDir(t)
	specs := []MapSpec{
		{Type: Array, ValueSize: 8, MaxEntries: 4},
		{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4},
		{Type: PerCPUArray, ValueSize: 8, MaxEntries: 4},
		{Type: RingBuf, MaxEntries: uint32(os.Getpagesize())},
		{Type: PerfEventArray},
	}
	prog := asm.Instructions{
		asm.LoadMapPtr(asm.R1, "m"),
		asm.Mov.Imm(asm.R0, 0),
		asm.Exit(),
	}
	cycle := func(i int) error {
		m, err := NewMap(&specs[i%len(specs)])
		if err != nil {
			return err
		}
		defer m.Close()
		if i%10 == 0 {
			// Failures must not leak either.
			if _, err := NewMap(&MapSpec{Type: Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1 << 31}); err == nil {
				return errors.New("NewMap of a huge hash succeeded")
			}
			if _, err := Load(prog, &LoadOptions{Maps: map[string]*Map{"other": m}}); err == nil {
				return errors.New("Load with a missing map succeeded")
			}
			path := filepath.Join(dir, "m")
			if err := m.Pin(path); err != nil {
				return err
			}
			p, err := LoadPinnedMap(path)
			if err != nil {
				return err
			}
			if _, err := LoadPinnedProgram(path); err == nil {
				return errors.New("LoadPinnedProgram of a map succeeded")
			}
			p.Close()
			if err := m.Unpin(); err != nil {
				return err
			}
		}
		if i%4 == 0 {
			p, err := Load(prog, &LoadOptions{Maps: map[string]*Map{"m": m}})
			if err != nil {
				return err
			}
			p.Close()
		}
		return m.Close()
	}
	if err := cycle(0); err != nil {
		t.Fatal(err)
	}
	before := countFDs(t)
	const cycles = 2000
	for i := range cycles {
		if err := cycle(i); err != nil {
			t.Fatal(err)
		}
	}
	if after := countFDs(t); after != before {
		t.Errorf("%d open fds before %d map create/close cycles, %d after", before, cycles, after)
	}
}

// countMappings returns the number of memory mappings of the process.
func countMappings(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestReadersDoNotLeak opens and closes ring buffer and perf readers 2,000
// times: no descriptor and no mapping may stay behind.
func TestReadersDoNotLeak(t *testing.T) {
	testutil.RequirePrivileged(t)
	rb := newTestMap(t, MapSpec{Type: RingBuf, MaxEntries: uint32(os.Getpagesize())})
	perf := newTestMap(t, MapSpec{Type: PerfEventArray})
	cycle := func(i int) error {
		if i%2 == 0 {
			r, err := NewRingBufReader(rb)
			if err != nil {
				return err
			}
			return r.Close()
		}
		r, err := NewPerfReader(perf, &PerfReaderOptions{BufferSize: os.Getpagesize()})
		if err != nil {
			return err
		}
		return r.Close()
	}
	for i := range 2 {
		if err := cycle(i); err != nil {
			t.Fatal(err)
		}
	}
	fds, maps := countFDs(t), countMappings(t)
	for i := range 2000 {
		if err := cycle(i); err != nil {
			t.Fatal(err)
		}
	}
	if got := countFDs(t); got != fds {
		t.Errorf("%d open fds before 2,000 reader cycles, %d after", fds, got)
	}
	// The runtime maps memory of its own now and then: allow for a few.
	if got := countMappings(t); got > maps+8 {
		t.Errorf("%d mappings before 2,000 reader cycles, %d after", maps, got)
	}
}
