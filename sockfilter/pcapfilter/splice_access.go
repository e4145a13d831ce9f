package pcapfilter

import (
	"fmt"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// The code of each access mode: the prologue, packet loads and the frame
// length. Loads leave the value in v0 (Compile's r0) in host order, as a
// legacy load does, and go to no match where the packet ends before the
// bytes they read.

// maxPacketOff is the farthest offset the verifier lets a program reach
// through a packet pointer (MAX_PACKET_OFF): direct access reads at most
// the first 65,535 bytes.
const maxPacketOff = 0xffff

// prologue emits what the mode needs before the filter: for the helper
// modes, Context kept on the stack where calls would clobber its
// register; for ProbeReadKernel, the start and end of the packet.
func (s *splicer) prologue() {
	if s.opts.Access == DirectAccess {
		return
	}
	if s.opts.Context < asm.R6 {
		s.ctxOnStack = true
		s.emit(asm.StoreMem(asm.RFP, s.stackSlot("ctx"), vCtx, asm.DWord))
	}
	if s.opts.Access == ProbeReadKernel {
		s.probeBounds()
	}
}

// ctxTo emits `dst = Context`, from its register or its stack slot.
func (s *splicer) ctxTo(dst asm.Register) {
	if s.ctxOnStack {
		s.emit(asm.LoadMem(dst, asm.RFP, s.stackSlot("ctx"), asm.DWord))
		return
	}
	s.emit(asm.Mov.Reg(dst, vCtx))
}

// ctxBase returns the register that holds Context: its own, or d, which
// it loads from the stack slot.
func (s *splicer) ctxBase(d asm.Register) asm.Register {
	if s.ctxOnStack {
		s.ctxTo(d)
		return d
	}
	return vCtx
}

// call emits the call of a helper, and the jump to no match if it fails
// (returns non-zero).
func (s *splicer) call(fn asm.HelperFunc) {
	s.calls = true
	s.emit(asm.Call(fn), asm.JNE.Imm(asm.R0, 0, s.target(false)))
}

// probeRead emits bpf_probe_read_kernel(fp+dst, n, skb+off).
func (s *splicer) probeRead(dst int16, n int32, off int16) {
	s.ctxTo(asm.R3)
	if off != 0 {
		s.emit(asm.Add.Imm(asm.R3, int32(off)))
	}
	s.emit(asm.Mov.Reg(asm.R1, asm.RFP), asm.Add.Imm(asm.R1, int32(dst)), asm.Mov.Imm(asm.R2, n))
	s.call(asm.FnProbeReadKernel)
}

// probeBounds emits the reads of skb->head, the header offset and
// skb->tail, and keeps the start (head + header) and end (head + tail)
// of the packet in stack slots. A header offset of 0xffff (unset, see
// skb_mac_header_was_set) means no match. The three are close together
// in struct sk_buff: one read takes them all when they are.
func (s *splicer) probeBounds() {
	l := s.opts.Layout
	hdr := l.MACHeader
	if s.link == packet.LinkRawIP {
		hdr = l.NetworkHeader
	}
	fields := []struct {
		off  int16
		size asm.Size
	}{{l.Head, asm.DWord}, {hdr, asm.Half}, {l.Tail, asm.Word}}
	lo, hi := fields[0].off, fields[0].off+8
	for _, f := range fields {
		lo, hi = min(lo, f.off), max(hi, f.off+int16(f.size))
	}
	lo &^= 7 // keep the members' alignment on the stack
	at := make([]int16, len(fields))
	if hi-lo <= maxProbeSpan {
		buf := s.stackArea("skb", int(hi-lo))
		s.probeRead(buf, int32(hi-lo), lo)
		for i, f := range fields {
			at[i] = buf + f.off - lo
		}
	} else {
		for i, f := range fields {
			at[i] = s.stackSlot(fmt.Sprintf("skb.%d", i))
			s.probeRead(at[i], int32(f.size), f.off)
		}
	}
	s.emit(
		asm.LoadMem(asm.R1, asm.RFP, at[1], asm.Half),
		asm.JEq.Imm(asm.R1, 0xffff, s.target(false)),
		asm.LoadMem(asm.R2, asm.RFP, at[0], asm.DWord),
		asm.Add.Reg(asm.R1, asm.R2),
		asm.StoreMem(asm.RFP, s.stackSlot("start"), asm.R1, asm.DWord),
		asm.LoadMem(asm.R3, asm.RFP, at[2], asm.Word),
		asm.Add.Reg(asm.R3, asm.R2),
		asm.StoreMem(asm.RFP, s.stackSlot("end"), asm.R3, asm.DWord))
}

// maxProbeSpan is the most bytes of struct sk_buff probeBounds reads at
// once.
const maxProbeSpan = 64

// packetLoad rewrites a legacy packet load.
func (s *splicer) packetLoad(ins asm.Instruction) error {
	mode := ins.OpCode.Mode()
	if mode != asm.AbsMode && mode != asm.IndMode {
		return fmt.Errorf("a load Compile's programs do not have")
	}
	k := int64(int32(ins.Constant))
	var net bool
	switch {
	case k >= maxFrameOffset:
		// Past the end of any frame: a load of libpcap's that fails.
		s.emit(asm.Goto(s.target(false)))
		return nil
	case k >= 0:
		return fmt.Errorf("reads relative to skb->data, not to a header: not one of Compile's programs")
	case k >= int64(skb.LLOff) && k < int64(skb.LLOff)+maxFrameOffset:
		k -= int64(skb.LLOff)
	case k >= int64(skb.NetOff) && k < int64(skb.NetOff)+maxFrameOffset:
		k -= int64(skb.NetOff)
		net = true
	default:
		return fmt.Errorf("offset %d is neither relative to the link-layer nor the network header", k)
	}
	switch {
	case net && s.link == packet.LinkEthernet:
		return fmt.Errorf("reads relative to the network header, where an Ethernet program reads the link-layer header: compile it for packet.LinkEthernet")
	case !net && s.link == packet.LinkRawIP:
		return fmt.Errorf("reads relative to the link-layer header, which a packet of packet.LinkRawIP does not start with: compile it for packet.LinkRawIP")
	}
	idx := asm.Register(0)
	if mode == asm.IndMode {
		if ins.Src > asm.R9 || ins.Src == asm.R6 {
			return fmt.Errorf("an indexed load by %v", ins.Src)
		}
		idx = ins.Src + vReg0
	}
	switch s.opts.Access {
	case DirectAccess:
		s.directLoad(idx, k, ins.OpCode.Size())
	case SkbLoadBytes:
		s.skbLoad(idx, k, ins.OpCode.Size())
	default:
		s.probeLoad(idx, k, ins.OpCode.Size())
	}
	return nil
}

// toHost emits the conversion of the loaded value in v0 from network
// byte order, as a legacy load makes it.
func (s *splicer) toHost(size asm.Size) {
	if size != asm.Byte {
		s.emit(asm.ToBE(vReg0, 8*int32(size)))
	}
}

// directLoad emits the load of size bytes at offset off (plus the index
// register idx, if not 0) from PacketStart: the check against PacketEnd
// the verifier needs before each access to the packet, then the load.
// An index is first bounded, as the verifier's packet pointer arithmetic
// requires (a pointer at most MAX_PACKET_OFF from the start).
func (s *splicer) directLoad(idx asm.Register, off int64, size asm.Size) {
	sz := int64(int(size))
	no := s.target(false)
	if off+sz > maxPacketOff {
		s.emit(asm.Goto(no))
		return
	}
	switch {
	case idx == 0 && off+sz <= 0x7fff:
		s.emit(asm.Mov.Reg(vReg0, vStart), asm.Add.Imm(vReg0, int32(off+sz)),
			asm.JGT.Reg(vReg0, vEnd, no), asm.LoadMem(vReg0, vStart, int16(off), size))
	case idx == 0:
		s.emit(asm.Mov.Reg(vTmp, vStart), asm.Add.Imm(vTmp, int32(off)),
			asm.Mov.Reg(vReg0, vTmp), asm.Add.Imm(vReg0, int32(sz)),
			asm.JGT.Reg(vReg0, vEnd, no), asm.LoadMem(vReg0, vTmp, 0, size))
	default:
		s.emit(asm.JGT.Imm(idx, int32(maxPacketOff-off-sz), no),
			asm.Mov.Reg(vTmp, vStart), asm.Add.Reg(vTmp, idx))
		if off+sz > 0x7fff {
			s.emit(asm.Add.Imm(vTmp, int32(off)))
			off = 0
		}
		s.emit(asm.Mov.Reg(vReg0, vTmp), asm.Add.Imm(vReg0, int32(off+sz)),
			asm.JGT.Reg(vReg0, vEnd, no), asm.LoadMem(vReg0, vTmp, int16(off), size))
	}
	s.toHost(size)
}

// skbLoad emits bpf_skb_load_bytes(ctx, idx + off, fp+scratch, size) and
// the load of the bytes it copied.
func (s *splicer) skbLoad(idx asm.Register, off int64, size asm.Size) {
	if idx != 0 {
		s.emit(asm.Mov.Reg(asm.R2, idx)) // first: idx may be in r1 to r5
		if off != 0 {
			s.emit(asm.Add.Imm(asm.R2, int32(off)))
		}
	} else {
		s.emit(asm.Mov.Imm(asm.R2, int32(off)))
	}
	s.ctxTo(asm.R1)
	scratch := s.stackSlot("scratch")
	s.emit(asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, int32(scratch)), asm.Mov.Imm(asm.R4, int32(size)))
	s.call(asm.FnSkbLoadBytes)
	s.emit(asm.LoadMem(vReg0, asm.RFP, scratch, size))
	s.toHost(size)
}

