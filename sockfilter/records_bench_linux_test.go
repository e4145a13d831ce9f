package sockfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/internal/kparse"
	"github.com/purebpf/purebpf/sockfilter/internal/ringbuf"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// benchPort is the port of the datagrams of the kernel benchmarks, as the
// capture benchmark's flood sends them.
const benchPort = 40000

// floodFrame returns the frame of one of the capture benchmark's
// datagrams: 64 bytes of UDP payload to 127.0.0.1:benchPort, on lo.
func floodFrame(tb testing.TB) []byte {
	f := testutil.FrameCopy(tb, "udp4")[:14+20+8]
	binary.BigEndian.PutUint16(f[14+2:], 20+8+64)
	binary.BigEndian.PutUint16(f[14+20+2:], benchPort)
	binary.BigEndian.PutUint16(f[14+20+4:], 8+64)
	return append(f, make([]byte, 64)...)
}

// kernelRuns runs p repeat times on frame in one BPF_PROG_TEST_RUN and
// returns the kernel's mean time per run in ns. A run a signal interrupts
// (EINTR, after some of its repeats) is made again: the benchmark does not
// mind the extra records.
func kernelRuns(b *testing.B, p *Program, frame []byte, repeat uint32) uint32 {
	for {
		attr := sys.ProgTestRunAttr{
			ProgFD:     uint32(p.FD()),
			DataSizeIn: uint32(len(frame)),
			DataIn:     sys.SlicePointer(frame),
			Repeat:     repeat,
		}
		err := sys.ProgTestRun(&attr)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		return attr.Duration
	}
}

// BenchmarkKernelPrograms measures what the programs cost the kernel per
// packet, beside each other: each is run 10,000 times per
// BPF_PROG_TEST_RUN on floodFrame, and the kernel's mean time per run is
// reported as kernel-ns/packet (the b.Loop's own ns/op is that of the
// system call and of draining the ring buffer).
//
// The programs are those a live socket runs (Base 0), on the frame behind
// an outer Ethernet header that the test run consumes (wrapFrame), so that
// they see it as a live socket does; the filter's loads relative to the
// link-layer header that the programs do not serve from their copy of the
// frame become loads relative to skb->data, which is where the link-layer
// header is on a live socket (dataRelative).
//
//   - empty: `r0 = 0; exit`, what a run costs the test run itself;
//   - filter: 'udp dst port 40000' compiled, as the capture benchmark's;
//   - records, records-perf: the filter, the parser and the record, to a
//     ring buffer (with the watermark's bpf_ringbuf_query) or perf buffer;
//   - flows, flows-percpu: the filter, the parser and the flow table's
//     update (a hit: one flow), shared or per CPU, stamped with
//     ClockCoarse as ListenFlows does; flows-tai with the records' clock;
//   - records-rawip, flows-rawip: the programs of a raw IP link on the
//     datagram's IP packet.
//
// Run it with internal/bench/capture/kernelcost.sh for medians and
// spreads.
func BenchmarkKernelPrograms(b *testing.B) {
	testutil.RequirePrivileged(b)
	frame := floodFrame(b)
	clock, err := kernelClock(0, preciseClocks...)
	if err != nil {
		b.Fatal(err)
	}
	coarse, err := kernelClock(0, flowClocks...)
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		link packet.LinkType
		load func(filter asm.Instructions, link packet.LinkType) (*Program, func())
	}{
		{"empty", packet.LinkEthernet, func(asm.Instructions, packet.LinkType) (*Program, func()) {
			return benchLoad(b, asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Exit()}), nil
		}},
		{"filter", packet.LinkEthernet, func(f asm.Instructions, _ packet.LinkType) (*Program, func()) {
			return benchLoad(b, f), nil
		}},
		{"records", packet.LinkEthernet, benchRecords(b, clock, false)},
		{"records-perf", packet.LinkEthernet, benchRecords(b, clock, true)},
		{"flows", packet.LinkEthernet, benchFlows(b, coarse, false)},
		{"flows-percpu", packet.LinkEthernet, benchFlows(b, coarse, true)},
		{"flows-tai", packet.LinkEthernet, benchFlows(b, clock, false)},
		{"records-rawip", packet.LinkRawIP, benchRecords(b, clock, false)},
		{"flows-rawip", packet.LinkRawIP, benchFlows(b, coarse, false)},
	} {
		b.Run(tt.name, func(b *testing.B) {
			filter, err := pcapfilter.Compile("udp dst port 40000", tt.link)
			if err != nil {
				b.Fatal(err)
			}
			data := wrapFrame(frame)
			if tt.link == packet.LinkRawIP {
				data = wrapFrame(frame[wire.EthernetHeaderLen:])
			} else if filter, err = dataRelative(filter, tt.name == "filter"); err != nil {
				b.Fatal(err)
			}
			p, drain := tt.load(filter, tt.link)
			if v, err := p.Test(data, packet.LinkEthernet); err != nil || (tt.name == "filter") != (v != 0) {
				b.Fatalf("the program returns %d, %v", v, err)
			}
			const repeat = 10000
			// A first run out of the count: the first use of a program
			// and its maps is slower (caches, the TLB).
			kernelRuns(b, p, data, repeat)
			if drain != nil {
				drain()
			}
			var total, runs uint64
			b.ReportAllocs()
			for b.Loop() {
				total += uint64(kernelRuns(b, p, data, repeat)) * repeat
				runs += repeat
				if drain != nil {
					drain()
				}
			}
			b.ReportMetric(float64(total)/float64(runs), "kernel-ns/packet")
		})
	}
}

