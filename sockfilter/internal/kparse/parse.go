package kparse

import (
	"encoding/binary"
	"fmt"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// The parser's stack, as offsets from r10. The stack must be accessed
// aligned (the verifier's strict alignment for PTR_TO_STACK), so the frame
// is copied to where its network header is 8-byte aligned: with an
// Ethernet header (14 bytes) in front, the copy starts 2 bytes past an
// 8-byte boundary, and the IPv4 addresses, the IPv6 addresses and the
// TCP sequence numbers then fall on their natural alignment. The copy and
// the two words beside it are at the bottom of the stack, where a filter
// that uses little stack leaves them alone: then the copy is made before
// the filter runs, and the filter's loads read it (see hoist).
const (
	headLen      = 80              // bytes of the frame the first copy takes
	stackFrame   = -510            // byte k of the frame's first copy is at stackFrame+k
	stackL3      = stackFrame + 14 // the network header
	stackL4v4    = stackL3 + 20    // the transport header after an IPv4 header
	stackL4v6    = stackL3 + 40    // the transport header after an IPv6 header
	stackCopied  = -424            // u64: how many bytes the first copy took, from the frame's start
	stackLength  = -416            // u64: the frame's length (rLen)
	stackHoisted = -408            // the lowest byte a filter may use for the copy to be made before it
	stackRec     = -RecordSize     // the record being built
	stackExt     = -200            // the first 8 bytes of an IPv6 extension header
	stackKey     = -256            // a flow key (flows.go)
	stackValue   = -296            // a flow value (flows.go)
	stackIndex   = -304            // the u32 key 0 of a per-CPU counters array
	// l3Room is how much of the frame from the network header the stack
	// holds: what is copied there when the network header is not at its
	// place in the first copy.
	l3Room = headLen - 14
)

// Registers the parser keeps across helper calls (r6 to r9 survive them).
const (
	rCtx = asm.R6 // the socket buffer, as the filter left it
	rLen = asm.R7 // the frame's length from its link-layer header
	rOff = asm.R8 // the frame offset of the header being parsed; then a pointer to the transport header
	rEnd = asm.R9 // the end of the IPv6 payload; scratch
)

// Options describe the frames a program parses.
type Options struct {
	// Link is the link type of the socket's frames: packet.LinkEthernet
	// or packet.LinkRawIP.
	Link packet.LinkType
	// Base is how many bytes of the frame come before skb->data: 0 on a
	// SOCK_RAW packet socket, where skb->data is the link-layer header;
	// 14 for an Ethernet frame under BPF_PROG_TEST_RUN, which consumes the
	// Ethernet header. The program then adds it to skb->len, and reads
	// the bytes before skb->data relative to the link-layer header.
	Base int
	// Clock is the helper that stamps records and flows.
	Clock asm.HelperFunc
	// Skip drops, before the filter runs, the frames the socket is not to
	// see by where they were going (skb->pkt_type): SkipOutgoing the
	// frames this host sends, SkipIncoming those it receives.
	Skip Skip
}

// Skip says which frames a program drops by their skb->pkt_type.
type Skip uint8

// The frames to drop.
const (
	SkipOutgoing Skip = 1 << iota // PACKET_OUTGOING
	SkipIncoming                  // every other packet type
)

// packetOutgoing is PACKET_OUTGOING (linux/if_packet.h).
const packetOutgoing = 4

// emitSkip emits the drops o.Skip asks for, to the label drop.
func (o *Options) emitSkip(b *builder, drop string) {
	if o.Skip&(SkipOutgoing|SkipIncoming) == 0 {
		return
	}
	b.emit(skb.PktType.Load(asm.R0, rCtx))
	if o.Skip&SkipOutgoing != 0 {
		b.emit(asm.JEq.Imm(asm.R0, packetOutgoing, drop))
	}
	if o.Skip&SkipIncoming != 0 {
		b.emit(asm.JNE.Imm(asm.R0, packetOutgoing, drop))
	}
}

func (o *Options) check() error {
	switch o.Link {
	case packet.LinkEthernet:
		if o.Base != 0 && o.Base != wire.EthernetHeaderLen {
			return fmt.Errorf("base %d for Ethernet: 0 or %d", o.Base, wire.EthernetHeaderLen)
		}
	case packet.LinkRawIP:
		if o.Base != 0 {
			return fmt.Errorf("base %d for raw IP: the data starts at the network header", o.Base)
		}
	default:
		return fmt.Errorf("link type %v: the kernel parser reads Ethernet and raw IP frames", o.Link)
	}
	switch o.Clock {
	case asm.FnKtimeGetTaiNs, asm.FnKtimeGetBootNs, asm.FnKtimeGetNs, asm.FnKtimeGetCoarseNs:
	default:
		return fmt.Errorf("clock helper %v: bpf_ktime_get_tai_ns, bpf_ktime_get_boot_ns, bpf_ktime_get_ns or bpf_ktime_get_coarse_ns", o.Clock)
	}
	return nil
}

// parser emits the code that decodes the frame into the record at
// stackRec, as packet.Parse would, and then jumps to done.
//
// The frame is whole: a socket filter sees every byte, so the captured
// length is the wire length. Parse's checks of the captured length that
// follow from its checks of the IP length fields are then always
// satisfied, and the parser has none of them: an IPv4 header shorter than
// its IHL (total length >= IHL and total length <= the bytes left), an
// IPv6 extension header or a transport header cut short (each is within
// the payload length, which is within the frame). So a record is never
// PortsOnly, and only the link-layer headers, the fixed IP headers and
// ARP can be truncated.
type parser struct {
	b     *builder
	o     Options
	done  string
	fails map[uint16]string
	order []uint16
	// unreadable counts a frame whose bytes bpf_skb_load_bytes refused to
	// copy, which the kernel never does for bytes within skb->len; the
	// record says the frame was truncated.
	unreadable string
	counters   string // the per-CPU counters map
	unreadOff  int16  // where in its value the count of unreadable frames is
}

// fail returns the label of the code that ends the parse with status st
// at layer l.
func (p *parser) fail(st packet.Status, l packet.Layer) string {
	k := uint16(st)<<8 | uint16(l)
	if lbl, ok := p.fails[k]; ok {
		return lbl
	}
	lbl := p.b.label("fail")
	p.fails[k] = lbl
	p.order = append(p.order, k)
	return lbl
}

// emitFails emits the code the fail labels name.
func (p *parser) emitFails() {
	for _, k := range p.order {
		p.b.mark(p.fails[k])
		p.b.emit(sti(stackRec+OffStatus, statusLayer(packet.Status(k>>8), packet.Layer(k)), asm.Half), asm.Goto(p.done))
	}
	p.b.mark(p.unreadable)
	p.b.emit(sti(stackRec+OffStatus, statusLayer(packet.StatusTruncated, packet.LayerFrame), asm.Half))
	p.b.emit(counterAdd(p.counters, p.unreadOff, 1)...)
	p.b.emit(asm.Goto(p.done))
}

// statusLayer returns the u16 that stores the status byte and the error
// layer byte after it.
func statusLayer(st packet.Status, l packet.Layer) int32 {
	return int32(binary.NativeEndian.Uint16([]byte{byte(st), byte(l)}))
}

// counterAdd emits counters[0] += imm at byte off of the per-CPU value.
// It clobbers r0 to r5.
func counterAdd(m string, off int16, imm int32) asm.Instructions {
	return asm.Instructions{
		sti(stackIndex, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, m),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stackIndex),
		asm.Call(asm.FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, "").WithOffset(3),
		asm.LoadMem(asm.R1, asm.R0, off, asm.DWord),
		asm.Add.Imm(asm.R1, imm),
		asm.StoreMem(asm.R0, off, asm.R1, asm.DWord),
	}
}

