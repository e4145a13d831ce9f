//go:build linux

package heapmap

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// childEnv names the test a child process of the test binary runs.
const childEnv = "PUREBPF_HEAPMAP_CHILD"

// inChild runs the test again in a child process, once per GOGC setting,
// and reports true: a test whose body could fault (a fatal error no test
// can recover from) then fails instead of killing the test binary. In the
// child it reports false, and the test runs its body.
func inChild(t *testing.T, gogc ...string) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return false
	}
	for _, g := range gogc {
		t.Run("GOGC="+g, func(t *testing.T) {
			name := t.Name()[:strings.LastIndex(t.Name(), "/")]
			cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(name)+"$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+name, "GOGC="+g)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
				t.Fatalf("child: %v\n%s", err, out)
			}
			t.Logf("child:\n%s", out)
		})
	}
	return true
}

// memfdRing is a memfd of size bytes after a first page, mapped over a
// heap object from that page on, as the kernel's rings are; its bytes are
// a pattern.
func memfdRing(t *testing.T, size int) (obj Object, fd int) {
	t.Helper()
	fd, err := unix.MemfdCreate("heapmap-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	page := os.Getpagesize()
	if err := unix.Ftruncate(fd, int64(page+size)); err != nil {
		t.Fatal(err)
	}
	obj = Pages(size)
	if err := MapFile(obj.Mem, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED, fd, int64(page)); err != nil {
		t.Fatal(err)
	}
	for i := range obj.Mem {
		obj.Mem[i] = byte(i*7 + 1)
	}
	// The stores went to the file, from its second page on.
	got := make([]byte, 16)
	if _, err := unix.Pread(fd, got, int64(page)); err != nil || !bytes.Equal(got, obj.Mem[:16]) {
		t.Fatalf("the file's second page holds %x, %v; want %x", got, err, obj.Mem[:16])
	}
	return obj, fd
}

// memfdMapped counts the process's mappings of the test's memfds.
func memfdMapped(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "memfd:heapmap-test")
}

// TestReplace checks that Replace keeps the bytes of the spans kept,
// zeroes the rest, gives the heap writable memory and lets go of the file,
// also when mremap fails, before or after unmapping its destination.
func TestReplace(t *testing.T) {
	if inChild(t, "100") {
		return
	}
	tests := []struct {
		name   string
		mremap func(src unsafe.Pointer, dst []byte) error
	}{
		{"mremap", nil},
		{"mremap fails", func(unsafe.Pointer, []byte) error { return unix.ENOMEM }},
		{"mremap fails after unmapping", func(_ unsafe.Pointer, dst []byte) error {
			// As mremap_to does when a later step fails.
			if err := unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(dst)), uintptr(len(dst))); err != nil {
				return err
			}
			return unix.ENOMEM
		}},
	}
	page := os.Getpagesize()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			if tt.mremap != nil {
				Mremap = func(src unsafe.Pointer, dst []byte) error {
					calls++
					return tt.mremap(src, dst)
				}
				t.Cleanup(func() { Mremap = mremapOnto })
			}
			obj, fd := memfdRing(t, 8*page)
			mem := obj.Mem
			// Two runs kept: pages 1 and 2 (a span across them) and 5.
			keep := []Span{{5 * page, 5*page + 10}, {page + 100, 2*page + 50}}
			held := [][]byte{mem[page+100 : 2*page+50], mem[5*page : 5*page+10]}
			var saved [][]byte
			for _, h := range held {
				saved = append(saved, bytes.Clone(h))
			}
			want := bytes.Clone(mem)
			for _, p := range []int{0, 3, 4, 6, 7} {
				clear(want[p*page : (p+1)*page])
			}
			quarantined := Quarantined()
			if err := obj.Replace(keep); err != nil {
				t.Fatalf("Replace: %v", err)
			}
			if tt.mremap != nil && calls != 2 {
				t.Errorf("Mremap called %d times; want once a run kept, 2", calls)
			}
			if q := Quarantined(); q != quarantined {
				t.Errorf("%d objects quarantined, %d before", q, quarantined)
			}
			for i, h := range held {
				if !bytes.Equal(h, saved[i]) {
					t.Errorf("held slice %d is %x; was %x", i, h, saved[i])
				}
			}
			if !bytes.Equal(mem, want) {
				t.Error("the memory is not the kept pages' bytes and zeros elsewhere")
			}
			if n := memfdMapped(t); n != 0 {
				t.Errorf("%d mappings of the file remain", n)
			}
			// The file is no longer what mem shows, and mem is writable.
			if _, err := unix.Pwrite(fd, []byte{0xff}, int64(2*page+100)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(held[0], saved[0]) {
				t.Error("a write to the file shows in the held slice")
			}
			for i := range mem {
				mem[i] = 0xaa
			}
			runtime.KeepAlive(held)
		})
	}
}

