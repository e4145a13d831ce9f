package sockfilter

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/internal/kparse"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// flowRig runs the flow program on frames through BPF_PROG_TEST_RUN.
type flowRig struct {
	link     packet.LinkType
	prog     *Program
	flows    *Map
	counters *Map
	cpus     int
}

// newFlowRig loads the flow program for link with filter in front, made
// for the test run, with a table of maxFlows flows; with live, the program
// a live socket runs, to be run on frames behind an outer Ethernet header
// (wrapFrame).
func newFlowRig(t testing.TB, filter asm.Instructions, link packet.LinkType, perCPU, live bool, maxFlows uint32) *flowRig {
	t.Helper()
	r := &flowRig{link: link, cpus: 1}
	typ := LRUHash
	if perCPU {
		typ = LRUPerCPUHash
		r.cpus, _ = PossibleCPUs()
	}
	var err error
	if r.flows, err = NewMap(&MapSpec{Type: typ, KeySize: kparse.FlowKeySize, ValueSize: kparse.FlowValueSize, MaxEntries: maxFlows}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.flows.Close() })
	if r.counters, err = NewMap(&MapSpec{Type: PerCPUArray, ValueSize: kparse.FlowCountersSize, MaxEntries: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.counters.Close() })
	clock, err := kernelClock(0, preciseClocks...)
	if err != nil {
		t.Fatal(err)
	}
	if filter == nil {
		filter = acceptEvery
	}
	base := 0
	if link == packet.LinkEthernet && !live {
		base = wire.EthernetHeaderLen
	}
	if r.prog, err = loadFlowProgram(filter, link, base, 0, r.flows, r.counters, perCPU, clock); err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() { r.prog.Close() })
	return r
}

// table returns the flow table, keys without the interface and
// direction, which the test run gives as lo would.
func (r *flowRig) table(t testing.TB) map[flow.Key]flow.Counters {
	t.Helper()
	got := map[flow.Key]flow.Counters{}
	it := r.flows.Iterate()
	for it.Next() {
		k, err := kparse.DecodeKey(it.Key())
		if err != nil {
			t.Fatal(err)
		}
		var c flow.Counters
		if _, err := kparse.DecodeValue(it.Value(), r.cpus, kparse.Clock{}, &c); err != nil {
			t.Fatal(err)
		}
		k.Ifindex, k.Direction = 0, packet.DirectionUnknown
		g := got[k]
		g.Packets += c.Packets
		g.Bytes += c.Bytes
		g.TCPFlags |= c.TCPFlags
		got[k] = g
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestFlowsEquivalence runs the flow program on the frames of the corpus
// and generated ones, each three times, through BPF_PROG_TEST_RUN, and
// compares the table with what flow.KeyOf and flow.Counters.Add make of
// Parse's records: every key, packet count, byte count and TCP flags.
func TestFlowsEquivalence(t *testing.T) {
	testutil.RequirePrivileged(t)
	byLink := map[packet.LinkType][][]byte{}
	for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
		for _, f := range testutil.FramesOf(t, uint16(link)) {
			byLink[link] = append(byLink[link], f.Data)
		}
	}
	byLink[packet.LinkEthernet] = append(byLink[packet.LinkEthernet], testutil.GenFrames(17, 3000)...)
	for _, perCPU := range []bool{false, true} {
		for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
			for _, live := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/percpu=%v/live=%v", link, perCPU, live), func(t *testing.T) {
					flowEquivalence(t, link, perCPU, live, byLink[link])
				})
			}
		}
	}
}

// flowEquivalence runs the flow program on frames, each three times, and
// compares the table with KeyOf's.
func flowEquivalence(t *testing.T, link packet.LinkType, perCPU, live bool, frames [][]byte) {
	rig := newFlowRig(t, nil, link, perCPU, live, 1<<16)
	want := map[flow.Key]flow.Counters{}
	packets := uint64(0)
	for _, f := range frames {
		for range 3 {
			var err error
			if live {
				_, err = rig.prog.Test(wrapFrame(f), packet.LinkEthernet)
			} else {
				_, err = rig.prog.Test(f, link)
			}
			if err != nil {
				t.Fatal(err)
			}
			packets++
		}
		var r packet.Record
		packet.Parse(f, link, nil, &r)
		k := flow.KeyOf(&r)
		c := want[k]
		for range 3 {
			c.Packets++
			c.Bytes += uint64(r.Length)
			c.TCPFlags |= r.TCPFlags
		}
		want[k] = c
	}
	got := rig.table(t)
	diffs := 0
	for k, w := range want {
		if g := got[k]; g.Packets != w.Packets || g.Bytes != w.Bytes || g.TCPFlags != w.TCPFlags {
			diffs++
			if diffs <= 10 {
				t.Errorf("flow %v: kernel %d packets, %d bytes, flags %v; KeyOf %d, %d, %v", k, g.Packets, g.Bytes, g.TCPFlags, w.Packets, w.Bytes, w.TCPFlags)
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs++
			if diffs <= 20 {
				t.Errorf("kernel flow %v (%d packets) that KeyOf never gives", k, g.Packets)
			}
		}
	}
	t.Logf("%d frames three times, %d flows, %d differences", len(frames), len(want), diffs)
	if diffs != 0 {
		t.Errorf("%d flows differ", diffs)
	}
	total, _ := rig.totals(t)
	if total != packets {
		t.Errorf("the kernel's total is %d packets; %d were run", total, packets)
	}
}

// totals returns the program's per-CPU totals, added up.
func (r *flowRig) totals(t testing.TB) (packets, bytes uint64) {
	t.Helper()
	vals, err := r.counters.LookupPerCPU(make([]byte, 4))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		packets += binary.NativeEndian.Uint64(v[kparse.CounterPackets:])
		bytes += binary.NativeEndian.Uint64(v[kparse.CounterBytes:])
	}
	return packets, bytes
}