// copyAt emits a copy of up to max bytes of the frame from the frame
// offset in register off to the stack at dst, as many as the frame has
// there (bpf_skb_load_bytes, Linux 4.5); none if it has none, and then it
// jumps to skip. It clobbers r0 to r5.
func (p *parser) copyAt(off asm.Register, dst int16, max int32, skip string) {
	in := p.b.label("copy")
	p.b.emit(
		asm.Mov.Reg(asm.R4, rLen),
		asm.Sub.Reg(asm.R4, off),
		asm.JSLT.Imm(asm.R4, 1, skip),
		asm.JLE.Imm(asm.R4, max, in),
		asm.Mov.Imm(asm.R4, max),
	)
	p.b.mark(in)
	p.b.emit(asm.Mov.Reg(asm.R2, off))
	p.loadBytes(dst)
}

// loadBytes emits bpf_skb_load_bytes(skb, r2 - Base, r10 + dst, r4) with
// r4 known to be at least 1, and the jump to unreadable if it fails.
func (p *parser) loadBytes(dst int16) { p.loadBytesOr(dst, p.unreadable) }

// loadBytesOr is loadBytes jumping to failed if the copy fails.
func (p *parser) loadBytesOr(dst int16, failed string) {
	p.b.emit(asm.Mov.Reg(asm.R1, rCtx))
	if p.o.Base != 0 {
		p.b.emit(asm.Sub.Imm(asm.R2, int32(p.o.Base)))
	}
	p.b.emit(
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, int32(dst)),
		asm.Call(asm.FnSkbLoadBytes),
		asm.JNE.Imm(asm.R0, 0, failed),
	)
}