// probeLoad emits the check of the bytes to read against the packet's
// end, bpf_probe_read_kernel(fp+scratch, size, start + idx + off) and the
// load of the bytes it copied.
func (s *splicer) probeLoad(idx asm.Register, off int64, size asm.Size) {
	no := s.target(false)
	start, end := s.stackSlot("start"), s.stackSlot("end")
	if idx != 0 {
		s.emit(asm.Mov.Reg(asm.R3, idx)) // first: idx may be in r1 to r5
		if off != 0 {
			s.emit(asm.Add.Imm(asm.R3, int32(off)))
		}
		s.emit(asm.LoadMem(asm.R4, asm.RFP, start, asm.DWord), asm.Add.Reg(asm.R3, asm.R4),
			asm.JLT.Reg(asm.R3, asm.R4, no)) // it wrapped around
	} else {
		s.emit(asm.LoadMem(asm.R3, asm.RFP, start, asm.DWord), asm.Add.Imm(asm.R3, int32(off)))
	}
	scratch := s.stackSlot("scratch")
	s.emit(asm.Mov.Reg(asm.R2, asm.R3), asm.Add.Imm(asm.R2, int32(size)),
		asm.LoadMem(asm.R1, asm.RFP, end, asm.DWord), asm.JGT.Reg(asm.R2, asm.R1, no),
		asm.Mov.Reg(asm.R1, asm.RFP), asm.Add.Imm(asm.R1, int32(scratch)), asm.Mov.Imm(asm.R2, int32(size)))
	s.call(asm.FnProbeReadKernel)
	s.emit(asm.LoadMem(vReg0, asm.RFP, scratch, size))
	s.toHost(size)
}

