//go:build linux

package bench

import (
	"encoding/binary"
	"os"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
)

// The ring buffer comparison: one 16 MiB BPF ring buffer, filled by one
// socket filter run in the kernel (BPF_PROG_TEST_RUN, fillRecords runs a
// call) with 64-byte records that start with a sequence number, and read
// by purebpf's RingBufReader and by github.com/cilium/ebpf/ringbuf's
// Reader in turn, in the same run. The fill is outside the timer: the
// figures are what reading costs, per record, and records/s. Each reader
// looks at every record's sequence number; cilium's copies the record
// into its Record, purebpf's hands it out in place. Run it as root with
//
//	cd internal/bench && go test -run '^$' -bench RingBuf -benchmem -count 5
const (
	ringSize    = 16 << 20
	recordSize  = 64
	fillRecords = 200_000 // 72 bytes each with the header: 14.4 MB of the 16 MiB
)

// ringBench is the map, the producer and the fill.
type ringBench struct {
	events *sockfilter.Map
	seq    *sockfilter.Map
	prog   *sockfilter.Program
	next   uint64 // the sequence number of the next record to read
}

func newRingBench(b *testing.B) *ringBench {
	testutil.RequirePrivileged(b)
	events, err := sockfilter.NewMap(&sockfilter.MapSpec{Type: sockfilter.RingBuf, Name: "bench_events", MaxEntries: ringSize})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { events.Close() })
	seq, err := sockfilter.NewMap(&sockfilter.MapSpec{Type: sockfilter.Array, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { seq.Close() })
	// r7 = seq[0]++; the record is r7 then 56 zero bytes, from the stack.
	insns := asm.Instructions{
		asm.StoreImm(asm.R10, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, "seq"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.Call(asm.FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.FetchAdd.Mem(asm.R0, 0, asm.R1, asm.DWord),
		asm.StoreMem(asm.R10, -72, asm.R1, asm.DWord),
	}
	for off := int16(-64); off < -8; off += 8 {
		insns = append(insns, asm.StoreImm(asm.R10, off, 0, asm.DWord))
	}
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, "events"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -72),
		asm.Mov.Imm(asm.R3, recordSize),
		asm.Mov.Imm(asm.R4, 0),
		asm.Call(asm.FnRingbufOutput),
		asm.Mov.Imm(asm.R0, 0).WithLabel("out"),
		asm.Exit(),
	)
	prog, err := sockfilter.Load(insns, &sockfilter.LoadOptions{Maps: map[string]*sockfilter.Map{"events": events, "seq": seq}})
	if err != nil {
		b.Fatalf("%+v", err)
	}
	b.Cleanup(func() { prog.Close() })
	return &ringBench{events: events, seq: seq, prog: prog}
}

// fill runs the producer fillRecords times, in as few BPF_PROG_TEST_RUN
// calls as signals allow: a signal (Go's preemption sends SIGURG) ends a
// run of many repeats early with EINTR, and the runs it made count, so
// the next call makes only the rest. It returns how many records the ring
// holds for the reader.
func (rb *ringBench) fill(b *testing.B) int {
	frame := make([]byte, 20)
	frame[12], frame[13] = 0x08, 0x06 // ARP: no IP header for the kernel to pull
	for done := rb.produced(b); ; {
		left := rb.next + fillRecords - done
		if left == 0 {
			return int(done - rb.next)
		}
		attr := sys.ProgTestRunAttr{
			ProgFD:     uint32(rb.prog.FD()),
			DataSizeIn: uint32(len(frame)),
			DataIn:     sys.SlicePointer(frame),
			Repeat:     uint32(left),
		}
		_, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(sys.BPF_PROG_TEST_RUN), uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		if errno != 0 && errno != unix.EINTR {
			b.Fatal(os.NewSyscallError("bpf BPF_PROG_TEST_RUN", errno))
		}
		done = rb.produced(b)
	}
}

// produced returns how many records the producer has written.
func (rb *ringBench) produced(b *testing.B) uint64 {
	v, err := rb.seq.Lookup(make([]byte, 4))
	if err != nil {
		b.Fatal(err)
	}
	return binary.NativeEndian.Uint64(v)
}

// check fails b unless rec is the next record.
func (rb *ringBench) check(b *testing.B, rec []byte) {
	if len(rec) != recordSize || binary.NativeEndian.Uint64(rec) != rb.next {
		b.Fatalf("record %d: %x", rb.next, rec)
	}
	rb.next++
}

// reader is what each reader does per record, and when the ring is
// empty.
type reader interface {
	read(b *testing.B, rb *ringBench)
	Close() error
}

// run reads records for b.Loop, refilling the ring, untimed, when it has
// been read, and closes r.
func (rb *ringBench) run(b *testing.B, r reader) {
	defer r.Close()
	left := 0
	b.ReportAllocs()
	for b.Loop() {
		if left == 0 {
			b.StopTimer()
			left = rb.fill(b)
			b.StartTimer()
		}
		r.read(b, rb)
		left--
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	// Drain what is left, so that the next reader starts on an empty ring.
	for range left {
		r.read(b, rb)
	}
}

type purebpfNext struct{ *sockfilter.RingBufReader }

func (r purebpfNext) read(b *testing.B, rb *ringBench) {
	rec, err := r.Next()
	if err != nil {
		b.Fatal(err)
	}
	rb.check(b, rec)
}

// purebpfBatch reads batches of 64 and hands out one record a call.
type purebpfBatch struct {
	*sockfilter.RingBufReader
	recs [][]byte
	i, n int
}

func (r *purebpfBatch) read(b *testing.B, rb *ringBench) {
	if r.i == r.n {
		n, err := r.NextBatch(r.recs)
		if err != nil {
			b.Fatal(err)
		}
		r.i, r.n = 0, n
	}
	rb.check(b, r.recs[r.i])
	r.i++
}

type ciliumReader struct {
	*ringbuf.Reader
	rec ringbuf.Record
}

func (r *ciliumReader) read(b *testing.B, rb *ringBench) {
	if err := r.ReadInto(&r.rec); err != nil {
		b.Fatal(err)
	}
	rb.check(b, r.rec.RawSample)
}

func BenchmarkRingBuf(b *testing.B) {
	rb := newRingBench(b)
	b.Run("purebpf-Next", func(b *testing.B) {
		r, err := sockfilter.NewRingBufReader(rb.events)
		if err != nil {
			b.Fatal(err)
		}
		rb.run(b, purebpfNext{r})
	})
	b.Run("purebpf-NextBatch64", func(b *testing.B) {
		r, err := sockfilter.NewRingBufReader(rb.events)
		if err != nil {
			b.Fatal(err)
		}
		rb.run(b, &purebpfBatch{RingBufReader: r, recs: make([][]byte, 64)})
	})
	b.Run("cilium-ReadInto", func(b *testing.B) {
		fd, err := unix.FcntlInt(uintptr(rb.events.FD()), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		m, err := ebpf.NewMapFromFD(fd)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
		r, err := ringbuf.NewReader(m)
		if err != nil {
			b.Fatal(err)
		}
		rb.run(b, &ciliumReader{Reader: r})
	})
}