// emit emits the whole parser. If hoisted, copyHead was emitted in front
// of the filter, which may have used every register but r6 since.
func (p *parser) emit(hoisted bool) {
	if hoisted {
		p.b.emit(ldx(rLen, stackLength, asm.DWord))
	} else {
		p.lengthOfFrame()
	}
	p.prologue()
	if hoisted {
		// The copy before the filter could not fail on a frame with bytes;
		// if it did, say so now.
		ok := p.b.label("copied")
		p.b.emit(
			ldx(asm.R0, stackCopied, asm.DWord),
			asm.JNE.Imm(asm.R0, 0, ok),
			asm.JNE.Imm(rLen, 0, p.unreadable),
		)
		p.b.mark(ok)
	} else {
		p.copyHead(p.unreadable)
	}
	p.b.emit(asm.JLT.Imm(rLen, 1, p.fail(packet.StatusTruncated, packet.LayerFrame)))
	switch p.o.Link {
	case packet.LinkEthernet:
		p.ethernet()
	case packet.LinkRawIP:
		p.rawIP()
	}
	p.ipv4()
	p.ipv6()
	if p.o.Link == packet.LinkEthernet {
		p.arp() // a raw IP link has none
	}
	p.transport()
	p.emitFails()
}

// lengthOfFrame emits rLen = the frame's length from its link-layer
// header, and keeps it on the stack.
func (p *parser) lengthOfFrame() {
	p.b.emit(skb.Len.Load(rLen, rCtx))
	if p.o.Base != 0 {
		p.b.emit(asm.Add.Imm(rLen, int32(p.o.Base)))
	}
	p.b.emit(stx(stackLength, rLen, asm.DWord))
}

// prologue zeroes the record and fills in what the socket buffer says.
func (p *parser) prologue() {
	b := p.b
	for off := int16(0); off < RecordSize; off += 8 {
		b.emit(sti(stackRec+off, 0, asm.DWord))
	}
	noTag := b.label("notag")
	b.emit(
		sti(stackRec+OffVersion, Version, asm.Byte),
		stx(stackRec+OffLength, rLen, asm.Word),
		skb.PktType.Load(asm.R0, rCtx),
		stx(stackRec+OffPktType, asm.R0, asm.Byte),
		skb.Ifindex.Load(asm.R0, rCtx),
		stx(stackRec+OffIfindex, asm.R0, asm.Word),
		skb.VLANPresent.Load(asm.R0, rCtx),
		asm.JEq.Imm(asm.R0, 0, noTag),
		skb.VLANTCI.Load(asm.R0, rCtx),
		stx(stackRec+OffVLANTCI, asm.R0, asm.Half),
		skb.VLANProto.Load(asm.R0, rCtx),
		asm.ToBE(asm.R0, 16),
		stx(stackRec+OffVLANTPID, asm.R0, asm.Half),
		sti(stackRec+OffFlags, FlagVLANStrip, asm.Byte),
	)
	b.mark(noTag)
}

// frameBase returns where byte 0 of the frame is copied to: stackFrame
// for Ethernet, stackL3 for raw IP, whose frames start with the network
// header.
func (o *Options) frameBase() int16 {
	if o.Link == packet.LinkRawIP {
		return stackL3
	}
	return stackFrame
}

// copyHead emits the copy of the first bytes of the frame (rLen long),
// as many as the stack holds from frameBase, and stores their number at
// stackCopied: 0 for an empty frame, or if a copy fails, when it also
// jumps to failed if that is not "". It clobbers r0 to r5.
func (p *parser) copyHead(failed string) {
	b := p.b
	room := int32(stackCopied - p.o.frameBase())
	in, done, bad := b.label("head"), b.label("headdone"), b.label("headfailed")
	b.emit(
		sti(stackCopied, 0, asm.DWord),
		asm.Mov.Reg(asm.R4, rLen),
		asm.JLE.Imm(asm.R4, min(room, headLen), in),
		asm.Mov.Imm(asm.R4, min(room, headLen)),
	)
	b.mark(in)
	b.emit(asm.JLT.Imm(asm.R4, 1, done), stx(stackCopied, asm.R4, asm.DWord))
	if p.o.Base == 0 {
		b.emit(asm.Mov.Imm(asm.R2, 0))
		p.loadBytesOr(p.o.frameBase(), bad)
	} else {
		// Under the test run the Ethernet header is before skb->data: copy
		// it relative to the link-layer header, and the rest from
		// skb->data.
		b.emit(asm.Mov.Reg(rEnd, asm.R4))
		b.emit(skb.LoadBytesRelative(rCtx, 0, stackFrame, int32(p.o.Base), skb.HeaderMAC)...)
		b.emit(
			asm.JNE.Imm(asm.R0, 0, bad),
			asm.Mov.Reg(asm.R4, rEnd),
			asm.Sub.Imm(asm.R4, int32(p.o.Base)),
			asm.JSLT.Imm(asm.R4, 1, done),
			asm.Mov.Imm(asm.R2, int32(p.o.Base)),
		)
		p.loadBytesOr(stackFrame+int16(p.o.Base), bad)
	}
	b.emit(asm.Goto(done))
	b.mark(bad)
	b.emit(sti(stackCopied, 0, asm.DWord))
	if failed != "" {
		b.emit(asm.Goto(failed))
	}
	b.mark(done)
}

