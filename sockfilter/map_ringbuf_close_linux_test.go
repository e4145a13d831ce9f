package sockfilter

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/internal/heapmap"
	"golang.org/x/sys/unix"
)

// childTestEnv names the test that a child process of the test binary
// runs (inChildProcess).
const childTestEnv = "PUREBPF_CHILD_TEST"

// inChildProcess runs the test again in a child process, once per GOGC
// setting (off: no collection but the ones the test forces; 100, the
// default; 1: one at every turn), and reports true: a test whose body
// could fault (a fatal error no test can recover from) then fails instead
// of killing the test binary. In the child it reports false, and the test
// runs its body.
func inChildProcess(t *testing.T, gogc ...string) bool {
	t.Helper()
	if os.Getenv(childTestEnv) == t.Name() {
		return false
	}
	for _, g := range gogc {
		t.Run("GOGC="+g, func(t *testing.T) {
			name := t.Name()[:strings.LastIndex(t.Name(), "/")]
			cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(name)+"$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childTestEnv+"="+name, "GOGC="+g)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
				t.Fatalf("child with GOGC=%s: %v\n%s", g, err, out)
			}
			t.Logf("child with GOGC=%s:\n%s", g, out)
		})
	}
	return true
}

// ringBufMappings counts the process's mappings of BPF maps: the ring
// buffer readers' consumer pages and the producer pages and data mapped
// over the heap.
func ringBufMappings(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "anon_inode:bpf-map")
}

