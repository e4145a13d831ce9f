package kparse

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// FlowKeySize is the size of a flow table key: flow.KeyOf's fields.
//
//	off size field
//	  0  u32 ifindex
//	  4  u16 EtherType
//	  6  u16 VLAN ID of the outer tag (the device's, else the frame's), or 0
//	  8  u8  pkt_type
//	  9  u8  IP protocol
//	 10  u8  IP version: 4, 6, or 0 for a flow without addresses
//	 11  u8  zero
//	 12  u16 source port
//	 14  u16 destination port, or ICMP type*256 + code
//	 16  16  source address (IPv4: the first 4 bytes)
//	 32  16  destination address
//
// Numbers are in host byte order, addresses in network order.
const FlowKeySize = 48

// FlowValueSize is the size of a flow table value, cumulative since the
// entry was made: flow.Counters.
//
//	off size field
//	  0  u64 packets
//	  8  u64 bytes on the wire, link-layer header included
//	 16  u64 first packet's time stamp
//	 24  u64 last packet's time stamp
//	 32  u32 TCP flags OR'd (packet.TCPFlags)
//	 36  u32 zero
const FlowValueSize = 40

// The per-CPU counters of a flow program: u64s at these offsets.
const (
	// CounterPackets and CounterBytes count every packet the filter
	// accepted, and its bytes.
	CounterPackets = 0
	CounterBytes   = 8
	// CounterFailed counts packets no flow holds: the table refused a new
	// entry (an LRU table makes room instead, but may fail to allocate).
	CounterFailed = 16
	// CounterFlowUnreadable is CounterUnreadable of a flow program.
	CounterFlowUnreadable = 24
	// FlowCountersSize is the size of the counters' value.
	FlowCountersSize = 32
)

// FlowOptions describe a flow program.
type FlowOptions struct {
	Options
	// PerCPU says MapFlows is a BPF_MAP_TYPE_LRU_PERCPU_HASH, whose
	// values the program updates without atomic operations; else it is a
	// BPF_MAP_TYPE_LRU_HASH, updated with atomic adds (Linux 5.12 for the
	// atomic OR of the TCP flags).
	PerCPU bool
}

// Flows returns the program of a flow table: filter spliced in front of
// the parser, as Records does, and then the update of the flow the frame
// belongs to in MapFlows, keyed as flow.KeyOf keys the frame's record.
// The program returns 0: the socket queues nothing. A new flow is added
// with BPF_NOEXIST, and if another CPU added it meanwhile (EEXIST) the
// program looks it up again. Every packet is counted in MapCounters.
func Flows(filter asm.Instructions, o *FlowOptions) (asm.Instructions, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("flow program: %w", err)
	}
	return generate(filter, o.Options, CounterFlowUnreadable, func(b *builder) { emitFlowUpdate(b, o) })
}

// The flow key's fields.
const (
	keyIfindex   = 0
	keyEtherType = 4
	keyVLAN      = 6
	keyPktType   = 8
	keyIPProto   = 9
	keyIPVersion = 10
	keySrcPort   = 12
	keyDstPort   = 14
	keySrc       = 16
	keyDst       = 32

	valPackets = 0
	valBytes   = 8
	valFirst   = 16
	valLast    = 24
	valFlags   = 32
)

// Registers of the flow update, besides rLen.
const (
	rNow   = asm.R8 // the time stamp
	rFlags = asm.R9 // the TCP flags
)

// The labels of the flow update.
const (
	lblFound  = LabelPrefix + "found"
	lblInsert = LabelPrefix + "insert"
	lblFailed = LabelPrefix + "failed"
	lblTotals = LabelPrefix + "totals"
	lblRet    = LabelPrefix + "ret"
)

// emitFlowUpdate emits the end of a flow program: the key from the record,
// the update of the table, and the totals.
func emitFlowUpdate(b *builder, o *FlowOptions) {
	keyed := LabelPrefix + "keyed"
	emitKey(b, keyed)
	b.mark(keyed)
	b.emit(
		ldx(rFlags, stackRec+OffTCPFlags, asm.Half),
		asm.Call(o.Clock),
		asm.Mov.Reg(rNow, asm.R0),
		asm.LoadMapPtr(asm.R1, MapFlows),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stackKey),
		asm.Call(asm.FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, lblInsert),
	)
	b.mark(lblFound)
	if o.PerCPU {
		emitAddPerCPU(b, o.Clock)
	} else {
		emitAddShared(b)
	}
	emitInsert(b)
	emitTotals(b)
}

