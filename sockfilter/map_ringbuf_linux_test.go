package sockfilter

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// nextSeq emits the start of the test producers: r7 = seq[0]++, or the
// program's end, returning 0, if the lookup fails.
func nextSeq() asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.R10, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, "seq"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.Call(asm.FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.FetchAdd.Mem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R7, asm.R1),
	}
}

// countDrop emits drops[0]++ when r0 is not 0: a failed output.
func countDrop() asm.Instructions {
	return asm.Instructions{
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.StoreImm(asm.R10, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, "drops"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.Call(asm.FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AtomicAdd.Mem(asm.R0, 0, asm.R1, asm.DWord),
	}
}

// ringOutputProg writes, on each run, the record ringRecord(seq) with
// bpf_ringbuf_output, seq counting the runs: 8 to 39 bytes, so that
// records of every length modulo 8 meet every place in the ring.
func ringOutputProg() asm.Instructions {
	p := nextSeq()
	for i := range int16(8) {
		p = append(p,
			asm.Mov.Reg(asm.R2, asm.R7),
			asm.Mul.Imm(asm.R2, int32(i+1)),
			asm.StoreMem(asm.R10, -72+8*i, asm.R2, asm.DWord),
		)
	}
	p = append(p,
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.And.Imm(asm.R3, 31),
		asm.Add.Imm(asm.R3, 8),
		asm.LoadMapPtr(asm.R1, "events"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -72),
		asm.Mov.Imm(asm.R4, 0),
		asm.Call(asm.FnRingbufOutput),
	)
	p = append(p, countDrop()...)
	return append(p, asm.Mov.Imm(asm.R0, 0).WithLabel("out"), asm.Exit())
}

// ringRecord returns the record ringOutputProg writes for seq.
func ringRecord(seq uint64) []byte {
	var b []byte
	for i := range uint64(8) {
		b = binary.NativeEndian.AppendUint64(b, seq*(i+1))
	}
	return b[:8+seq&31]
}

// ringReserveProg reserves 16 bytes on each run, writes seq and 0xabcd,
// and submits the record, or discards it when seq is a multiple of 3.
func ringReserveProg() asm.Instructions {
	p := nextSeq()
	return append(p,
		asm.LoadMapPtr(asm.R1, "events"),
		asm.Mov.Imm(asm.R2, 16),
		asm.Mov.Imm(asm.R3, 0),
		asm.Call(asm.FnRingbufReserve),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.StoreMem(asm.R0, 0, asm.R7, asm.DWord),
		asm.StoreImm(asm.R0, 8, 0xabcd, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R0),
		asm.Mov.Imm(asm.R2, 0),
		asm.Mod.Imm(asm.R7, 3),
		asm.JEq.Imm(asm.R7, 0, "discard"),
		asm.Call(asm.FnRingbufSubmit),
		asm.Goto("out"),
		asm.Call(asm.FnRingbufDiscard).WithLabel("discard"),
		asm.Mov.Imm(asm.R0, 0).WithLabel("out"),
		asm.Exit(),
	)
}

// ringSetup is a ring buffer "events" of size bytes with a producer
// program, its run counter "seq" and its failure counter "drops".
type ringSetup struct {
	events, seq, drops *Map
	prog               *Program
}

func newRingSetup(t *testing.T, size int, prog asm.Instructions) *ringSetup {
	t.Helper()
	s := &ringSetup{
		events: newTestMap(t, MapSpec{Type: RingBuf, Name: "events", MaxEntries: uint32(size)}),
		seq:    newTestMap(t, MapSpec{Type: Array, ValueSize: 8, MaxEntries: 1}),
		drops:  newTestMap(t, MapSpec{Type: Array, ValueSize: 8, MaxEntries: 1}),
	}
	s.prog = mustLoadMaps(t, prog, map[string]*Map{"events": s.events, "seq": s.seq, "drops": s.drops})
	return s
}

// run runs the producer n times.
func (s *ringSetup) run(t testing.TB, n int) {
	t.Helper()
	frame := arpFrame(20)
	for range n {
		if _, err := s.prog.Test(frame, packet.LinkEthernet); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *ringSetup) counter(t testing.TB, m *Map) uint64 {
	t.Helper()
	v, err := m.Lookup(ne32(0))
	if err != nil {
		t.Fatal(err)
	}
	return binary.NativeEndian.Uint64(v)
}

func newTestReader(t *testing.T, m *Map) *RingBufReader {
	t.Helper()
	r, err := NewRingBufReader(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRingBufOutput(t *testing.T) {
	testutil.RequirePrivileged(t)
	// Four pages; rounds of 50 records of up to 48 bytes fit, and the
	// positions wrap around the ring many times.
	s := newRingSetup(t, 4*os.Getpagesize(), ringOutputProg())
	r := newTestReader(t, s.events)
	if r.Size() != 4*os.Getpagesize() {
		t.Errorf("Size = %d", r.Size())
	}
	seq := uint64(0)
	for round := range 40 {
		s.run(t, 50)
		for range 50 {
			rec, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if want := ringRecord(seq); string(rec) != string(want) {
				t.Fatalf("round %d: record %d = %x, want %x", round, seq, rec, want)
			}
			seq++
		}
	}
	if d := s.counter(t, s.drops); d != 0 {
		t.Errorf("%d outputs failed", d)
	}
	// Nothing more: a read waits until the deadline.
	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if rec, err := r.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Next on an empty ring = %x, %v; want the deadline", rec, err)
	}
}

func TestRingBufDiscard(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newRingSetup(t, os.Getpagesize(), ringReserveProg())
	r := newTestReader(t, s.events)
	const runs = 300 // 24-byte records: the 4 KiB ring wraps
	seq := uint64(0)
	for done := 0; done < runs; done += 30 {
		s.run(t, 30)
		recs := make([][]byte, 30)
		got := 0
		for got < 20 { // 2 of 3 are submitted
			n, err := r.NextBatch(recs[got:])
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
		for _, rec := range recs[:got] {
			for seq%3 == 0 {
				seq++
			}
			if len(rec) != 16 || binary.NativeEndian.Uint64(rec) != seq || binary.NativeEndian.Uint64(rec[8:]) != 0xabcd {
				t.Fatalf("record %x, want seq %d and 0xabcd", rec, seq)
			}
			seq++
		}
	}
}

func TestRingBufWakeUp(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newRingSetup(t, os.Getpagesize(), ringOutputProg())
	r := newTestReader(t, s.events)
	// The reader sleeps before each record is written; each commit must
	// wake it.
	got := make(chan []byte)
	errc := make(chan error, 1)
	go func() {
		for range 20 {
			rec, err := r.Next()
			if err != nil {
				errc <- err
				return
			}
			got <- append([]byte(nil), rec...)
		}
		errc <- nil
	}()
	for seq := range uint64(20) {
		time.Sleep(2 * time.Millisecond) // let the reader fall asleep
		s.run(t, 1)
		select {
		case rec := <-got:
			if string(rec) != string(ringRecord(seq)) {
				t.Fatalf("record %x, want %x", rec, ringRecord(seq))
			}
		case err := <-errc:
			t.Fatal(err)
		case <-time.After(5 * time.Second):
			t.Fatalf("record %d did not wake the reader", seq)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestRingBufConcurrentProducer(t *testing.T) {
	testutil.RequirePrivileged(t)
	// A producer in another goroutine paced so that the ring never
	// overflows: it waits for the reader when it is 40 records ahead.
	s := newRingSetup(t, os.Getpagesize(), ringOutputProg())
	r := newTestReader(t, s.events)
	const total = 5000
	read := make(chan int, total)
	var wg sync.WaitGroup
	wg.Go(func() {
		consumed := 0
		for i := range total {
			for i-consumed >= 40 {
				consumed = <-read
			}
			s.run(t, 1)
		}
	})
	for seq := range uint64(total) {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if string(rec) != string(ringRecord(seq)) {
			t.Fatalf("record %d = %x, want %x", seq, rec, ringRecord(seq))
		}
		read <- int(seq + 1)
	}
	wg.Wait()
	if d := s.counter(t, s.drops); d != 0 {
		t.Errorf("%d outputs failed", d)
	}
}

func TestRingBufCloseUnblocks(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newRingSetup(t, os.Getpagesize(), ringOutputProg())
	r := newTestReader(t, s.events)
	errc := make(chan error, 1)
	go func() {
		_, err := r.Next()
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("Next returned before Close: %v", err)
	default:
	}
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
	if _, err := r.Next(); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	if _, err := r.NextBatch(make([][]byte, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("NextBatch after Close: %v", err)
	}
	if err := r.SetReadDeadline(time.Now()); !errors.Is(err, ErrClosed) {
		t.Errorf("SetReadDeadline after Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRingBufDeadlineAndContext(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newRingSetup(t, os.Getpagesize(), ringOutputProg())
	r := newTestReader(t, s.events)

	start := time.Now()
	r.SetReadDeadline(start.Add(30 * time.Millisecond))
	if _, err := r.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Next: %v, want the deadline", err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("the deadline fired after %v", d)
	}
	// A deadline past fails a read even with records waiting.
	s.run(t, 2)
	if _, err := r.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Next past the deadline with records waiting: %v", err)
	}
	r.SetReadDeadline(time.Time{})
	if rec, err := r.Next(); err != nil || string(rec) != string(ringRecord(0)) {
		t.Errorf("Next without deadline = %x, %v", rec, err)
	}

	// A context ends a wait; the reader then reads on.
	if rec, err := r.NextContext(context.Background()); err != nil || string(rec) != string(ringRecord(1)) {
		t.Errorf("NextContext = %x, %v", rec, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.NextContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("NextContext: %v, want context.DeadlineExceeded", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel2() }()
	if _, err := r.NextContext(ctx2); !errors.Is(err, context.Canceled) {
		t.Errorf("NextContext: %v, want context.Canceled", err)
	}
	s.run(t, 1)
	if rec, err := r.Next(); err != nil || string(rec) != string(ringRecord(2)) {
		t.Errorf("Next after the contexts = %x, %v", rec, err)
	}
}

func TestRingBufCloseKeepsLentRecords(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newRingSetup(t, os.Getpagesize(), ringOutputProg())
	r := newTestReader(t, s.events)
	// Bring the positions near the end of the ring, so that the batch
	// below wraps around it.
	s.run(t, 90)
	for range 90 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	s.run(t, 60)
	recs := make([][]byte, 60)
	n, err := r.NextBatch(recs)
	if err != nil || n != 60 {
		t.Fatalf("NextBatch = %d, %v", n, err)
	}
	if _, _, lo, ok := r.ring.Lent(); !ok || lo == 0 {
		t.Fatal("the batch does not wrap around the end of the ring")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// The records are still there, byte for byte, after Close.
	for i, rec := range recs {
		if want := ringRecord(uint64(90 + i)); string(rec) != string(want) {
			t.Errorf("record %d after Close = %x, want %x", 90+i, rec, want)
		}
	}
	// They were consumed: a new reader starts after them.
	s.run(t, 1)
	r2 := newTestReader(t, s.events)
	if rec, err := r2.Next(); err != nil || string(rec) != string(ringRecord(150)) {
		t.Errorf("new reader's first record = %x, %v; want record 150", rec, err)
	}
}

func TestRingBufNextNoAllocs(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newRingSetup(t, 4*os.Getpagesize(), ringOutputProg())
	r := newTestReader(t, s.events)
	const runs = 100
	s.run(t, runs+1) // AllocsPerRun runs once more to warm up
	if a := testing.AllocsPerRun(runs, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Next allocates %v times a record", a)
	}
	s.run(t, runs+1)
	recs := make([][]byte, 1)
	if a := testing.AllocsPerRun(runs, func() {
		if _, err := r.NextBatch(recs); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("NextBatch allocates %v times a batch", a)
	}
}

// TestRingBufCloseRace closes readers while goroutines read them and a
// producer writes: run it with -race. Two goroutines read in turn, each
// checking its batch before the other reads, as the records' validity
// asks; no record may be torn. A third goroutine keeps looking at the
// records of the last batch, without taking turns, also after Close:
// they may be valid or not, but must never fault.
// TestRingBufCloseKeepsLentRecords checks their bytes after Close.
func TestRingBufCloseRace(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newRingSetup(t, 16*os.Getpagesize(), ringOutputProg())
	for round := range 20 {
		r, err := NewRingBufReader(s.events)
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg      sync.WaitGroup
			turn    sync.Mutex // serialises a read and the use of its records
			staleMu sync.Mutex
			stale   [][]byte
			done    = make(chan struct{})
		)
		for range 2 {
			wg.Go(func() {
				recs := make([][]byte, 8)
				for {
					turn.Lock()
					n, err := r.NextBatch(recs)
					if err != nil {
						turn.Unlock()
						if !errors.Is(err, ErrClosed) {
							t.Errorf("round %d: %v", round, err)
						}
						return
					}
					for _, rec := range recs[:n] {
						if string(rec) != string(ringRecord(binary.NativeEndian.Uint64(rec))) {
							t.Errorf("round %d: torn record %x", round, rec)
						}
					}
					staleMu.Lock()
					stale = append(stale[:0], recs[:n]...)
					staleMu.Unlock()
					turn.Unlock()
				}
			})
		}
		wg.Go(func() {
			var sum byte
			for {
				select {
				case <-done:
					_ = sum
					return
				default:
				}
				staleMu.Lock()
				for _, rec := range stale {
					for _, b := range rec {
						sum += b
					}
				}
				staleMu.Unlock()
			}
		})
		s.run(t, 50+round*7)
		time.Sleep(time.Duration(round%4) * time.Millisecond)
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		time.Sleep(time.Millisecond) // the stale reader reads on after Close
		close(done)
		wg.Wait()
	}
}

func TestRingBufReaderErrors(t *testing.T) {
	testutil.RequirePrivileged(t)
	if _, err := NewRingBufReader(nil); err == nil {
		t.Error("NewRingBufReader(nil) succeeded")
	}
	h := newTestMap(t, MapSpec{Type: Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if _, err := NewRingBufReader(h); err == nil {
		t.Error("NewRingBufReader of a hash succeeded")
	}
	rb := newTestMap(t, MapSpec{Type: RingBuf, MaxEntries: uint32(os.Getpagesize())})
	rb.Close()
	if _, err := NewRingBufReader(rb); !errors.Is(err, ErrClosed) {
		t.Errorf("NewRingBufReader of a closed map: %v, want ErrClosed", err)
	}
}
