package kparse

import (
	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// ipv4 decodes the IPv4 header at stackL3 (frame offset rOff), as Parse's
// parseIPv4, and jumps to the transport layer with rOff pointing to the
// transport header on the stack.
func (p *parser) ipv4() {
	b := p.b
	bad := p.fail(packet.StatusMalformed, packet.LayerIPv4)
	total, frag, nofrag, opts := b.label("total"), b.label("frag"), b.label("nofrag"), b.label("opts")
	b.mark("kparse.ipv4")
	b.emit(
		asm.Mov.Reg(asm.R1, rLen),
		asm.Sub.Reg(asm.R1, rOff), // r1 = bytes left from the header
		asm.JLT.Imm(asm.R1, wire.IPv4HeaderLen, p.fail(packet.StatusTruncated, packet.LayerIPv4)),
		ldx(asm.R2, stackL3, asm.Byte),
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.RSh.Imm(asm.R3, 4),
		asm.JNE.Imm(asm.R3, 4, bad),
		asm.And.Imm(asm.R2, 0x0f),
		asm.LSh.Imm(asm.R2, 2), // r2 = IHL in bytes
		asm.JLT.Imm(asm.R2, wire.IPv4HeaderLen, bad),
	)
	b.emit(loadBE(asm.R3, stackL3+2, asm.Half)...) // r3 = total length
	b.emit(
		asm.JNE.Imm(asm.R3, 0, total),
		asm.Mov.Reg(asm.R3, asm.R1), // 0: the rest of the frame (BIG TCP)
	)
	b.mark(total)
	b.emit(
		asm.JLT.Reg(asm.R3, asm.R2, bad),
		asm.JGT.Reg(asm.R3, asm.R1, bad),
		sti(stackRec+OffIPVersion, 4, asm.Byte),
	)
	b.emit(loadBE(asm.R4, stackL3+4, asm.Half)...)
	b.emit(stx(stackRec+OffFragID, asm.R4, asm.Word))
	b.emit(loadBE(asm.R4, stackL3+6, asm.Half)...) // flags and fragment offset
	b.emit(
		asm.Mov.Reg(asm.R5, asm.R4),
		asm.RSh.Imm(asm.R5, 12),
		asm.And.Imm(asm.R5, FlagMoreFrags|FlagDontFrag), // MF (bit 13) and DF (bit 14)
		asm.Or.Imm(asm.R5, FlagAddrs),
		asm.And.Imm(asm.R4, 0x1fff),
		asm.LSh.Imm(asm.R4, 3),
		stx(stackRec+OffFragOff, asm.R4, asm.Half),
		asm.JNE.Imm(asm.R4, 0, frag),
		asm.Mov.Reg(asm.R0, asm.R5),
		asm.And.Imm(asm.R0, FlagMoreFrags),
		asm.JEq.Imm(asm.R0, 0, nofrag),
	)
	b.mark(frag)
	b.emit(asm.Or.Imm(asm.R5, FlagFragment))
	b.mark(nofrag)
	b.emit(
		ldx(asm.R0, stackRec+OffFlags, asm.Byte),
		asm.Or.Reg(asm.R0, asm.R5),
		stx(stackRec+OffFlags, asm.R0, asm.Byte),
		ldx(asm.R0, stackL3+8, asm.Byte),
		stx(stackRec+OffTTL, asm.R0, asm.Byte),
		ldx(asm.R0, stackL3+9, asm.Byte),
		stx(stackRec+OffIPProto, asm.R0, asm.Byte),
		ldx(asm.R0, stackL3+12, asm.Word),
		stx(stackRec+OffSrc, asm.R0, asm.Word),
		ldx(asm.R0, stackL3+16, asm.Word),
		stx(stackRec+OffDst, asm.R0, asm.Word),
		asm.Sub.Reg(asm.R3, asm.R2),
		stx(stackRec+OffIPPayload, asm.R3, asm.Word),
		// Parse's check that the frame holds the options cannot fail
		// here: total length >= IHL, and <= the bytes left.
		asm.Add.Reg(rOff, asm.R2), // the transport header
		asm.JNE.Imm(asm.R2, wire.IPv4HeaderLen, opts),
	)
	l4 := b.label("l4v4")
	b.mark(l4)
	b.emit(
		asm.Mov.Reg(rOff, asm.R10),
		asm.Add.Imm(rOff, stackL4v4),
		asm.Goto("kparse.transport"),
	)
	// Options: the transport header is elsewhere in the frame.
	b.mark(opts)
	p.copyAt(rOff, stackL4v4, wire.TCPHeaderLen, l4)
	b.emit(asm.Goto(l4))
}

// ipv6 decodes the IPv6 header at stackL3 (frame offset rOff) and its
// extension headers, as Parse's parseIPv6 and parseIPv6Ext, and jumps to
// the transport layer with rOff pointing to the transport header on the
// stack. The walk keeps the Next Header and what is left of the payload
// in the record's IP protocol and IP payload length, which is what
// Parse's setIPProto leaves there at every step.
func (p *parser) ipv6() {
	b := p.b
	bad := p.fail(packet.StatusMalformed, packet.LayerIPv6)
	plen := b.label("plen")
	b.mark("kparse.ipv6")
	b.emit(
		asm.Mov.Reg(asm.R1, rLen),
		asm.Sub.Reg(asm.R1, rOff),
		asm.JLT.Imm(asm.R1, wire.IPv6HeaderLen, p.fail(packet.StatusTruncated, packet.LayerIPv6)),
		ldx(asm.R2, stackL3, asm.Byte),
		asm.RSh.Imm(asm.R2, 4),
		asm.JNE.Imm(asm.R2, 6, bad),
		asm.Sub.Imm(asm.R1, wire.IPv6HeaderLen), // r1 = bytes left after the header
	)
	b.emit(loadBE(asm.R2, stackL3+4, asm.Half)...) // r2 = payload length
	b.emit(
		asm.JNE.Imm(asm.R2, 0, plen),
		asm.Mov.Reg(asm.R2, asm.R1), // 0: the rest of the frame (jumbogram, BIG TCP)
	)
	b.mark(plen)
	b.emit(
		asm.JGT.Reg(asm.R2, asm.R1, bad),
		sti(stackRec+OffIPVersion, 6, asm.Byte),
		ldx(asm.R0, stackL3+7, asm.Byte),
		stx(stackRec+OffTTL, asm.R0, asm.Byte),
	)
	for i := int16(0); i < 32; i += 8 {
		b.emit(ldx(asm.R0, stackL3+8+i, asm.DWord), stx(stackRec+OffSrc+i, asm.R0, asm.DWord))
	}
	b.emit(orFlag(stackRec, FlagAddrs)...)
	b.emit(
		asm.Add.Imm(rOff, wire.IPv6HeaderLen), // rOff = the first header after it
		asm.Mov.Reg(rEnd, rOff),
		asm.Add.Reg(rEnd, asm.R2), // rEnd = the end of the payload
		ldx(asm.R0, stackL3+6, asm.Byte),
		stx(stackRec+OffIPProto, asm.R0, asm.Byte),
		stx(stackRec+OffIPPayload, asm.R2, asm.Word),
	)
	walked, inPlace := b.label("walked"), b.label("inplace")
	for n := range maxExtHeaders {
		next := inPlace // before the first extension header, the transport header is in place
		if n > 0 {
			next = walked
		}
		p.extHeader(next, walked)
	}
	// A ninth extension header is one too many.
	b.emit(ldx(asm.R1, stackRec+OffIPProto, asm.Byte))
	isExt(b, p.fail(packet.StatusMalformed, packet.LayerIPv6Ext))
	b.mark(walked)
	l4 := b.label("l4v6")
	p.copyAt(rOff, stackL4v6, wire.TCPHeaderLen, l4)
	b.mark(inPlace)
	b.mark(l4)
	b.emit(
		asm.Mov.Reg(rOff, asm.R10),
		asm.Add.Imm(rOff, stackL4v6),
		asm.Goto("kparse.transport"),
	)
}

// maxExtHeaders is how many IPv6 extension headers Parse walks.
const maxExtHeaders = 8

// isExt emits a jump to yes if r1 is an extension header Parse walks:
// hop-by-hop options, routing, fragment, destination options, AH.
func isExt(b *builder, yes string) {
	for _, proto := range []int32{wire.IPProtoHopOpts, wire.IPProtoRouting, wire.IPProtoFragment, wire.IPProtoDstOpts, wire.IPProtoAH} {
		b.emit(asm.JEq.Imm(asm.R1, proto, yes))
	}
}

// extHeader emits one step of the walk of the extension headers: if the
// Next Header is not one, it jumps to notExt; else it decodes the header
// at rOff (copied to stackExt) and moves rOff past it, and after a
// non-first fragment's Fragment header jumps to walked.
func (p *parser) extHeader(notExt, walked string) {
	b := p.b
	bad := p.fail(packet.StatusMalformed, packet.LayerIPv6Ext)
	ext, frag, ah, hlen := b.label("ext"), b.label("fragment"), b.label("ah"), b.label("hlen")
	b.emit(ldx(asm.R1, stackRec+OffIPProto, asm.Byte))
	isExt(b, ext)
	b.emit(asm.Goto(notExt))
	b.mark(ext)
	b.emit(
		asm.Mov.Reg(asm.R2, rEnd),
		asm.Sub.Reg(asm.R2, rOff),
		asm.JLT.Imm(asm.R2, 8, bad),
		// Within the payload, so within the frame: Parse's check of the
		// captured length cannot fail.
		asm.Mov.Reg(asm.R2, rOff),
		asm.Mov.Imm(asm.R4, 8),
	)
	p.loadBytes(stackExt)
	b.emit(
		ldx(asm.R1, stackRec+OffIPProto, asm.Byte),
		asm.JEq.Imm(asm.R1, wire.IPProtoFragment, frag),
		asm.JEq.Imm(asm.R1, wire.IPProtoAH, ah),
		ldx(asm.R2, stackExt+1, asm.Byte), // (Hdr Ext Len + 1) * 8
		asm.Add.Imm(asm.R2, 1),
		asm.LSh.Imm(asm.R2, 3),
		asm.Goto(hlen),
	)
	b.mark(ah)
	b.emit(
		ldx(asm.R2, stackExt+1, asm.Byte), // (Payload Len + 2) * 4
		asm.Add.Imm(asm.R2, 2),
		asm.LSh.Imm(asm.R2, 2),
		asm.Goto(hlen),
	)
	b.mark(frag)
	b.emit(loadBE(asm.R3, stackExt+2, asm.Half)...)
	b.emit(
		asm.Mov.Reg(asm.R4, asm.R3),
		asm.And.Imm(asm.R3, 0xfff8),
		stx(stackRec+OffFragOff, asm.R3, asm.Half),
		asm.And.Imm(asm.R4, 1), // M
		asm.LSh.Imm(asm.R4, 1), // to FlagMoreFrags
		ldx(asm.R0, stackRec+OffFlags, asm.Byte),
		asm.And.Imm(asm.R0, ^int32(FlagMoreFrags)),
		asm.Or.Imm(asm.R0, FlagFragment),
		asm.Or.Reg(asm.R0, asm.R4),
		stx(stackRec+OffFlags, asm.R0, asm.Byte),
	)
	b.emit(loadBE(asm.R3, stackExt+4, asm.Word)...)
	b.emit(
		stx(stackRec+OffFragID, asm.R3, asm.Word),
		asm.Mov.Imm(asm.R2, 8),
	)
	b.mark(hlen)
	b.emit(
		asm.Mov.Reg(asm.R3, rEnd),
		asm.Sub.Reg(asm.R3, rOff),
		asm.JLT.Reg(asm.R3, asm.R2, bad),
		ldx(asm.R0, stackExt, asm.Byte),
		stx(stackRec+OffIPProto, asm.R0, asm.Byte),
		asm.Add.Reg(rOff, asm.R2),
		asm.Mov.Reg(asm.R0, rEnd),
		asm.Sub.Reg(asm.R0, rOff),
		stx(stackRec+OffIPPayload, asm.R0, asm.Word),
		// What follows a non-first fragment's Fragment header is the
		// middle of the original packet, not headers.
		ldx(asm.R0, stackRec+OffFragOff, asm.Half),
		asm.JNE.Imm(asm.R0, 0, walked),
	)
}

// arp decodes the ARP packet at stackL3 (frame offset rOff), as Parse's
// parseARP.
func (p *parser) arp() {
	b := p.b
	short := p.fail(packet.StatusTruncated, packet.LayerARP)
	slow := b.label("arpslow")
	b.mark("kparse.arp")
	b.emit(
		asm.Mov.Reg(asm.R1, rLen),
		asm.Sub.Reg(asm.R1, rOff),
		asm.JLT.Imm(asm.R1, 8, short),
	)
	b.emit(loadBE(asm.R0, stackL3+6, asm.Half)...)
	b.emit(
		stx(stackRec+OffARPOp, asm.R0, asm.Half),
		ldx(asm.R2, stackL3+4, asm.Byte), // hardware address length
		ldx(asm.R3, stackL3+5, asm.Byte), // protocol address length
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Reg(asm.R4, asm.R3),
		asm.LSh.Imm(asm.R4, 1),
		asm.Add.Imm(asm.R4, 8),
		asm.JLT.Reg(asm.R1, asm.R4, short),
	)
	b.emit(loadBE(asm.R0, stackL3+2, asm.Half)...)
	b.emit(
		asm.JNE.Imm(asm.R0, wire.EtherTypeIPv4, p.done),
		asm.JNE.Imm(asm.R3, 4, p.done),
		asm.JNE.Imm(asm.R2, 6, slow),
		// Ethernet addresses: the sender's IPv4 address at 14 (2-byte
		// aligned here), the target's at 24.
		ldx(asm.R0, stackL3+14, asm.Half),
		stx(stackRec+OffSrc, asm.R0, asm.Half),
		ldx(asm.R0, stackL3+16, asm.Half),
		stx(stackRec+OffSrc+2, asm.R0, asm.Half),
		ldx(asm.R0, stackL3+24, asm.Word),
		stx(stackRec+OffDst, asm.R0, asm.Word),
	)
	b.emit(orFlag(stackRec, FlagAddrs)...)
	b.emit(asm.Goto(p.done))
	// Other hardware address lengths: copy the addresses from the frame.
	b.mark(slow)
	b.emit(
		asm.Mov.Reg(rEnd, asm.R2),
		asm.Mov.Reg(asm.R2, rOff),
		asm.Add.Imm(asm.R2, 8),
		asm.Add.Reg(asm.R2, rEnd), // the sender's protocol address
		asm.Mov.Imm(asm.R4, 4),
	)
	p.loadBytes(stackRec + OffSrc)
	b.emit(
		asm.Mov.Reg(asm.R2, rOff),
		asm.Add.Imm(asm.R2, 8+4),
		asm.Add.Reg(asm.R2, rEnd),
		asm.Add.Reg(asm.R2, rEnd), // the target's
		asm.Mov.Imm(asm.R4, 4),
	)
	p.loadBytes(stackRec + OffDst)
	b.emit(orFlag(stackRec, FlagAddrs)...)
	b.emit(asm.Goto(p.done))
}

// transport decodes the TCP, UDP, ICMP or ICMPv6 header rOff points to,
// as Parse's parseTransport. Only bytes within the IP payload are read,
// and the IP payload is within the frame.
func (p *parser) transport() {
	b := p.b
	tcp, udp, icmp, icmp6 := b.label("tcp"), b.label("udp"), b.label("icmp"), b.label("icmp6")
	b.mark("kparse.transport")
	b.emit(
		ldx(asm.R1, stackRec+OffIPProto, asm.Byte),
		ldx(asm.R2, stackRec+OffIPPayload, asm.Word), // r2 = the IP payload's length
		// A non-first fragment carries no transport header.
		ldx(asm.R3, stackRec+OffFragOff, asm.Half),
		asm.JNE.Imm(asm.R3, 0, p.done),
		ldx(asm.R3, stackRec+OffFlags, asm.Byte),
		asm.And.Imm(asm.R3, FlagFragment), // r3 = a (first) fragment
		asm.JEq.Imm(asm.R1, wire.IPProtoTCP, tcp),
		asm.JEq.Imm(asm.R1, wire.IPProtoUDP, udp),
		asm.JEq.Imm(asm.R1, wire.IPProtoICMP, icmp),
		asm.JEq.Imm(asm.R1, wire.IPProtoICMPv6, icmp6),
		asm.Goto(p.done),
	)
	b.mark(tcp)
	p.tcp()
	b.mark(udp)
	p.udp()
	b.mark(icmp)
	p.icmp(packet.LayerICMP)
	b.mark(icmp6)
	p.icmp(packet.LayerICMPv6)
}

// minHeader emits the check of Parse's hasTransport and of the payload's
// room for a header of n bytes: a fragment too short for it has no
// transport header, another packet is malformed.
func (p *parser) minHeader(n int32, l packet.Layer) {
	ok := p.b.label("room")
	p.b.emit(
		asm.JGE.Imm(asm.R2, n, ok),
		asm.JNE.Imm(asm.R3, 0, p.done),
		asm.Goto(p.fail(packet.StatusMalformed, l)),
	)
	p.b.mark(ok)
}

// ports emits the copy of the ports at rOff into the record.
func (p *parser) ports() {
	p.b.emit(loadMemBE(asm.R0, rOff, 0, asm.Half)...)
	p.b.emit(stx(stackRec+OffSrcPort, asm.R0, asm.Half))
	p.b.emit(loadMemBE(asm.R0, rOff, 2, asm.Half)...)
	p.b.emit(stx(stackRec+OffDstPort, asm.R0, asm.Half))
}

// loadMemBE emits dst = the big-endian number of size at src + off.
func loadMemBE(dst, src asm.Register, off int16, size asm.Size) asm.Instructions {
	ins := asm.Instructions{asm.LoadMem(dst, src, off, size)}
	if size != asm.Byte {
		ins = append(ins, asm.ToBE(dst, int32(int(size)*8)))
	}
	return ins
}

func (p *parser) tcp() {
	b := p.b
	bad := p.fail(packet.StatusMalformed, packet.LayerTCP)
	fits := b.label("tcpfits")
	p.minHeader(wire.TCPHeaderLen, packet.LayerTCP)
	b.emit(
		asm.LoadMem(asm.R4, rOff, 12, asm.Byte),
		asm.Mov.Reg(asm.R5, asm.R4),
		asm.RSh.Imm(asm.R4, 4),
		asm.LSh.Imm(asm.R4, 2), // r4 = data offset in bytes
		asm.JLT.Imm(asm.R4, wire.TCPHeaderLen, bad),
		asm.JLE.Reg(asm.R4, asm.R2, fits),
		// Options past a first fragment's end: no transport header.
		asm.JNE.Imm(asm.R3, 0, p.done),
		asm.Goto(bad),
	)
	b.mark(fits)
	p.ports()
	b.emit(loadMemBE(asm.R0, rOff, 4, asm.Word)...)
	b.emit(stx(stackRec+OffSeq, asm.R0, asm.Word))
	b.emit(loadMemBE(asm.R0, rOff, 8, asm.Word)...)
	b.emit(stx(stackRec+OffAck, asm.R0, asm.Word))
	b.emit(loadMemBE(asm.R0, rOff, 14, asm.Half)...)
	b.emit(
		stx(stackRec+OffWindow, asm.R0, asm.Half),
		asm.And.Imm(asm.R5, 1), // AE
		asm.LSh.Imm(asm.R5, 8),
		asm.LoadMem(asm.R0, rOff, 13, asm.Byte),
		asm.Or.Reg(asm.R5, asm.R0),
		stx(stackRec+OffTCPFlags, asm.R5, asm.Half),
		asm.Sub.Reg(asm.R2, asm.R4),
		stx(stackRec+OffPayload, asm.R2, asm.Word),
	)
	b.emit(orFlag(stackRec, FlagTransport)...)
	b.emit(asm.Goto(p.done))
}

func (p *parser) udp() {
	b := p.b
	bad := p.fail(packet.StatusMalformed, packet.LayerUDP)
	nonzero, length := b.label("ulen"), b.label("ulenok")
	p.minHeader(wire.UDPHeaderLen, packet.LayerUDP)
	b.emit(loadMemBE(asm.R4, rOff, 4, asm.Half)...) // r4 = UDP length
	b.emit(
		asm.JNE.Imm(asm.R4, 0, nonzero),
		ldx(asm.R0, stackRec+OffIPVersion, asm.Byte),
		asm.JNE.Imm(asm.R0, 6, bad),
		asm.Mov.Reg(asm.R4, asm.R2), // a jumbogram (RFC 2675)
		asm.Goto(length),
	)
	b.mark(nonzero)
	b.emit(
		asm.JLT.Imm(asm.R4, wire.UDPHeaderLen, bad),
		asm.JLE.Reg(asm.R4, asm.R2, length),
		asm.JEq.Imm(asm.R3, 0, bad),
		asm.Mov.Reg(asm.R4, asm.R2), // a first fragment: the datagram goes on
	)
	b.mark(length)
	p.ports()
	b.emit(
		asm.Sub.Imm(asm.R4, wire.UDPHeaderLen),
		stx(stackRec+OffPayload, asm.R4, asm.Word),
	)
	b.emit(orFlag(stackRec, FlagTransport)...)
	b.emit(asm.Goto(p.done))
}

func (p *parser) icmp(l packet.Layer) {
	b := p.b
	p.minHeader(8, l)
	b.emit(
		asm.LoadMem(asm.R0, rOff, 0, asm.Byte),
		stx(stackRec+OffICMPType, asm.R0, asm.Byte),
		asm.LoadMem(asm.R0, rOff, 1, asm.Byte),
		stx(stackRec+OffICMPCode, asm.R0, asm.Byte),
		asm.Sub.Imm(asm.R2, 8),
		stx(stackRec+OffPayload, asm.R2, asm.Word),
	)
	b.emit(orFlag(stackRec, FlagTransport)...)
	b.emit(asm.Goto(p.done))
}