// ringBufAwaitRelease collects garbage until the process has maps
// mappings of BPF maps again, as it had before a reader was made: an
// unreachable reader's cleanup runs on its own goroutine.
func ringBufAwaitRelease(t *testing.T, maps int) {
	t.Helper()
	for i := 0; ringBufMappings(t) != maps; i++ {
		if i == 1000 {
			t.Fatalf("%d mappings of BPF maps after %d collections; want %d: the reader was not released", ringBufMappings(t), i, maps)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// TestRingBufRecordLifetime runs TestRingBufRecordLifetime's body in a
// child process under each garbage collector setting, and with -race if
// the test binary has it: it holds records across each way a reader can
// end, and checks them byte for byte. A record that faults kills only the
// child.
func TestRingBufRecordLifetime(t *testing.T) {
	testutil.RequirePrivileged(t)
	if inChildProcess(t, "off", "100", "1") {
		return
	}
	for _, end := range []string{"dropped", "closed", "closed then dropped"} {
		t.Run(end, func(t *testing.T) {
			s := newRingSetup(t, os.Getpagesize(), ringOutputProg())
			maps := ringBufMappings(t)
			recs, stale := ringBufHeldRecords(t, s, end)
			var saved [][]byte
			for _, rec := range recs {
				saved = append(saved, bytes.Clone(rec))
			}
			check := func(when string) {
				t.Helper()
				for i, rec := range recs {
					if !bytes.Equal(rec, saved[i]) {
						t.Fatalf("%s: held record %d is %x; was %x", when, 90+i, rec, saved[i])
					}
				}
			}
			check("once the reader ended")
			// The reader lets go of the kernel's ring at Close, or once
			// it is collected.
			if end == "closed" {
				if n := ringBufMappings(t); n != maps {
					t.Fatalf("%d mappings of BPF maps after Close; want %d", n, maps)
				}
			}
			ringBufAwaitRelease(t, maps)
			// A record of an earlier read, whose space went back to the
			// producers: any bytes, but never a fault.
			sum := 0
			for _, b := range stale {
				sum += int(b)
			}
			ringChurn(t)
			check("after collections and a churned heap")
			// The records read were consumed; new readers read new
			// records, into other memory.
			seq := uint64(150)
			for range 3 {
				r := newTestReader(t, s.events)
				s.run(t, 20)
				for range 20 {
					rec, err := r.Next()
					if err != nil {
						t.Fatal(err)
					}
					if want := ringRecord(seq); !bytes.Equal(rec, want) {
						t.Fatalf("a new reader's record %x; want record %d, %x", rec, seq, want)
					}
					for i := range recs {
						if ringOverlap(rec, recs[i]) {
							t.Fatalf("a new reader's record is at %p, in the memory of held record %d", unsafe.SliceData(rec), 90+i)
						}
					}
					seq++
				}
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
				ringChurn(t)
			}
			check("after new readers read")
			t.Logf("%s: %d records held, stale record's byte sum %d", end, len(recs), sum)
			runtime.KeepAlive(recs)
			runtime.KeepAlive(stale)
		})
	}
}

// ringBufHeldRecords reads records 0 to 89 of s's 4 KiB ring with Next,
// and records 90 to 149 with one NextBatch, which wraps around the end of
// the ring, and ends the reader as end says ("dropped", "closed", "closed
// then dropped"). It returns the batch and record 10, whose space went
// back to the producers long before.
func ringBufHeldRecords(t *testing.T, s *ringSetup, end string) (recs [][]byte, stale []byte) {
	r, err := NewRingBufReader(s.events)
	if err != nil {
		t.Fatal(err)
	}
	s.run(t, 90)
	for i := range 90 {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if i == 10 {
			stale = rec
		}
	}
	s.run(t, 60)
	recs = make([][]byte, 60)
	if n, err := r.NextBatch(recs); err != nil || n != 60 {
		t.Fatalf("NextBatch = %d, %v", n, err)
	}
	if _, _, lo, ok := r.ring.Lent(); !ok || lo == 0 {
		t.Fatal("the batch does not wrap around the end of the ring")
	}
	for i, rec := range recs {
		if want := ringRecord(uint64(90 + i)); !bytes.Equal(rec, want) {
			t.Fatalf("record %d = %x, want %x", 90+i, rec, want)
		}
	}
	if end != "dropped" {
		if err := r.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if end != "closed" {
		r = nil
	}
	runtime.GC()
	runtime.KeepAlive(r)
	return recs, stale
}

// TestRingBufDroppedReaderConsumes drops a reader without Close after it
// read 30 of 40 records, fewer than the 4 KiB the reader reads before it
// stores consumer_pos, and checks that the next reader starts at record
// 30: the cleanup stores how far the dropped one read.
func TestRingBufDroppedReaderConsumes(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newRingSetup(t, 64<<10, ringOutputProg())
	s.run(t, 40)
	maps := ringBufMappings(t)
	func() {
		r, err := NewRingBufReader(s.events)
		if err != nil {
			t.Fatal(err)
		}
		for seq := range uint64(30) {
			rec, err := r.Next()
			if err != nil || !bytes.Equal(rec, ringRecord(seq)) {
				t.Fatalf("record %d = %x, %v", seq, rec, err)
			}
		}
	}()
	ringBufAwaitRelease(t, maps)
	r := newTestReader(t, s.events)
	for seq := uint64(30); seq < 40; seq++ {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec, ringRecord(seq)) {
			t.Fatalf("the next reader's record %x; want record %d, %x", rec, seq, ringRecord(seq))
		}
	}
}

// TestRingBufCloseReleases runs 2,000 cycles of a reader that reads
// records in place, some of which are held for a while, and is closed or
// (one in ten) dropped, and checks that they leave nothing behind: no descriptor,
// no mapping of the map, no quarantined memory, and a count of the
// process's mappings that levels off (the copies of the records held are
// mappings of their own until no record refers to them); and that every
// record was read once.
func TestRingBufCloseReleases(t *testing.T) {
	testutil.RequirePrivileged(t)
	s := newRingSetup(t, 4*os.Getpagesize(), ringOutputProg())
	const cycles, held = 2000, 10 // records held, of different readers
	type heldRecord struct {
		rec []byte
		seq uint64
	}
	var keep []heldRecord
	var seen addrRange
	seq := uint64(0)
	maps := 0
	cycle := func(i int) {
		r, err := NewRingBufReader(s.events)
		if err != nil {
			t.Fatal(err)
		}
		s.run(t, 3)
		for j := range 3 {
			rec, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec, ringRecord(seq)) {
				t.Fatalf("cycle %d: record %x; want record %d", i, rec, seq)
			}
			seen.add(rec)
			if i%10 == 0 && j == 0 {
				keep = append(keep, heldRecord{rec, seq})
			}
			seq++
		}
		if len(keep) > held {
			keep = slices.Delete(keep, 0, len(keep)-held) // clears the records let go
		}
		if i%10 != 5 {
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			return
		}
		// Dropped: the next reader must wait for the cleanup to store
		// how far this one read, as one reader of a map at a time.
		r = nil
		ringBufAwaitRelease(t, maps)
	}
	maps = ringBufMappings(t)
	cycle(0)
	fds, quarantined := countFDs(t), heapmap.Quarantined()
	const bound = 2*held + 8
	var counts []int
	for i := 1; i <= cycles; i++ {
		cycle(i)
		if i%(cycles/4) == 0 {
			ringBufAwaitRelease(t, maps)
			counts = append(counts, settled(t, func() int { return seen.mappings(t) }, bound))
		}
	}
	// Each record held is in a copy that is a mapping of its own, which
	// splits the heap's: at most two more each. The others' copies merge
	// back.
	t.Logf("mappings where the rings were, after each quarter of %d cycles: %v", cycles, counts)
	for _, n := range counts {
		if n > bound {
			t.Errorf("mappings where the rings were, after each quarter of %d cycles: %v; want at most %d, for %d records held", cycles, counts, bound, held)
			break
		}
	}
	if got := countFDs(t); got != fds {
		t.Errorf("%d fds after %d cycles, %d before", got, cycles, fds)
	}
	if q := heapmap.Quarantined(); q != quarantined {
		t.Errorf("%d objects quarantined after %d cycles, %d before", q, cycles, quarantined)
	}
	for _, h := range keep {
		if !bytes.Equal(h.rec, ringRecord(h.seq)) {
			t.Errorf("held record %d is %x; want %x", h.seq, h.rec, ringRecord(h.seq))
		}
	}
}

// settled collects garbage and returns count(), again and again for a
// while until it is at most want: the finalizers that let the copies of
// records and frames held merge back into the heap's mapping run on their
// own goroutine after a collection.
func settled(t *testing.T, count func() int, want int) int {
	t.Helper()
	n := 0
	for range 50 {
		runtime.GC()
		time.Sleep(2 * time.Millisecond)
		if n = count(); n <= want {
			break
		}
	}
	return n
}

// addrRange is the range of addresses of memory a test saw, safe for
// concurrent use.
type addrRange struct {
	mu     sync.Mutex
	lo, hi uintptr
}

func (a *addrRange) add(b []byte) {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	a.mu.Lock()
	if a.lo == 0 || p < a.lo {
		a.lo = p
	}
	a.hi = max(a.hi, p+uintptr(len(b)))
	a.mu.Unlock()
}

// mappings counts the process's mappings that overlap the range: in the
// heap, where rings were mapped, those that did not merge back into the
// heap's mapping.
func (a *addrRange) mappings(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		from, to, ok := strings.Cut(strings.Fields(line)[0], "-")
		if !ok {
			t.Fatalf("/proc/self/maps: %q", line)
		}
		lo, err1 := strconv.ParseUint(from, 16, 64)
		hi, err2 := strconv.ParseUint(to, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("/proc/self/maps: %q", line)
		}
		if uintptr(lo) < a.hi && uintptr(hi) > a.lo {
			n++
		}
	}
	return n
}

// TestRingMremapFails makes mremap(2) fail as Close replaces the memory
// of frames and records held, before and after it unmapped its
// destination (mm/mremap.c: mremap_to unmaps it first), and checks that
// they keep their bytes and that nothing faults: in a child process, so
// that a fault fails the test.
func TestRingMremapFails(t *testing.T) {
	testutil.RequirePrivileged(t)
	if inChildProcess(t, "100") {
		return
	}
	fails := []struct {
		name string
		fail func(unsafe.Pointer, []byte) error
	}{
		{"fails", func(unsafe.Pointer, []byte) error { return unix.ENOMEM }},
		{"fails after unmapping", func(_ unsafe.Pointer, dst []byte) error {
			if err := unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(dst)), uintptr(len(dst))); err != nil {
				return err
			}
			return unix.ENOMEM
		}},
	}
	for _, f := range fails {
		name, fail := f.name, f.fail
		calls := 0
		setMremap := func(t *testing.T) {
			heapmap.Mremap = func(src unsafe.Pointer, dst []byte) error {
				calls++
				return fail(src, dst)
			}
			t.Cleanup(func() { heapmap.Mremap = mremap })
		}
		quarantined := heapmap.Quarantined()
		t.Run("Conn/mremap "+name, func(t *testing.T) {
			port := connSink(t)
			prog := connLoad(t, connUDPPortFilter(port, -1))
			cfg := &Config{RingBlockSize: 64 << 10, RingBlockCount: 16, RingBlockTimeout: time.Millisecond}
			setMremap(t)
			calls = 0
			frames, saved, _ := ringHeldFrames(t, prog, cfg, newConnSender(t, "udp4"), port, "closed")
			if calls == 0 {
				t.Fatal("Close did not call mremap")
			}
			ringChurn(t)
			for i := range frames {
				if !bytes.Equal(frames[i], saved[i]) {
					t.Fatalf("held frame %d is %x; was %x", i, frames[i], saved[i])
				}
			}
		})
		t.Run("RingBufReader/mremap "+name, func(t *testing.T) {
			s := newRingSetup(t, os.Getpagesize(), ringOutputProg())
			setMremap(t)
			calls = 0
			recs, _ := ringBufHeldRecords(t, s, "closed")
			if calls == 0 {
				t.Fatal("Close did not call mremap")
			}
			ringChurn(t)
			for i, rec := range recs {
				if want := ringRecord(uint64(90 + i)); !bytes.Equal(rec, want) {
					t.Fatalf("held record %d is %x; want %x", 90+i, rec, want)
				}
			}
			// Close succeeded: the records were consumed.
			s.run(t, 1)
			r := newTestReader(t, s.events)
			if rec, err := r.Next(); err != nil || !bytes.Equal(rec, ringRecord(150)) {
				t.Errorf("the next reader's first record = %x, %v; want record 150", rec, err)
			}
		})
		if q := heapmap.Quarantined(); q != quarantined {
			t.Errorf("mremap %s: %d objects quarantined, %d before; the fallback should succeed", name, q, quarantined)
		}
	}
}

// mremap is heapmap.Mremap as the readers use it.
var mremap = heapmap.Mremap