// ctxLoad rewrites a load of a field of struct __sk_buff: skb->len is the
// frame length (frameLen), the others are kept where the context is a
// struct __sk_buff.
func (s *splicer) ctxLoad(ins asm.Instruction) error {
	if ins.Dst > asm.R9 || ins.Dst == asm.R6 {
		return fmt.Errorf("loads a field of the context into %v", ins.Dst)
	}
	d := ins.Dst + vReg0
	f := skb.Field(ins.Offset)
	if f == skb.Len && ins.OpCode.Size() == asm.Word && ins.OpCode.Mode() == asm.MemMode {
		s.frameLen(d)
		return nil
	}
	if s.opts.Access == SkbLoadBytes || s.opts.Access == DirectAccess && s.opts.SkbContext {
		s.emit(asm.LoadMem(d, s.ctxBase(d), ins.Offset, ins.OpCode.Size()))
		return nil
	}
	return fmt.Errorf("reads skb->%v of struct __sk_buff (for inbound, outbound or ifindex), which only SkbLoadBytes and DirectAccess with SkbContext have", f)
}

// frameLen emits `d = the frame's length from where the packet starts`.
func (s *splicer) frameLen(d asm.Register) {
	switch {
	case s.opts.Access == SkbLoadBytes || s.opts.Access == DirectAccess && s.opts.SkbContext:
		s.emit(skb.Len.Load(d, s.ctxBase(d)))
	case s.opts.Access == DirectAccess:
		s.emit(asm.Mov.Reg(d, vEnd), asm.Sub.Reg(d, vStart), asm.Mov.Reg32(d, d))
	default:
		// skb->len counts from skb->data; from the start it is
		// (end - start) + skb->data_len: the linear bytes from the start
		// and the paged ones.
		dl := s.stackSlot("data_len")
		s.probeRead(dl, 4, s.opts.Layout.DataLen)
		s.emit(asm.LoadMem(asm.R1, asm.RFP, s.stackSlot("end"), asm.DWord),
			asm.LoadMem(asm.R2, asm.RFP, s.stackSlot("start"), asm.DWord),
			asm.Sub.Reg(asm.R1, asm.R2),
			asm.LoadMem(asm.R2, asm.RFP, dl, asm.Word),
			asm.Add.Reg(asm.R1, asm.R2),
			asm.Mov.Reg32(d, asm.R1))
	}
}
