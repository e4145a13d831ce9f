package kparse

import (
	"fmt"

	"github.com/purebpf/purebpf/asm"
)

// The names under which the programs refer to their maps (LoadOptions.Maps).
const (
	// MapRecords is the BPF_MAP_TYPE_RINGBUF, or the
	// BPF_MAP_TYPE_PERF_EVENT_ARRAY, the records go to.
	MapRecords = "records"
	// MapCounters is a BPF_MAP_TYPE_PERCPU_ARRAY of one element: for
	// records RecordCounters, for flows FlowCounters.
	MapCounters = "counters"
	// MapFlows is the flow table, a BPF_MAP_TYPE_LRU_HASH or
	// BPF_MAP_TYPE_LRU_PERCPU_HASH with FlowKeySize-byte keys and
	// FlowValueSize-byte values.
	MapFlows = "flows"
)

// The per-CPU counters of a record program: u64s at these offsets.
const (
	// CounterLost counts the records the ring buffer (or the CPU's perf
	// buffer) had no room for.
	CounterLost = 0
	// CounterUnreadable counts the frames whose bytes the kernel refused
	// to copy; their records say the frame was truncated.
	CounterUnreadable = 8
	// RecordCountersSize is the size of the counters' value.
	RecordCountersSize = 16
)

// Ring buffer helper arguments (include/uapi/linux/bpf.h).
const (
	rbAvailData   = 0       // BPF_RB_AVAIL_DATA, for bpf_ringbuf_query
	rbNoWakeup    = 1       // BPF_RB_NO_WAKEUP
	rbForceWakeup = 2       // BPF_RB_FORCE_WAKEUP
	rbHeaderSize  = 8       // BPF_RINGBUF_HDR_SZ
	eexist        = -17     // -EEXIST
	bpfNoExist    = 1       // BPF_NOEXIST
	currentCPU    = -1      // BPF_F_CURRENT_CPU, as the low 32 bits of a u64
	maxWatermark  = 1 << 30 // a ring buffer of 1 GiB is the largest anyone makes
)

// RecordOptions describe a record program.
type RecordOptions struct {
	Options
	// Perf writes the records with bpf_perf_event_output (Linux 4.4) to a
	// BPF_MAP_TYPE_PERF_EVENT_ARRAY, for kernels without ring buffers,
	// instead of with bpf_ringbuf_output (Linux 5.8).
	Perf bool
	// Watermark, for a ring buffer, is how many bytes must wait in it
	// before a record wakes the reader: the record that takes the ring
	// past Watermark bytes commits with BPF_RB_FORCE_WAKEUP, the others
	// with BPF_RB_NO_WAKEUP, so that a reader woken for a batch is not
	// woken again for every record after it. A reader then wakes on its
	// own at intervals for records below the watermark. 0 leaves the
	// choice to the kernel, which wakes a reader that has caught up with
	// the ring at every record.
	Watermark int
}

// Records returns the program of a capture in records: filter, a socket
// filter that keeps the socket buffer in r6, with each exit of its main
// program that accepts the frame leading to a parser that decodes the
// frame as packet.Parse would, into a record of RecordSize bytes (see
// Decode), sent to the map MapRecords. The program always returns 0: the
// socket queues nothing. Records the map has no room for are counted at
// CounterLost of MapCounters.
func Records(filter asm.Instructions, o *RecordOptions) (asm.Instructions, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("record program: %w", err)
	}
	if o.Watermark < 0 || o.Watermark > maxWatermark {
		return nil, fmt.Errorf("record program: watermark %d out of range", o.Watermark)
	}
	return generate(filter, o.Options, CounterUnreadable, func(b *builder) { emitRecordOutput(b, o) })
}

// generate splices filter in front of the parser, which ends at the code
// epilogue emits.
func generate(filter asm.Instructions, o Options, unreadOff int16, epilogue func(*builder)) (asm.Instructions, error) {
	const accept, drop = LabelPrefix + "accept", LabelPrefix + "drop"
	sp, err := splice(filter, accept, drop)
	if err != nil {
		return nil, err
	}
	b := &builder{}
	p := &parser{
		b: b, o: o, done: LabelPrefix + "done", fails: map[uint16]string{},
		unreadable: b.label("unreadable"), counters: MapCounters, unreadOff: unreadOff,
	}
	hoist := hoistable(sp)
	b.emit(sp.main[0]) // r6 = r1
	o.emitSkip(b, drop)
	main := sp.main[1:]
	if hoist {
		// The first copy of the frame, before the filter, which reads it.
		p.lengthOfFrame()
		p.copyHead("")
		b.emit(asm.Mov.Reg(asm.R1, rCtx))
		for _, ins := range main {
			if ins.OpCode.Class() == asm.LdClass && !ins.IsLoadImm64() {
				p.emitLoad(ins)
			} else {
				b.emit(ins)
			}
		}
	} else {
		b.emit(main...)
	}
	b.mark(drop)
	b.emit(asm.Mov.Imm(asm.R0, 0), asm.Exit())
	b.mark(accept)
	p.emit(hoist)
	b.mark(p.done)
	epilogue(b)
	b.emit(sp.subprogs...)
	return b.done(), nil
}

// emitRecordOutput emits the end of a record program: the time stamp, the
// output, and the count of a record lost.
func emitRecordOutput(b *builder, o *RecordOptions) {
	out := LabelPrefix + "ret"
	b.emit(asm.Call(o.Clock), stx(stackRec+OffTime, asm.R0, asm.DWord))
	if o.Perf {
		b.emit(
			asm.Mov.Reg(asm.R1, rCtx),
			asm.LoadMapPtr(asm.R2, MapRecords),
			asm.Mov.Imm32(asm.R3, currentCPU),
			asm.Mov.Reg(asm.R4, asm.R10),
			asm.Add.Imm(asm.R4, stackRec),
			asm.Mov.Imm(asm.R5, RecordSize),
			asm.Call(asm.FnPerfEventOutput),
		)
	} else {
		flags := LabelPrefix + "flags"
		if o.Watermark > 0 {
			b.emit(
				asm.LoadMapPtr(asm.R1, MapRecords),
				asm.Mov.Imm(asm.R2, rbAvailData),
				asm.Call(asm.FnRingbufQuery),
				asm.Mov.Imm(asm.R4, rbNoWakeup),
				asm.JGE.Imm(asm.R0, int32(o.Watermark), flags), // woken already
				asm.Add.Imm(asm.R0, RecordSize+rbHeaderSize),
				asm.JLT.Imm(asm.R0, int32(o.Watermark), flags),
				asm.Mov.Imm(asm.R4, rbForceWakeup),
			)
		} else {
			b.emit(asm.Mov.Imm(asm.R4, 0))
		}
		b.mark(flags)
		b.emit(
			asm.LoadMapPtr(asm.R1, MapRecords),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, stackRec),
			asm.Mov.Imm(asm.R3, RecordSize),
			asm.Call(asm.FnRingbufOutput),
		)
	}
	b.emit(asm.JEq.Imm(asm.R0, 0, out))
	b.emit(counterAdd(MapCounters, CounterLost, 1)...)
	b.mark(out)
	b.emit(asm.Mov.Imm(asm.R0, 0), asm.Exit())
}
