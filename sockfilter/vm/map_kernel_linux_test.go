package vm_test

import (
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// The map differential tests run the same program with the same maps in
// the kernel (sockfilter.Load with LoadOptions.Maps, Program.Test) and in
// the VM (RunTest, the test run's view), frame after frame, on CPU 0 in
// both: the same r0 for every frame, and the same map contents, or ring
// buffer records, afterwards.

// mapDiffFrames is the number of generated frames each map program runs
// on.
const mapDiffFrames = 600

// hashProg counts, updates and deletes elements of a hash map h with a
// u32 key and a u64 value, from the frame's bytes: the key is the low
// byte of the IPv4 checksum (64 keys: hash maps of 16 fill up and evict),
// the update flags the low bits of
// the source's last byte (any, noexist, exist, and 3, which is invalid);
// a lookup that finds the key adds 1 to its value atomically, and then
// deletes it when the source MAC address is odd.
const hashProg = `
	r6 = r1
	r0 = *(u8 *)skb[-1048565]
	r7 = r0
	w7 &= 63
	*(u32 *)(r10 -4) = r7
	r0 = *(u8 *)skb[-1048561]
	r8 = r0
	w8 &= 3
	r0 = *(u32 *)skb[-1048564]
	*(u64 *)(r10 -16) = r0
	r0 = *(u8 *)skb[-2097147]
	r9 = r0
	r1 = map[h]
	r2 = r10
	r2 += -4
	call bpf_map_lookup_elem
	if r0 == 0x0 goto update
	r1 = 1
	lock *(u64 *)(r0 +0) += r1
	if w9 & 0x1 goto delete
update:
	r1 = map[h]
	r2 = r10
	r2 += -4
	r3 = r10
	r3 += -16
	r4 = r8
	call bpf_map_update_elem
	exit
delete:
	r1 = map[h]
	r2 = r10
	r2 += -4
	call bpf_map_delete_elem
	r0 += 1000
	exit
`

// arrayProg does the same on an array a of 8 elements with keys up to 15,
// so that half are out of range; a lookup that finds the key adds 3 with
// atomic_fetch_add and returns the old value, and deletes (which arrays
// refuse) when the source MAC address is odd.
const arrayProg = `
	r6 = r1
	r0 = *(u8 *)skb[-1048565]
	r7 = r0
	w7 &= 15
	*(u32 *)(r10 -4) = r7
	r0 = *(u8 *)skb[-1048561]
	r8 = r0
	w8 &= 3
	r0 = *(u32 *)skb[-1048564]
	*(u64 *)(r10 -16) = r0
	r0 = *(u8 *)skb[-2097147]
	r9 = r0
	r1 = map[a]
	r2 = r10
	r2 += -4
	call bpf_map_lookup_elem
	if r0 == 0x0 goto update
	r1 = 3
	r1 = atomic64_fetch_add((u64 *)(r0 +0), r1)
	if w9 & 0x1 goto delete
	r0 = r1
	exit
update:
	r1 = map[a]
	r2 = r10
	r2 += -4
	r3 = r10
	r3 += -16
	r4 = r8
	call bpf_map_update_elem
	exit
delete:
	r1 = map[a]
	r2 = r10
	r2 += -4
	call bpf_map_delete_elem
	exit
`

// ringProg writes a 16-byte record of the frame's bytes into ring buffer
// rb, submitting or discarding it by a bit of the source MAC address,
// outputs an 8-byte one, and returns what bpf_ringbuf_query says is
// waiting plus bpf_ringbuf_output's result: the ring fills up after some
// frames and the helpers fail as the kernel's do. It reads the frame
// first: the verifier refuses legacy loads while a record is held.
const ringProg = `
	r6 = r1
	r0 = *(u8 *)skb[-2097147]
	r7 = r0
	r0 = *(u32 *)skb[-2097152]
	r9 = r0
	r0 = *(u32 *)skb[-2097146]
	*(u64 *)(r10 -16) = r0
	r1 = map[rb]
	r2 = 16
	r3 = 0
	call bpf_ringbuf_reserve
	if r0 == 0x0 goto output
	*(u32 *)(r0 +0) = r9
	r1 = *(u64 *)(r10 -16)
	*(u32 *)(r0 +4) = r1
	*(u64 *)(r0 +8) = r7
	r1 = r0
	r2 = 0
	if w7 & 0x2 goto discard
	call bpf_ringbuf_submit
	goto output
discard:
	call bpf_ringbuf_discard
output:
	*(u64 *)(r10 -8) = r7
	r1 = map[rb]
	r2 = r10
	r2 += -8
	r3 = 8
	r4 = 0
	call bpf_ringbuf_output
	r7 = r0
	r1 = map[rb]
	r2 = 0
	call bpf_ringbuf_query
	r0 += r7
	exit
`

// valueProg adds the frame's first byte to the u32 at offset 4 of the
// single value of array a, through its address (LD_IMM64 of a map value),
// and returns the old one.
const valueProg = `
	r6 = r1
	r0 = *(u8 *)skb[-2097152]
	r1 = map[a][0]+4
	r0 = atomic_fetch_add((u32 *)(r1 +0), r0)
	exit
`

// onCPU0 pins the calling goroutine's thread to CPU 0 for the rest of t,
// so that the kernel's test runs and map operations happen there, where
// the VM's do.
func onCPU0(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	one.Set(0)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	})
}

