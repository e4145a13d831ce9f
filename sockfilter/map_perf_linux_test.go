package sockfilter

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
)

// perfOutputProg writes, on each run, perfRecord(seq) with
// bpf_perf_event_output to the current CPU's buffer of "events"; seq
// counts the runs and "drops" the outputs that failed.
func perfOutputProg() asm.Instructions {
	p := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	p = append(p, nextSeq()...)
	for i := range int16(3) {
		p = append(p,
			asm.Mov.Reg(asm.R2, asm.R7),
			asm.Mul.Imm(asm.R2, int32(2*i+1)),
			asm.StoreMem(asm.R10, -32+8*i, asm.R2, asm.DWord),
		)
	}
	p = append(p,
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, "events"),
		asm.LoadImm64(asm.R3, 0xffffffff), // BPF_F_CURRENT_CPU
		asm.Mov.Reg(asm.R4, asm.R10),
		asm.Add.Imm(asm.R4, -32),
		asm.Mov.Reg(asm.R5, asm.R7),
		asm.And.Imm(asm.R5, 7),
		asm.Add.Imm(asm.R5, 12),
		asm.Call(asm.FnPerfEventOutput),
	)
	p = append(p, countDrop()...)
	return append(p, asm.Mov.Imm(asm.R0, 0).WithLabel("out"), asm.Exit())
}

// perfRecord returns the data perfOutputProg writes for seq, without the
// kernel's padding.
func perfRecord(seq uint64) []byte {
	var b []byte
	for i := range uint64(3) {
		b = binary.NativeEndian.AppendUint64(b, seq*(2*i+1))
	}
	return b[:12+seq&7]
}

// checkPerfRecord checks rec against perfRecord of its sequence number,
// padding included, and returns the number.
func checkPerfRecord(t *testing.T, rec PerfRecord) uint64 {
	t.Helper()
	if len(rec.Data) < 8 {
		t.Fatalf("record of %d bytes", len(rec.Data))
	}
	seq := binary.NativeEndian.Uint64(rec.Data)
	want := perfRecord(seq)
	// The kernel pads the u32 size and the data to 8 bytes.
	padded := (len(want)+4+7)&^7 - 4
	if len(rec.Data) != padded || string(rec.Data[:len(want)]) != string(want) || string(rec.Data[len(want):]) != string(make([]byte, padded-len(want))) {
		t.Fatalf("CPU %d: record %x, want %x and %d bytes of padding", rec.CPU, rec.Data, want, padded-len(want))
	}
	return seq
}

func newPerfSetup(t *testing.T) *ringSetup {
	t.Helper()
	s := &ringSetup{
		events: newTestMap(t, MapSpec{Type: PerfEventArray, Name: "events"}),
		seq:    newTestMap(t, MapSpec{Type: Array, ValueSize: 8, MaxEntries: 1}),
		drops:  newTestMap(t, MapSpec{Type: Array, ValueSize: 8, MaxEntries: 1}),
	}
	s.prog = mustLoadMaps(t, perfOutputProg(), map[string]*Map{"events": s.events, "seq": s.seq, "drops": s.drops})
	return s
}

func newTestPerfReader(t *testing.T, m *Map, opts *PerfReaderOptions) *PerfReader {
	t.Helper()
	r, err := NewPerfReader(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestPerfReader(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newPerfSetup(t)
	r := newTestPerfReader(t, s.events, nil)
	online, err := readCPUList("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.CPUs(); len(got) != len(online) {
		t.Errorf("CPUs = %v, online %v", got, online)
	}
	// 1,000 records of at most 32 bytes fit in one CPU's 64 KiB.
	const total = 1000
	s.run(t, total)
	r.SetReadDeadline(time.Now().Add(10 * time.Second)) // fail, not hang
	seen := make(map[uint64]bool)
	last := map[int]uint64{}
	for range total {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		seq := checkPerfRecord(t, rec)
		if seen[seq] {
			t.Fatalf("record %d twice", seq)
		}
		seen[seq] = true
		// A CPU's records come in the order they were written.
		if l, ok := last[rec.CPU]; ok && seq <= l {
			t.Fatalf("CPU %d: record %d after %d", rec.CPU, seq, l)
		}
		last[rec.CPU] = seq
	}
	if d := s.counter(t, s.drops); d != 0 || r.Lost() != 0 {
		t.Errorf("%d outputs failed, %d lost", d, r.Lost())
	}
	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Next on empty buffers: %v, want the deadline", err)
	}
}

// onCPU runs fn on a thread bound to cpu.
func onCPU(t *testing.T, cpu int, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &old)
	fn()
}

