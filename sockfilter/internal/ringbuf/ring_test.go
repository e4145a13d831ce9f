package ringbuf

import (
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"
)

// fakeRing is a ring buffer in Go memory that the test writes as the
// kernel's producers do, mirroring the data into its second copy.
type fakeRing struct {
	cons, prod uintptr
	words      []uint64 // backing of data, for its alignment
	data       []byte
	size       uintptr
}

func newFakeRing(size int) *fakeRing {
	f := &fakeRing{words: make([]uint64, 2*size/8), size: uintptr(size)}
	f.data = unsafe.Slice((*byte)(unsafe.Pointer(&f.words[0])), 2*size)
	return f
}

// put writes b at position pos, in both copies.
func (f *fakeRing) put(pos uintptr, b []byte) {
	for i, c := range b {
		off := (pos + uintptr(i)) & (f.size - 1)
		f.data[off], f.data[off+f.size] = c, c
	}
}

// reserve reserves a record of n bytes with the busy bit, as
// __bpf_ringbuf_reserve does, and returns its position.
func (f *fakeRing) reserve(n int) uintptr {
	pos := f.prod
	f.put(pos, binary.NativeEndian.AppendUint32(nil, uint32(n)|BusyBit))
	f.prod += (uintptr(n) + HeaderSize + 7) &^ 7
	return pos
}

// commit writes data into the record at pos and clears its busy bit.
func (f *fakeRing) commit(pos uintptr, data []byte, discard bool) {
	f.put(pos+HeaderSize, data)
	hdr := uint32(len(data))
	if discard {
		hdr |= DiscardBit
	}
	f.put(pos, binary.NativeEndian.AppendUint32(nil, hdr))
}

func (f *fakeRing) output(data []byte) { f.commit(f.reserve(len(data)), data, false) }