// TestReplaceNoKeep checks that Replace with nothing to keep zeroes the
// object and lets go of the file.
func TestReplaceNoKeep(t *testing.T) {
	obj, _ := memfdRing(t, 4*os.Getpagesize())
	if err := obj.Replace(nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(obj.Mem, make([]byte, len(obj.Mem))) {
		t.Error("the memory is not zero")
	}
	if n := memfdMapped(t); n != 0 {
		t.Errorf("%d mappings of the file remain", n)
	}
}

// processMappings counts the process's memory mappings.
func processMappings(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// settledMappings collects garbage and counts the process's mappings,
// again and again for a while if there are more than bound beyond the
// first count: finalizers run on their own goroutine after a collection.
func settledMappings(t *testing.T, counts []int, bound int) int {
	t.Helper()
	n := 0
	for range 50 {
		runtime.GC()
		time.Sleep(2 * time.Millisecond) // for the finalizers
		if n = processMappings(t); len(counts) == 0 || n-counts[0] <= bound {
			break
		}
	}
	return n
}

// TestReplaceMappingsLevelOff maps, replaces and drops objects of varying
// sizes, keeping a page of each and holding slices of the last few, and
// checks that the process's mappings level off: the copies Replace moves
// in cannot merge with the heap's mapping while they are kept, but the
// finalizer gives the heap fresh pages once they are not.
func TestReplaceMappingsLevelOff(t *testing.T) {
	if inChild(t, "100") { // a child, for a heap of its own
		return
	}
	page := os.Getpagesize()
	fd, err := unix.MemfdCreate("heapmap-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, int64(32*page)); err != nil {
		t.Fatal(err)
	}
	const cycles, held = 2000, 10
	var keep [][]byte
	var counts []int
	for i := range cycles {
		obj := Pages((4 + i%13) * page)
		if err := MapFile(obj.Mem, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED, fd, 0); err != nil {
			t.Fatal(err)
		}
		k := (i % 3) * page
		if err := obj.Replace([]Span{{k, k + 100}}); err != nil {
			t.Fatal(err)
		}
		keep = append(keep, obj.Mem[k:k+100])
		if len(keep) > held {
			keep = slices.Delete(keep, 0, 1) // clears the slice let go
		}
		if i%(cycles/4) == cycles/4-1 {
			counts = append(counts, settledMappings(t, counts, 2*held))
		}
	}
	runtime.KeepAlive(keep)
	t.Logf("mappings after each quarter of %d cycles: %v", cycles, counts)
	// Without the finalizer, the copies stay mappings of their own and
	// fragment the heap's: hundreds more by the end.
	if grown := counts[3] - counts[0]; grown > 2*held {
		t.Errorf("%d more mappings over the last three quarters of the cycles (%v); want them levelled off", grown, counts)
	}
	if n := memfdMapped(t); n != 0 {
		t.Errorf("%d mappings of the file remain", n)
	}
}

func TestPageRuns(t *testing.T) {
	p := os.Getpagesize()
	tests := []struct {
		in, want []Span
	}{
		{nil, nil},
		{[]Span{{0, 1}}, []Span{{0, p}}},
		{[]Span{{p - 1, p + 1}}, []Span{{0, 2 * p}}},
		{[]Span{{3 * p, 3*p + 5}, {10, 20}}, []Span{{0, p}, {3 * p, 4 * p}}},
		{[]Span{{10, 20}, {p + 3, p + 4}}, []Span{{0, 2 * p}}},            // touching pages merge
		{[]Span{{5, 5}, {-3, 0}, {7 * p, 9 * p}}, []Span{{7 * p, 8 * p}}}, // empty and outside dropped, clamped
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in), func(t *testing.T) {
			got := pageRuns(slices.Clone(tt.in), 8*p)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("pageRuns(%v) = %v; want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestPages(t *testing.T) {
	page := os.Getpagesize()
	for _, n := range []int{1, 2, 17} {
		obj := Pages(n * page)
		if len(obj.Mem) != n*page || cap(obj.Mem) != n*page {
			t.Errorf("Pages(%d pages): len %d, cap %d", n, len(obj.Mem), cap(obj.Mem))
		}
		if addr := uintptr(unsafe.Pointer(unsafe.SliceData(obj.Mem))); addr%uintptr(page) != 0 {
			t.Errorf("Pages(%d pages) at %#x, not page-aligned", n, addr)
		}
		if base := uintptr(unsafe.Pointer(obj.base)); base > uintptr(unsafe.Pointer(unsafe.SliceData(obj.Mem))) {
			t.Errorf("the allocation starts at %#x, after the memory", base)
		}
	}
}
