package perfbuf

import (
	"encoding/binary"
	"errors"
	"testing"
)

// fakeRing is a perf buffer in Go memory that the test writes as the
// kernel does.
type fakeRing struct {
	head, tail uint64
	data       []byte
}

func (f *fakeRing) put(b []byte) {
	for _, c := range b {
		f.data[f.head&uint64(len(f.data)-1)] = c
		f.head++
	}
}

func header(typ uint32, size int) []byte {
	b := binary.NativeEndian.AppendUint32(nil, typ)
	b = binary.NativeEndian.AppendUint16(b, 0)
	return binary.NativeEndian.AppendUint16(b, uint16(size))
}

// sample writes a PERF_RECORD_SAMPLE with raw data, padded as the kernel
// pads it.
func (f *fakeRing) sample(data []byte) {
	raw := (len(data)+4+7)&^7 - 4
	f.put(header(RecordSample, headerSize+4+raw))
	f.put(binary.NativeEndian.AppendUint32(nil, uint32(raw)))
	f.put(data)
	f.put(make([]byte, raw-len(data)))
}

func (f *fakeRing) lost(n uint64) {
	f.put(header(RecordLost, headerSize+16))
	f.put(binary.NativeEndian.AppendUint64(nil, 1))
	f.put(binary.NativeEndian.AppendUint64(nil, n))
}

func TestRing(t *testing.T) {
	f := &fakeRing{data: make([]byte, 64)}
	r, err := New(&f.head, &f.tail, f.data)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.Next(); ok || err != nil || r.Ready() {
		t.Fatalf("empty ring: %v, %v", ok, err)
	}
	f.sample([]byte("hello")) // 24 bytes
	f.lost(7)                 // 24 bytes
	want := []Record{
		{Type: RecordSample, Data: []byte("hello\x00\x00\x00\x00\x00\x00\x00")},
		{Type: RecordLost, Lost: 7},
		{Type: RecordSample, Data: []byte("abcdefgh\x00\x00\x00\x00")},
	}
	for i, w := range want {
		if i == 2 {
			f.sample([]byte("abcdefgh")) // 24 bytes from 48: wraps around the end
		}
		if !r.Ready() {
			t.Fatalf("record %d: not ready", i)
		}
		rec, ok, err := r.Next()
		if err != nil || !ok {
			t.Fatalf("record %d: %v, %v", i, ok, err)
		}
		if rec.Type != w.Type || string(rec.Data) != string(w.Data) || rec.Lost != w.Lost {
			t.Errorf("record %d = %+v, want %+v", i, rec, w)
		}
		if f.tail != r.pos {
			t.Errorf("record %d: data_tail %d, want %d", i, f.tail, r.pos)
		}
	}
	if f.tail != 72 {
		t.Errorf("data_tail %d, want 72", f.tail)
	}
}

func TestRingCorrupt(t *testing.T) {
	for _, tt := range []struct {
		name   string
		record []byte
		head   uint64
	}{
		{"size below the header", header(RecordSample, 4), 8},
		{"size not a multiple of 8", header(RecordSample, 12), 16},
		{"size past data_head", header(RecordSample, 32), 16},
		{"head a ring ahead", header(RecordSample, 16), 1000},
		{"head a few bytes ahead", header(RecordSample, 16)[:4], 4},
		{"sample without its size", header(RecordSample, 8), 8},
		{"sample longer than its record", append(header(RecordSample, 16), 9, 0, 0, 0, 0, 0, 0, 0), 16},
		{"short lost record", header(RecordLost, 16), 16},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRing{data: make([]byte, 64)}
			f.put(tt.record)
			f.head = tt.head
			r, err := New(&f.head, &f.tail, f.data)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok, err := r.Next(); ok || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Next = %v, %v; want ErrCorrupt", ok, err)
			}
			if !r.Ready() {
				t.Error("not Ready with an error to report")
			}
		})
	}
	var head, tail uint64
	if _, err := New(&head, &tail, make([]byte, 48)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("New with 48 bytes: %v", err)
	}
}

// FuzzRing reads perf buffers of arbitrary contents and positions: Next
// must never panic or read past data_head, and must end.
func FuzzRing(f *testing.F) {
	seed := &fakeRing{data: make([]byte, 64)}
	seed.sample([]byte("hello"))
	seed.lost(3)
	f.Add(seed.data, uint64(0), seed.head)
	f.Add(seed.data, uint64(40), uint64(100))
	f.Fuzz(func(t *testing.T, data []byte, tail, head uint64) {
		fr := &fakeRing{data: make([]byte, 64), head: head, tail: tail}
		copy(fr.data, data)
		r, err := New(&fr.head, &fr.tail, fr.data)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			if i > 64/headerSize {
				t.Fatal("Next does not end")
			}
			rec, ok, err := r.Next()
			if err != nil || !ok {
				break
			}
			if len(rec.Data) > 64 {
				t.Fatalf("record of %d bytes from a 64-byte ring", len(rec.Data))
			}
			if fr.tail-tail > head-tail {
				t.Fatalf("data_tail %d past data_head %d", fr.tail, head)
			}
		}
	})
}