// emitAddShared emits the count of the packet in the flow r0 points to,
// with atomic operations: other CPUs count in it too.
func emitAddShared(b *builder) {
	b.emit(
		asm.Mov.Imm(asm.R1, 1),
		asm.AtomicAdd.Mem(asm.R0, valPackets, asm.R1, asm.DWord),
		asm.AtomicAdd.Mem(asm.R0, valBytes, rLen, asm.DWord),
		asm.StoreMem(asm.R0, valLast, rNow, asm.DWord),
		asm.JEq.Imm(rFlags, 0, lblTotals),
		asm.AtomicOr.Mem(asm.R0, valFlags, rFlags, asm.Word),
		asm.Goto(lblTotals),
	)
}

// emitAddPerCPU emits the count of the packet in this CPU's value of the
// flow r0 points to.
func emitAddPerCPU(b *builder, clock asm.HelperFunc) {
	seen := LabelPrefix + "seen"
	b.emit(
		asm.LoadMem(asm.R1, asm.R0, valPackets, asm.DWord),
		asm.JNE.Imm(asm.R1, 0, seen),
		// This CPU's first packet of a flow another CPU made: a time
		// stamp taken now is later than the flow's making, so the
		// earliest First of the CPUs stays the flow's.
		asm.Mov.Reg(rFlags, asm.R0), // rFlags is loaded again below
		asm.Call(clock),
		asm.Mov.Reg(rNow, asm.R0),
		asm.Mov.Reg(asm.R0, rFlags),
		asm.StoreMem(asm.R0, valFirst, rNow, asm.DWord),
		ldx(rFlags, stackRec+OffTCPFlags, asm.Half),
		asm.LoadMem(asm.R1, asm.R0, valPackets, asm.DWord),
	)
	b.mark(seen)
	b.emit(
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, valPackets, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, valBytes, asm.DWord),
		asm.Add.Reg(asm.R1, rLen),
		asm.StoreMem(asm.R0, valBytes, asm.R1, asm.DWord),
		asm.StoreMem(asm.R0, valLast, rNow, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, valFlags, asm.Word),
		asm.Or.Reg(asm.R1, rFlags),
		asm.StoreMem(asm.R0, valFlags, asm.R1, asm.Word),
		asm.Goto(lblTotals),
	)
}

// emitInsert emits the making of a new flow with the packet, and its count
// if another CPU made the flow first.
func emitInsert(b *builder) {
	b.mark(lblInsert)
	b.emit(
		sti(stackValue+valPackets, 1, asm.DWord),
		stx(stackValue+valBytes, rLen, asm.DWord),
		stx(stackValue+valFirst, rNow, asm.DWord),
		stx(stackValue+valLast, rNow, asm.DWord),
		stx(stackValue+valFlags, rFlags, asm.Word),
		sti(stackValue+valFlags+4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, MapFlows),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stackKey),
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, stackValue),
		asm.Mov.Imm(asm.R4, bpfNoExist),
		asm.Call(asm.FnMapUpdateElem),
		asm.JEq.Imm(asm.R0, 0, lblTotals),
		asm.JNE.Imm(asm.R0, eexist, lblFailed),
		// Another CPU made the flow since the lookup.
		asm.LoadMapPtr(asm.R1, MapFlows),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stackKey),
		asm.Call(asm.FnMapLookupElem),
		asm.JNE.Imm(asm.R0, 0, lblFound),
	)
	b.mark(lblFailed)
	b.emit(counterAdd(MapCounters, CounterFailed, 1)...)
}

// emitTotals emits the count of the packet in this CPU's totals, and the
// program's end.
func emitTotals(b *builder) {
	b.mark(lblTotals)
	b.emit(
		sti(stackIndex, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, MapCounters),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stackIndex),
		asm.Call(asm.FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, lblRet),
		asm.LoadMem(asm.R1, asm.R0, CounterPackets, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, CounterPackets, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, CounterBytes, asm.DWord),
		asm.Add.Reg(asm.R1, rLen),
		asm.StoreMem(asm.R0, CounterBytes, asm.R1, asm.DWord),
	)
	b.mark(lblRet)
	b.emit(asm.Mov.Imm(asm.R0, 0), asm.Exit())
}

