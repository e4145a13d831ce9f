package kparse

import (
	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// hoistable reports whether the parser's first copy of the frame can be
// made before the filter runs, and the filter's legacy packet loads read
// from it: the filter has no subprograms, and uses the stack only at fixed
// offsets from r10 no lower than stackHoisted, so that it cannot touch the
// copy. A filter that takes the address of the stack (into a register, for
// a helper, say) or spills r10 might reach any of it, and keeps the copy
// after it.
func hoistable(sp spliced) bool {
	if len(sp.subprogs) > 0 {
		return false
	}
	for _, ins := range sp.main {
		if !stackSafe(ins) {
			return false
		}
	}
	return true
}

// stackSafe reports whether ins uses r10 only as the base of a memory
// access at or above stackHoisted.
func stackSafe(ins asm.Instruction) bool {
	op := ins.OpCode
	high := int(ins.Offset) >= stackHoisted
	switch c := op.Class(); {
	case ins.IsLoadImm64():
		return ins.Dst != asm.R10
	case c == asm.LdXClass:
		return ins.Src != asm.R10 || high
	case c == asm.StClass:
		return ins.Dst != asm.R10 || high
	case c == asm.StXClass:
		return ins.Src != asm.R10 && (ins.Dst != asm.R10 || high)
	case c == asm.LdClass: // legacy packet loads
		return op.Mode() != asm.IndMode || ins.Src != asm.R10
	case c.IsALU(), c.IsJump():
		return ins.Dst != asm.R10 && (op.Source() != asm.RegSource || ins.Src != asm.R10)
	}
	return false
}

// loadBase returns the offset of the legacy packet loads that the first
// copy serves: those relative to the header at frameBase, the link-layer
// header of an Ethernet frame (SKF_LL_OFF) or the network header of a raw
// IP frame (SKF_NET_OFF). Their headers are where the program copies from
// both on a live socket and under the test run. (Network-relative loads of
// Ethernet frames are left alone: the kernel does not always put the
// network header after 14 bytes, as for frames a packet socket sends.)
func (o *Options) loadBase() int32 {
	if o.Link == packet.LinkRawIP {
		return skb.NetOff
	}
	return skb.LLOff
}

// emitLoad emits the legacy packet load ins of the filter. If the first
// copy holds the bytes it reads, it becomes reads of the copy; otherwise
// it runs as it is, with its semantics: it ends the program returning 0
// when the frame is shorter. So
//
//	r0 = *(u16 *)skb[SKF_LL_OFF + 12]
//
// becomes
//
//	r0 = *(u64 *)(r10 + stackCopied)
//	if r0 < 14 goto legacy
//	r0 = *(u16 *)(r10 + stackFrame + 12)
//	r0 = be16 r0
//	goto next
//	legacy: r0 = *(u16 *)skb[SKF_LL_OFF + 12]
//	next:
//
// A load of the copy reads the bytes the copy took, which
// bpf_skb_load_bytes takes from the frame's pages as well as from its
// linear part, where a SKF_LL_OFF load sees only the linear part: on a
// frame whose headers are in its pages the filter then sees them. r2 and
// r3 are clobbered, as the legacy load clobbers r1 to r5.
func (p *parser) emitLoad(ins asm.Instruction) {
	b := p.b
	// The offset from the header; offsets outside the header's range
	// (SKF_LL_OFF and SKF_NET_OFF each take 1 MiB) are other loads.
	k := ins.Constant - int64(p.o.loadBase())
	n := int64(int(ins.OpCode.Size()))
	limit := min(int64(stackCopied-p.o.frameBase()), headLen)
	if ins.OpCode.Mode() != asm.AbsMode || k < 0 || k+n > limit {
		b.emit(ins)
		return
	}
	legacy, next := b.label("legacy"), b.label("loaded")
	b.emit(
		ldx(asm.R0, stackCopied, asm.DWord).WithLabel(ins.Label),
		asm.JLT.Imm(asm.R0, int32(k+n), legacy),
	)
	b.emit(loadCopyBE(p.o.frameBase()+int16(k), int32(n))...)
	b.emit(asm.Goto(next))
	ins.Label = ""
	b.mark(legacy)
	b.emit(ins)
	b.mark(next)
}

// loadCopyBE emits r0 = the big-endian number of n bytes (1, 2 or 4) at
// stack offset off, with aligned loads: whole where off is aligned for n,
// else in halves or bytes, joined with r2 (a word) and r3 (a half).
func loadCopyBE(off int16, n int32) asm.Instructions {
	if n == 1 || int32(off)%n == 0 {
		return loadBE(asm.R0, off, sizeOf(n))
	}
	half := n / 2
	tmp := asm.R3
	if n == 4 {
		tmp = asm.R2
	}
	ins := loadCopyBE(off, half)
	ins = append(ins, asm.LSh.Imm(asm.R0, half*8), asm.Mov.Reg(tmp, asm.R0))
	ins = append(ins, loadCopyBE(off+int16(half), half)...)
	return append(ins, asm.Or.Reg(asm.R0, tmp))
}

// sizeOf returns the access size of n bytes.
func sizeOf(n int32) asm.Size {
	switch n {
	case 1:
		return asm.Byte
	case 2:
		return asm.Half
	}
	return asm.Word
}
