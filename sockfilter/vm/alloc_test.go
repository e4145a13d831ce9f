package vm_test

import (
	"sync"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// busyProgram uses the stack, the context, a helper, a subprogram and the
// legacy loads: every part of a run that may need memory.
const busyProgram = `
	r6 = r1
	r7 = *(u32 *)(r6 +0)
	*(u32 *)(r6 +48) = r7
	r1 = r6
	r2 = 12
	r3 = r10
	r3 += -8
	r4 = 2
	r5 = 0
	call bpf_skb_load_bytes_relative
	r0 = *(u16 *)(r10 -8)
	r1 = r0
	call f
	r2 = *(u32 *)(r6 +48)
	r0 += r2
	exit
f:
	*(u64 *)(r10 -8) = r1
	r0 = *(u64 *)(r10 -8)
	r0 += 1
	exit
`

// TestNoAllocs pins the promise that a run allocates nothing, in each
// view and for a program with and without memory.
func TestNoAllocs(t *testing.T) {
	compiled, err := pcapfilter.Compile("tcp port 80 or udp port 53", packet.LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	pure, err := vm.New(compiled, nil)
	if err != nil {
		t.Fatal(err)
	}
	busy := newVM(t, busyProgram, nil)
	mem := newVM(t, "r3 = *(u64 *)(r1 +0)\n*(u64 *)(r10 -8) = r3\nr0 = *(u32 *)(r10 -4)\nr0 += r2\nexit\n", nil)
	raw := udpFrame[14:]
	hash, err := vm.NewMap(&vm.MapSpec{Type: vm.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := vm.NewMap(&vm.MapSpec{Type: vm.RingBuf, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	maps := newVM(t, `
		r6 = r1
		r0 = *(u32 *)(r6 +0)
		*(u32 *)(r10 -4) = r0
		*(u64 *)(r10 -16) = 1
		r1 = map[h]
		r2 = r10
		r2 += -4
		r3 = r10
		r3 += -16
		r4 = 1
		call bpf_map_update_elem
		r1 = map[h]
		r2 = r10
		r2 += -4
		call bpf_map_lookup_elem
		if r0 == 0x0 goto out
		r1 = 1
		lock *(u64 *)(r0 +0) += r1
		r1 = map[rb]
		r2 = 8
		r3 = 0
		call bpf_ringbuf_reserve
		if r0 == 0x0 goto out
		r1 = r0
		r2 = 0
		call bpf_ringbuf_submit
	out:
		r0 = 0
		exit`, &vm.Options{Maps: map[string]*vm.Map{"h": hash, "rb": rb}})
	info := &packet.Info{Ifindex: 2, Direction: packet.DirectionHost, HasVLAN: true, VLANTCI: 5, VLANTPID: 0x8100}
	for _, tc := range []struct {
		name string
		run  func()
	}{
		{"RunFrame compiled", func() { pure.RunFrame(udpFrame, packet.LinkEthernet) }},
		{"RunTest compiled", func() { pure.RunTest(udpFrame, packet.LinkEthernet) }},
		{"RunFrame", func() { busy.RunFrame(udpFrame, packet.LinkEthernet) }},
		{"RunFrameInfo", func() { busy.RunFrameInfo(udpFrame, packet.LinkEthernet, info) }},
		{"RunTest", func() { busy.RunTest(udpFrame, packet.LinkEthernet) }},
		{"RunTest raw IP", func() { busy.RunTest(raw, packet.LinkRawIP) }},
		{"RunMemory", func() { mem.RunMemory(udpFrame) }},
		{"RunFrame with maps", func() {
			maps.RunFrame(udpFrame, packet.LinkEthernet)
			rb.NextRecord()
		}},
	} {
		tc.run() // the first run may allocate the Env, and grow its buffers
		if n := testing.AllocsPerRun(1000, tc.run); n != 0 {
			t.Errorf("%s: %v allocations a run, want 0", tc.name, n)
		}
	}
}

// TestConcurrentRuns runs one VM from many goroutines at once (run it with
// -race): each run must give what it gives alone.
func TestConcurrentRuns(t *testing.T) {
	v := newVM(t, busyProgram, nil)
	frames := testutil.GenFrames(9, 64)
	want := make([]uint32, len(frames))
	for i, f := range frames {
		var err error
		if want[i], err = v.RunFrame(f, packet.LinkEthernet); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for n := range 300 {
				i := (g*7 + n) % len(frames)
				got, err := v.RunFrame(frames[i], packet.LinkEthernet)
				if err != nil || got != want[i] {
					errs <- "concurrent run differs"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