// dataRelative returns filter with its indexed legacy packet loads (and
// with all, its constant ones too) relative to the link-layer header
// (SKF_LL_OFF) made relative to skb->data: the same bytes on a live
// SOCK_RAW socket, and under the test run the bytes behind the outer
// header of wrapFrame. The record and flow programs serve a filter's
// constant loads from their copy of the frame, as on a live socket.
func dataRelative(filter asm.Instructions, all bool) (asm.Instructions, error) {
	out := append(asm.Instructions(nil), filter...)
	for i := range out {
		ins := &out[i]
		if ins.OpCode.Class() != asm.LdClass || (ins.OpCode.Mode() != asm.IndMode && !(all && ins.OpCode.Mode() == asm.AbsMode)) {
			continue
		}
		switch k := int32(ins.Constant); {
		case k >= skb.LLOff && k < skb.NetOff:
			ins.Constant = int64(k - skb.LLOff)
		case k < 0:
			return nil, fmt.Errorf("instruction %d (%v) reads relative to another header", i, ins)
		}
	}
	return out, nil
}

func benchLoad(b *testing.B, insns asm.Instructions) *Program {
	p, err := Load(insns, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// benchRecords returns the loader of a record program whose records the
// returned function drains.
func benchRecords(b *testing.B, clock KernelClock, perf bool) func(asm.Instructions, packet.LinkType) (*Program, func()) {
	return func(filter asm.Instructions, link packet.LinkType) (*Program, func()) {
		const base = 0 // the live socket's program
		counters, err := NewMap(&MapSpec{Type: PerCPUArray, ValueSize: kparse.RecordCountersSize, MaxEntries: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { counters.Close() })
		if perf {
			// A buffer on each CPU that holds a run's 10,000 records.
			records, err := NewMap(&MapSpec{Type: PerfEventArray})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { records.Close() })
			rd, err := NewPerfReader(records, &PerfReaderOptions{BufferSize: 4 << 20, Watermark: 2 << 20})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { rd.Close() })
			p, err := loadRecordProgram(filter, link, base, 0, records, counters, true, 0, clock)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Close() })
			return p, func() { drainPerf(rd) }
		}
		// The default ring buffer and watermark: a run's 10,000 records
		// take 1.1 MB of it, and the drain after each run empties it.
		const size = DefaultRecordRingSize
		records, err := NewMap(&MapSpec{Type: RingBuf, MaxEntries: size})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { records.Close() })
		p, err := loadRecordProgram(filter, link, base, 0, records, counters, false, size/4, clock)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		fd, err := dupFD(records)
		if err != nil {
			b.Fatal(err)
		}
		mapping, ring, err := ringbuf.Map(fd, size)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { mapping.Close(); unix.Close(fd) })
		return p, func() {
			for {
				if _, ok, err := ring.Next(); err != nil || !ok {
					break
				}
			}
			ring.Release()
		}
	}
}

// drainPerf reads what the perf buffers hold.
func drainPerf(rd *PerfReader) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	for _, buf := range rd.bufs {
		for {
			if _, ok, err := buf.Ring.Next(); err != nil || !ok {
				break
			}
		}
	}
}

// benchFlows returns the loader of a flow program.
func benchFlows(b *testing.B, clock KernelClock, perCPU bool) func(asm.Instructions, packet.LinkType) (*Program, func()) {
	return func(filter asm.Instructions, link packet.LinkType) (*Program, func()) {
		const base = 0 // the live socket's program
		typ := LRUHash
		if perCPU {
			typ = LRUPerCPUHash
		}
		flows, err := NewMap(&MapSpec{Type: typ, KeySize: kparse.FlowKeySize, ValueSize: kparse.FlowValueSize, MaxEntries: DefaultMaxFlows})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { flows.Close() })
		counters, err := NewMap(&MapSpec{Type: PerCPUArray, ValueSize: kparse.FlowCountersSize, MaxEntries: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { counters.Close() })
		p, err := loadFlowProgram(filter, link, base, 0, flows, counters, perCPU, clock)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		return p, nil
	}
}

// BenchmarkNextRecords measures the reader's path per record: NextRecords
// in batches of 64 from a ring buffer that the kernel's record program
// filled (through BPF_PROG_TEST_RUN, outside the timer), records decoded
// into packet.Record and packet.Info values.
func BenchmarkNextRecords(b *testing.B) {
	testutil.RequirePrivileged(b)
	v := testutil.NewVeth(b)
	var rc *RecordConn
	v.NS.Do(b, func() {
		var err error
		if rc, err = ListenRecords(v.A, nil, &RecordConfig{RingSize: 16 << 20}); err != nil {
			b.Fatal(err)
		}
	})
	b.Cleanup(func() { rc.Close() })
	p, err := loadRecordProgram(acceptEvery, packet.LinkEthernet, wire.EthernetHeaderLen, 0, rc.records, rc.counters, false, 0, rc.clock)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	frame := floodFrame(b)
	recs := make([]packet.Record, 64)
	infos := make([]packet.Info, 64)
	read := 0
	b.ReportAllocs()
	for b.Loop() {
		if read == 0 {
			b.StopTimer()
			kernelRuns(b, p, frame, 64*1000)
			read = 64 * 1000
			b.StartTimer()
		}
		n, err := rc.NextRecords(recs, infos)
		if err != nil || n != 64 {
			b.Fatal(n, err)
		}
		read -= n
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/record")
}