// emitKey emits the flow key of the record at stackKey, as flow.KeyOf
// makes it, and jumps to keyed.
func emitKey(b *builder, keyed string) {
	tag, vlan, ports, icmp := b.label("devtag"), b.label("vlan"), b.label("ports"), b.label("icmp")
	for off := int16(0); off < FlowKeySize; off += 8 {
		b.emit(sti(stackKey+off, 0, asm.DWord))
	}
	b.emit(
		ldx(asm.R0, stackRec+OffIfindex, asm.Word),
		stx(stackKey+keyIfindex, asm.R0, asm.Word),
		ldx(asm.R0, stackRec+OffEtherType, asm.Half),
		stx(stackKey+keyEtherType, asm.R0, asm.Half),
		ldx(asm.R0, stackRec+OffPktType, asm.Byte),
		stx(stackKey+keyPktType, asm.R0, asm.Byte),
		// The outer tag: the one the device removed, else the frame's.
		ldx(asm.R2, stackRec+OffFlags, asm.Byte),
		asm.Mov.Reg(asm.R0, asm.R2),
		asm.And.Imm(asm.R0, FlagVLANStrip),
		asm.JNE.Imm(asm.R0, 0, tag),
		ldx(asm.R0, stackRec+OffVLAN, asm.Half),
		asm.Goto(vlan),
	)
	b.mark(tag)
	b.emit(ldx(asm.R0, stackRec+OffVLANTCI, asm.Half), asm.And.Imm(asm.R0, 0x0fff))
	b.mark(vlan)
	b.emit(
		stx(stackKey+keyVLAN, asm.R0, asm.Half),
		// Only IP packets Parse decoded have addresses and ports.
		ldx(asm.R0, stackRec+OffStatus, asm.Byte),
		asm.JNE.Imm(asm.R0, int32(packet.StatusOK), keyed),
		ldx(asm.R0, stackRec+OffIPVersion, asm.Byte),
		asm.JEq.Imm(asm.R0, 0, keyed),
		stx(stackKey+keyIPVersion, asm.R0, asm.Byte),
		ldx(asm.R1, stackRec+OffIPProto, asm.Byte),
		stx(stackKey+keyIPProto, asm.R1, asm.Byte),
	)
	for i := int16(0); i < 32; i += 8 {
		b.emit(ldx(asm.R0, stackRec+OffSrc+i, asm.DWord), stx(stackKey+keySrc+i, asm.R0, asm.DWord))
	}
	b.emit(
		asm.And.Imm(asm.R2, FlagTransport),
		asm.JEq.Imm(asm.R2, 0, keyed),
		asm.JEq.Imm(asm.R1, wire.IPProtoTCP, ports),
		asm.JEq.Imm(asm.R1, wire.IPProtoUDP, ports),
		asm.JEq.Imm(asm.R1, wire.IPProtoICMP, icmp),
		asm.JEq.Imm(asm.R1, wire.IPProtoICMPv6, icmp),
		asm.Goto(keyed),
	)
	b.mark(ports)
	b.emit(
		ldx(asm.R0, stackRec+OffSrcPort, asm.Word), // both ports
		stx(stackKey+keySrcPort, asm.R0, asm.Word),
		asm.Goto(keyed),
	)
	b.mark(icmp)
	b.emit(
		ldx(asm.R0, stackRec+OffICMPType, asm.Byte),
		asm.LSh.Imm(asm.R0, 8),
		ldx(asm.R1, stackRec+OffICMPCode, asm.Byte),
		asm.Or.Reg(asm.R0, asm.R1),
		stx(stackKey+keyDstPort, asm.R0, asm.Half),
		asm.Goto(keyed),
	)
}