func TestPerfReaderLost(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newPerfSetup(t)
	// One page: about 100 records of 32 bytes fit.
	r := newTestPerfReader(t, s.events, &PerfReaderOptions{BufferSize: 1})
	cpu := r.CPUs()[0]
	const total = 1000
	onCPU(t, cpu, func() { s.run(t, total) })
	read := 0
	r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	for {
		rec, err := r.Next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.CPU != cpu {
			t.Fatalf("record from CPU %d, want %d", rec.CPU, cpu)
		}
		checkPerfRecord(t, rec)
		read++
	}
	if read == 0 || read >= total {
		t.Fatalf("read %d of %d records from a buffer of one page", read, total)
	}
	// The kernel reports the loss with the next record that fits.
	r.SetReadDeadline(time.Time{})
	onCPU(t, cpu, func() { s.run(t, 1) })
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	read++
	if drops := s.counter(t, s.drops); uint64(read)+r.Lost() != total+1 || drops != r.Lost() {
		t.Errorf("read %d, lost %d, the program saw %d outputs fail: want %d read and lost", read, r.Lost(), drops, total+1)
	}
}

func TestPerfReaderCloseAndContext(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newPerfSetup(t)
	r := newTestPerfReader(t, s.events, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.NextContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("NextContext: %v, want context.DeadlineExceeded", err)
	}
	s.run(t, 1)
	if rec, err := r.NextContext(context.Background()); err != nil || checkPerfRecord(t, rec) != 0 {
		t.Errorf("NextContext = %v, %v", rec, err)
	}

	errc := make(chan error, 1)
	go func() {
		_, err := r.Next()
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("blocked Next returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Close took the events out of the map: outputs fail now.
	s.run(t, 1)
	if d := s.counter(t, s.drops); d != 1 {
		t.Errorf("%d outputs failed after Close, want 1", d)
	}
	// A new reader works.
	r2 := newTestPerfReader(t, s.events, nil)
	s.run(t, 1)
	if rec, err := r2.Next(); err != nil || checkPerfRecord(t, rec) != 2 {
		t.Errorf("new reader: %v, %v", rec, err)
	}
}

func TestPerfReaderNoAllocs(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newPerfSetup(t)
	r := newTestPerfReader(t, s.events, nil)
	const runs = 100
	s.run(t, runs+1)
	if a := testing.AllocsPerRun(runs, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Next allocates %v times a record", a)
	}
}

func TestPerfReaderErrors(t *testing.T) {
	testutil.RequirePrivileged(t)
	h := newTestMap(t, MapSpec{Type: Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	small := newTestMap(t, MapSpec{Type: PerfEventArray, MaxEntries: 1})
	online, err := readCPUList("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	perf := newTestMap(t, MapSpec{Type: PerfEventArray})
	for _, tt := range []struct {
		name string
		m    *Map
		opts *PerfReaderOptions
		want string
	}{
		{"nil map", nil, nil, "map is nil"},
		{"hash", h, nil, "not a perf_event_array"},
		{"negative size", perf, &PerfReaderOptions{BufferSize: -1}, "negative"},
		{"watermark", perf, &PerfReaderOptions{BufferSize: 4096, Watermark: 1 << 20}, "not below the buffer size"},
	} {
		r, err := NewPerfReader(tt.m, tt.opts)
		if err == nil {
			r.Close()
			t.Errorf("%s: NewPerfReader succeeded", tt.name)
			continue
		}
		if !containsAll(err.Error(), "new perf reader: ", tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if online[len(online)-1] > 0 {
		if _, err := NewPerfReader(small, nil); err == nil || !containsAll(err.Error(), "has 1 entries", "MaxEntries 0") {
			t.Errorf("NewPerfReader of a 1-entry map: %v", err)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