// isVLAN emits a jump to yes if r1 is a VLAN tag's TPID.
func isVLAN(b *builder, yes string) {
	b.emit(
		asm.JEq.Imm(asm.R1, wire.EtherTypeVLAN, yes),
		asm.JEq.Imm(asm.R1, wire.EtherTypeQinQ, yes),
		asm.JEq.Imm(asm.R1, wire.EtherTypeQinQv1, yes),
	)
}

// ethernet decodes the Ethernet header and the VLAN tags in the frame
// (at most 8, as Parse), leaves the network header's offset in rOff,
// copies the network header to stackL3 if VLAN tags moved it, and jumps
// to the network layer's parser.
func (p *parser) ethernet() {
	b := p.b
	const maxTags = 8
	b.emit(
		asm.JLT.Imm(rLen, wire.EthernetHeaderLen, p.fail(packet.StatusTruncated, packet.LayerEthernet)),
		ldx(asm.R1, stackFrame+wire.EtherTypeOff, asm.Half),
		asm.ToBE(asm.R1, 16),
		asm.Mov.Imm(rOff, wire.EthernetHeaderLen),
	)
	l2done := b.label("l2done")
	for i := range int16(maxTags) {
		tag := b.label("tag")
		isVLAN(b, tag)
		b.emit(asm.Goto(l2done))
		b.mark(tag)
		end := wire.EthernetHeaderLen + 4*(i+1)
		b.emit(asm.JLT.Imm(rLen, int32(end), p.fail(packet.StatusTruncated, packet.LayerVLAN)))
		if i < 2 {
			field := int16(OffVLAN)
			if i == 1 {
				field = OffInnerVLAN
			}
			b.emit(loadBE(asm.R2, stackFrame+end-4, asm.Half)...)
			b.emit(asm.And.Imm(asm.R2, 0x0fff), stx(stackRec+field, asm.R2, asm.Half))
		}
		b.emit(sti(stackRec+OffVLANs, int32(i+1), asm.Byte))
		b.emit(loadBE(asm.R1, stackFrame+end-2, asm.Half)...)
		b.emit(asm.Mov.Imm(rOff, int32(end)))
	}
	isVLAN(b, p.fail(packet.StatusMalformed, packet.LayerVLAN))
	b.mark(l2done)
	l3, ready := b.label("l3"), b.label("l3ready")
	b.emit(
		stx(stackRec+OffEtherType, asm.R1, asm.Half),
		asm.JEq.Imm(asm.R1, wire.EtherTypeIPv4, l3),
		asm.JEq.Imm(asm.R1, wire.EtherTypeIPv6, l3),
		asm.JNE.Imm(asm.R1, wire.EtherTypeARP, p.done),
	)
	b.mark(l3)
	b.emit(asm.JEq.Imm(rOff, wire.EthernetHeaderLen, ready))
	p.copyAt(rOff, stackL3, l3Room, ready)
	b.mark(ready)
	b.emit(
		ldx(asm.R1, stackRec+OffEtherType, asm.Half),
		asm.JEq.Imm(asm.R1, wire.EtherTypeIPv4, "kparse.ipv4"),
		asm.JEq.Imm(asm.R1, wire.EtherTypeIPv6, "kparse.ipv6"),
		asm.Goto("kparse.arp"),
	)
}

// rawIP takes the EtherType of a raw IP frame, copied to stackL3, from
// the IP version, and jumps to the network layer's parser.
func (p *parser) rawIP() {
	b := p.b
	v6 := b.label("v6")
	b.emit(
		asm.Mov.Imm(rOff, 0),
		ldx(asm.R1, stackL3, asm.Byte),
		asm.RSh.Imm(asm.R1, 4),
		asm.JEq.Imm(asm.R1, 6, v6),
		asm.JNE.Imm(asm.R1, 4, p.fail(packet.StatusMalformed, packet.LayerIP)),
		sti(stackRec+OffEtherType, wire.EtherTypeIPv4, asm.Half),
		asm.Goto("kparse.ipv4"),
	)
	b.mark(v6)
	b.emit(sti(stackRec+OffEtherType, wire.EtherTypeIPv6, asm.Half), asm.Goto("kparse.ipv6"))
}