// DecodeKey decodes a flow table key. It does not allocate.
func DecodeKey(b []byte) (flow.Key, error) {
	if len(b) != FlowKeySize {
		return flow.Key{}, fmt.Errorf("%w: flow key of %d bytes, want %d", ErrRecord, len(b), FlowKeySize)
	}
	ne := binary.NativeEndian
	k := flow.Key{
		Ifindex:   int(int32(ne.Uint32(b[keyIfindex:]))),
		Direction: direction(b[keyPktType]),
		EtherType: ne.Uint16(b[keyEtherType:]),
		IPProto:   b[keyIPProto],
		SrcPort:   ne.Uint16(b[keySrcPort:]),
		DstPort:   ne.Uint16(b[keyDstPort:]),
		VLAN:      ne.Uint16(b[keyVLAN:]),
	}
	switch b[keyIPVersion] {
	case 4:
		k.Src = netip.AddrFrom4([4]byte(b[keySrc : keySrc+4]))
		k.Dst = netip.AddrFrom4([4]byte(b[keyDst : keyDst+4]))
	case 6:
		k.Src = netip.AddrFrom16([16]byte(b[keySrc : keySrc+16]))
		k.Dst = netip.AddrFrom16([16]byte(b[keyDst : keyDst+16]))
	case 0:
	default:
		return flow.Key{}, fmt.Errorf("%w: flow key of IP version %d", ErrRecord, b[keyIPVersion])
	}
	return k, nil
}

// AppendKey appends the flow table key of k, as the program makes it, to
// b. It is the inverse of DecodeKey.
func AppendKey(b []byte, k flow.Key) []byte {
	var key [FlowKeySize]byte
	ne := binary.NativeEndian
	ne.PutUint32(key[keyIfindex:], uint32(k.Ifindex))
	ne.PutUint16(key[keyEtherType:], k.EtherType)
	ne.PutUint16(key[keyVLAN:], k.VLAN)
	if k.Direction != packet.DirectionUnknown {
		key[keyPktType] = byte(k.Direction - 1)
	}
	key[keyIPProto] = k.IPProto
	ne.PutUint16(key[keySrcPort:], k.SrcPort)
	ne.PutUint16(key[keyDstPort:], k.DstPort)
	switch {
	case k.Src.Is4():
		key[keyIPVersion] = 4
		s, d := k.Src.As4(), k.Dst.As4()
		copy(key[keySrc:], s[:])
		copy(key[keyDst:], d[:])
	case k.Src.Is6():
		key[keyIPVersion] = 6
		s, d := k.Src.As16(), k.Dst.As16()
		copy(key[keySrc:], s[:])
		copy(key[keyDst:], d[:])
	}
	return append(b, key[:]...)
}

// DecodeValue decodes a flow table value into c, its stamps converted with
// clk. values holds one value, or for a per-CPU table one per possible
// CPU, each rounded up to 8 bytes, which it adds up: packets and bytes
// summed, the earliest First and latest Last of the CPUs that counted
// packets, the flags OR'd. It reports false if no CPU counted a packet.
func DecodeValue(values []byte, cpus int, clk Clock, c *flow.Counters) (bool, error) {
	if cpus < 1 || len(values) != cpus*FlowValueSize {
		return false, fmt.Errorf("%w: flow values of %d bytes for %d CPUs", ErrRecord, len(values), cpus)
	}
	ne := binary.NativeEndian
	var first, last uint64
	*c = flow.Counters{}
	for i := range cpus {
		v := values[i*FlowValueSize : (i+1)*FlowValueSize]
		n := ne.Uint64(v[valPackets:])
		if n == 0 {
			continue
		}
		f, l := ne.Uint64(v[valFirst:]), ne.Uint64(v[valLast:])
		if c.Packets == 0 || f < first {
			first = f
		}
		if c.Packets == 0 || l > last {
			last = l
		}
		c.Packets += n
		c.Bytes += ne.Uint64(v[valBytes:])
		c.TCPFlags |= packet.TCPFlags(ne.Uint32(v[valFlags:]))
	}
	if c.Packets == 0 {
		return false, nil
	}
	c.First, c.Last = clk.Time(first), clk.Time(last)
	return true, nil
}

// Stamp returns the stamp on the clock clk converts from for the wall-
// clock time t: the inverse of Clock.Time.
func (c Clock) Stamp(t time.Time) uint64 { return uint64(t.UnixNano() - c.Offset) }
