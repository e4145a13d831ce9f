package pcapfilter

import (
	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// frameLenInsns returns instructions that set dst, which must not be r0 to
// r5, to the frame length from the link-layer header: skb->len, read from
// the context in ctx, plus the bytes between the link-layer header and
// skb->data. Those are 0 on a packet socket, where the frame starts at
// skb->data, and 14 under BPF_PROG_TEST_RUN, which pulls the Ethernet
// header; a 1-byte bpf_skb_load_bytes_relative(BPF_HDR_START_MAC) at
// offset skb->len tells them apart, as it succeeds only when data lies
// beyond the link-layer header. A raw IP frame (raw) is skb->len long
// both ways, so it needs no probe. The probe clobbers r0 to r5 and the
// stack word at fp-8.
//
// FromClassicLinkRelative uses it, as it promises the same verdict live
// and under Program.Test for every program. Compile does not: its
// programs are for a packet socket, where the length is skb->len, one
// load where the probe is 9 instructions and a helper call (the kernel's
// conversion of libpcap's `len > 100` is 9 instructions in all), and
// sockfilter/vm runs them offline as a live socket sees the frame.
func frameLenInsns(dst, ctx asm.Register, raw bool) asm.Instructions {
	insns := asm.Instructions{skb.Len.Load(dst, ctx)}
	if raw {
		return insns
	}
	if ctx != asm.R1 {
		insns = append(insns, asm.Mov.Reg(asm.R1, ctx))
	}
	return append(insns,
		asm.Mov.Reg(asm.R2, dst),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 1),
		asm.Mov.Imm(asm.R5, int32(skb.HeaderMAC)),
		asm.Call(asm.FnSkbLoadBytesRelative),
		asm.JNE.Imm(asm.R0, 0, "").WithOffset(1),
		asm.Add.Imm32(dst, wire.EthernetHeaderLen))
}