func TestKernelMaps(t *testing.T) {
	testutil.RequirePrivileged(t)
	cpus, err := sockfilter.PossibleCPUs()
	if err != nil {
		t.Fatal(err)
	}
	frames := testutil.GenFrames(17, mapDiffFrames)
	for _, tc := range []struct {
		name string
		prog string
		spec sockfilter.MapSpec
	}{
		{"array", arrayProg, sockfilter.MapSpec{Type: sockfilter.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8}},
		{"array value address", valueProg, sockfilter.MapSpec{Type: sockfilter.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}},
		{"percpu_array", arrayProg, sockfilter.MapSpec{Type: sockfilter.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 8}},
		{"hash", hashProg, sockfilter.MapSpec{Type: sockfilter.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16}},
		{"hash no prealloc", hashProg, sockfilter.MapSpec{Type: sockfilter.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16, Flags: sockfilter.MapNoPrealloc}},
		{"percpu_hash", hashProg, sockfilter.MapSpec{Type: sockfilter.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 16}},
		{"lru_hash", hashProg, sockfilter.MapSpec{Type: sockfilter.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 16}},
		{"lru_hash of 40", hashProg, sockfilter.MapSpec{Type: sockfilter.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 40}},
		{"lru_hash no common lru", hashProg, sockfilter.MapSpec{Type: sockfilter.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 16, Flags: sockfilter.MapNoCommonLRU}},
		{"lru_percpu_hash", hashProg, sockfilter.MapSpec{Type: sockfilter.LRUPerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 16}},
		{"ringbuf", ringProg, sockfilter.MapSpec{Type: sockfilter.RingBuf, MaxEntries: 4096}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			onCPU0(t)
			name := map[sockfilter.MapType]string{sockfilter.Array: "a", sockfilter.PerCPUArray: "a", sockfilter.RingBuf: "rb"}[tc.spec.Type]
			if name == "" {
				name = "h"
			}
			km, err := sockfilter.NewMap(&tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { km.Close() })
			vmap := newMap(t, vm.MapSpec{Type: vm.MapType(tc.spec.Type), KeySize: tc.spec.KeySize, ValueSize: tc.spec.ValueSize,
				MaxEntries: tc.spec.MaxEntries, Flags: vm.MapFlags(tc.spec.Flags), CPUs: cpus})
			if vmap.MaxEntries() != km.MaxEntries() {
				t.Errorf("max entries: VM %d, kernel %d", vmap.MaxEntries(), km.MaxEntries())
			}
			insns, err := asm.Parse(tc.prog)
			if err != nil {
				t.Fatal(err)
			}
			prog, err := sockfilter.Load(insns, &sockfilter.LoadOptions{Maps: map[string]*sockfilter.Map{name: km}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { prog.Close() })
			v, err := vm.New(insns, &vm.Options{Kernel: true, Maps: map[string]*vm.Map{name: vmap}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.spec.Type != sockfilter.RingBuf {
				prefill(t, km, vmap)
			}
			runs, bad := 0, 0
			for i, f := range frames {
				want, err := prog.Test(f, packet.LinkEthernet)
				if err != nil {
					continue // the kernel's test run refuses it; so does the VM's run
				}
				runs++
				got, err := v.RunTest(f, packet.LinkEthernet)
				if err != nil || got != want {
					if bad++; bad <= 3 {
						t.Errorf("frame %d (% x): VM %#x, %v; kernel %#x", i, f, got, err, want)
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%d disagreements of %d runs", bad, runs)
			}
			if tc.spec.Type == sockfilter.RingBuf {
				compareRecords(t, km, vmap)
			} else {
				compareContents(t, km, vmap)
			}
			t.Logf("%d runs", runs)
		})
	}
}

// prefill writes elements from user space into both maps: keys 60 to 69,
// some of which the programs' keys meet.
func prefill(t *testing.T, km *sockfilter.Map, vmap *vm.Map) {
	t.Helper()
	for k := uint32(60); k < 70; k++ {
		value := u64(uint64(k) << 32)
		var kerr, verr error
		if vmap.Type().PerCPU() {
			values := make([][]byte, vmap.CPUs())
			for c := range values {
				values[c] = u64(uint64(k)<<32 | uint64(c))
			}
			kerr, verr = km.UpdatePerCPU(u32(k), values, sockfilter.UpdateAny), vmap.UpdatePerCPU(u32(k), values, vm.UpdateAny)
		} else {
			kerr, verr = km.Update(u32(k), value, sockfilter.UpdateAny), vmap.Update(u32(k), value, vm.UpdateAny)
		}
		if (kerr == nil) != (verr == nil) {
			t.Fatalf("update of %d from user space: kernel %v, VM %v", k, kerr, verr)
		}
	}
}

// compareContents compares the elements of the kernel's map and the
// VM's.
func compareContents(t *testing.T, km *sockfilter.Map, vmap *vm.Map) {
	t.Helper()
	kernel := map[string]string{}
	it := km.Iterate()
	for it.Next() {
		var value []byte
		if km.Type().PerCPU() {
			for _, v := range it.PerCPUValues() {
				value = append(value, v...)
			}
		} else {
			value = it.Value()
		}
		kernel[hex.EncodeToString(it.Key())] = hex.EncodeToString(value)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	own := map[string]string{}
	for k := range vmap.All() {
		var value []byte
		if vmap.Type().PerCPU() {
			values, err := vmap.LookupPerCPU(k)
			if err != nil {
				t.Fatal(err)
			}
			value = slices.Concat(values...)
		} else {
			value, _ = vmap.Lookup(k)
		}
		own[hex.EncodeToString(k)] = hex.EncodeToString(value)
	}
	if !maps.Equal(kernel, own) {
		t.Errorf("map contents differ:\nkernel %v\nVM     %v", sorted(kernel), sorted(own))
	}
	if len(own) == 0 {
		t.Error("the map is empty")
	}
	t.Logf("%d elements", len(own))
}

func sorted(m map[string]string) string {
	s := ""
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s += k + ":" + m[k] + " "
	}
	return s
}

// compareRecords reads the records of the kernel's ring buffer and of
// the VM's, which must be the same, in order.
func compareRecords(t *testing.T, km *sockfilter.Map, vmap *vm.Map) {
	t.Helper()
	r, err := sockfilter.NewRingBufReader(km)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var kernel []string
	r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	for {
		rec, err := r.Next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kernel = append(kernel, hex.EncodeToString(rec))
	}
	var own []string
	for rec := range vmap.Records() {
		own = append(own, hex.EncodeToString(rec))
	}
	if !slices.Equal(kernel, own) {
		t.Errorf("records differ:\nkernel %d %v\nVM     %d %v", len(kernel), kernel, len(own), own)
	}
	if len(own) == 0 {
		t.Error("no records")
	}
}