func (f *fakeRing) reader(t *testing.T) *Ring {
	t.Helper()
	r, err := New(&f.cons, &f.prod, f.data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func next(t *testing.T, r *Ring) (string, bool) {
	t.Helper()
	rec, ok, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	return string(rec), ok
}

func TestRingOrderBusyDiscard(t *testing.T) {
	f := newFakeRing(64)
	r := f.reader(t)
	if _, ok := next(t, r); ok || r.Ready() {
		t.Fatal("empty ring has a record")
	}
	a := f.reserve(3)
	b := f.reserve(5)
	f.commit(b, []byte("bbbbb"), false)
	// a is busy: b waits behind it.
	if _, ok := next(t, r); ok || r.Ready() {
		t.Fatal("read past a busy record")
	}
	f.commit(a, []byte("aaa"), false)
	if !r.Ready() {
		t.Fatal("not ready after the commit")
	}
	if got, ok := next(t, r); !ok || got != "aaa" {
		t.Fatalf("first record %q", got)
	}
	if got, ok := next(t, r); !ok || got != "bbbbb" {
		t.Fatalf("second record %q", got)
	}
	if f.cons != 0 {
		t.Fatalf("consumer position %d before Release", f.cons)
	}
	r.Release()
	if f.cons != 32 { // two records of 8+3 and 8+5 bytes, each rounded to 16
		t.Fatalf("consumer position %d after Release, want 32", f.cons)
	}
	// A discarded record is skipped, and its space is released with the
	// next one.
	f.commit(f.reserve(4), []byte("xxxx"), true)
	f.output([]byte("c"))
	if got, ok := next(t, r); !ok || got != "c" {
		t.Fatalf("record after a discarded one: %q", got)
	}
	r.Release()
	if f.cons != 64 {
		t.Fatalf("consumer position %d, want 64", f.cons)
	}
	// A record that wraps around the end reads in one piece.
	f.output([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123")) // 48 bytes from 64
	r.Release()
	if got, ok := next(t, r); !ok || got != "0123456789abcdefghijklmnopqrstuvwxyz0123" {
		t.Fatalf("record %q", got)
	}
	f.output([]byte("wrapped!")) // at 112: offsets 48..63, then the second copy
	if got, ok := next(t, r); !ok || got != "wrapped!" {
		t.Fatalf("wrapped record %q", got)
	}
	// Empty records are records.
	r.Release()
	f.output(nil)
	if got, ok := next(t, r); !ok || got != "" {
		t.Fatalf("empty record %q, %v", got, ok)
	}
	if r.Pending() != 0 || r.Size() != 64 {
		t.Errorf("Pending %d, Size %d", r.Pending(), r.Size())
	}
}

func TestRingLent(t *testing.T) {
	f := newFakeRing(64)
	f.cons, f.prod = 40, 40 // a reader stopped at offset 40
	r := f.reader(t)
	f.output([]byte("12345678"))   // 40..56
	f.output([]byte("abcdefgh"))   // 56..72: its data at 64..72, in the second copy
	f.output([]byte("ABCDEFGHIJ")) // 72..96: offsets 8..32, the first copy again
	for range 3 {
		if _, ok := next(t, r); !ok {
			t.Fatal("record missing")
		}
	}
	from, hi, lo, ok := r.Lent()
	if !ok || from != 40 || hi != 72 || lo != 8+HeaderSize+10 {
		t.Errorf("Lent = %d, %d, %d, %v; want 40, 72, 26, true", from, hi, lo, ok)
	}
	r.Release()
	if _, _, _, ok := r.Lent(); ok {
		t.Error("records lent after Release")
	}
}

func TestRingCorrupt(t *testing.T) {
	for _, tt := range []struct {
		name       string
		cons, prod uintptr
		hdr        uint32
	}{
		{"record longer than written", 0, 16, 9},
		{"producer a ring ahead and more", 0, 72, 0},
		{"producer unaligned", 0, 12, 0},
		{"consumer past producer", 16, 8, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRing(64)
			f.cons, f.prod = tt.cons, tt.prod
			f.put(tt.cons, binary.NativeEndian.AppendUint32(nil, tt.hdr))
			r := f.reader(t)
			if !r.Ready() {
				t.Error("Ready is false: a sleeping reader would never see the corruption")
			}
			_, ok, err := r.Next()
			if ok || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Next = %v, %v; want ErrCorrupt", ok, err)
			}
			if _, _, err2 := r.Next(); err2 != err {
				t.Errorf("the error is not sticky: %v", err2)
			}
		})
	}
	var cons, prod uintptr
	if _, err := New(&cons, &prod, make([]byte, 96)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("New with 96 bytes of data: %v", err)
	}
	cons = 4
	f := newFakeRing(64)
	if _, err := New(&cons, &prod, f.data); !errors.Is(err, ErrCorrupt) {
		t.Errorf("New with an unaligned consumer position: %v", err)
	}
}

// FuzzRing reads rings of arbitrary contents and positions: Next must
// never panic, return bytes outside the ring, or run past producer_pos,
// and must end.
func FuzzRing(f *testing.F) {
	seed := newFakeRing(64)
	seed.output([]byte("hello"))
	seed.commit(seed.reserve(3), []byte("bye"), true)
	seed.output(make([]byte, 20))
	f.Add(seed.data[:64], uint64(0), uint64(seed.prod))
	f.Add(seed.data[:64], uint64(8), uint64(100))
	f.Add(make([]byte, 64), uint64(1<<63), uint64(1<<63+64))
	f.Fuzz(func(t *testing.T, first []byte, cons, prod uint64) {
		fr := newFakeRing(64)
		fr.put(0, first[:min(len(first), 64)])
		fr.cons, fr.prod = uintptr(cons)&^7, uintptr(prod)
		r, err := New(&fr.cons, &fr.prod, fr.data)
		if err != nil {
			t.Fatal(err)
		}
		base := uintptr(unsafe.Pointer(&fr.data[0]))
		read := uintptr(0)
		for i := 0; ; i++ {
			if i > 64/HeaderSize {
				t.Fatal("Next does not end")
			}
			rec, ok, err := r.Next()
			if err != nil || !ok {
				break
			}
			if len(rec) > 0 {
				start := uintptr(unsafe.Pointer(&rec[0])) - base
				if start+uintptr(len(rec)) > uintptr(len(fr.data)) {
					t.Fatalf("record at %d of %d bytes outside the data", start, len(rec))
				}
			}
			read += (uintptr(len(rec)) + HeaderSize + 7) &^ 7
			if read > fr.prod-fr.cons {
				t.Fatalf("read %d bytes, producer wrote %d", read, fr.prod-fr.cons)
			}
		}
		r.Release()
		if fr.cons-uintptr(cons)&^7 > 64 {
			t.Fatalf("consumer moved from %d to %d", cons, fr.cons)
		}
	})
}

// TestRingReleaseNeverRewinds: a reader whose ring another reader has read
// further does not move consumer_pos back when it releases.
func TestRingReleaseNeverRewinds(t *testing.T) {
	f := newFakeRing(64)
	r := f.reader(t)
	f.output([]byte("a"))
	f.output([]byte("b"))
	if _, ok := next(t, r); !ok {
		t.Fatal("no record")
	}
	f.cons = 32 // another reader took both
	r.Release()
	if f.cons != 32 {
		t.Errorf("consumer position rewound to %d", f.cons)
	}
	if _, ok := next(t, r); !ok {
		t.Fatal("no record")
	}
	f.output([]byte("c"))
	if _, ok := next(t, r); !ok {
		t.Fatal("no record")
	}
	r.Release()
	if f.cons != 48 {
		t.Errorf("consumer position %d after reading on, want 48", f.cons)
	}
}

// TestRingReleaseLazy: ReleaseLazy stores consumer_pos once the reader is
// a sixteenth of the ring ahead of it, and Lent covers every record since.
func TestRingReleaseLazy(t *testing.T) {
	f := newFakeRing(512) // lazy: 32 bytes, four empty records
	r := f.reader(t)
	for i := range 4 {
		f.output(nil)
		if _, ok := next(t, r); !ok {
			t.Fatal("no record")
		}
		r.ReleaseLazy()
		want := uintptr(0)
		if i == 3 {
			want = 32
		}
		if f.cons != want {
			t.Errorf("after %d records consumer_pos is %d, want %d", i+1, f.cons, want)
		}
		if i == 2 {
			if from, hi, _, ok := r.Lent(); !ok || from != 0 || hi != 3*HeaderSize {
				t.Errorf("Lent = %d, %d, %v; want the three records", from, hi, ok)
			}
		}
	}
}
