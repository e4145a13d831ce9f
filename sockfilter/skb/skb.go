// Package skb is the socket-filter program interface: what an eBPF socket
// filter (BPF_PROG_TYPE_SOCKET_FILTER) gets and may use — the struct
// __sk_buff in r1, the legacy packet loads relative to the link-layer and
// network headers, bpf_skb_load_bytes_relative, and the return value that
// keeps a frame. Hand-written programs, pcapfilter's compiler and its
// FromClassic conversion all build on it, and the vm package runs it. It
// needs no kernel and builds on every GOOS.
//
// # A worked example
//
// This program keeps IPv4 UDP datagrams to port 53 and drops everything
// else, reading the frame relative to its headers so that it gives the
// same verdict on a live packet socket and under the kernel's test run:
//
//	insns := append(skb.Prologue(), // r6 = r1, for the packet loads
//		skb.LoadLink(12, asm.Half), // r0 = EtherType
//		asm.JNE.Imm(asm.R0, 0x0800, "drop"),
//		skb.LoadLink(14+9, asm.Byte), // r0 = IPv4 protocol
//		asm.JNE.Imm(asm.R0, 17, "drop"),
//		skb.LoadLink(14+6, asm.Half), // r0 = flags, fragment offset
//		asm.JSet.Imm(asm.R0, 0x1fff, "drop"), // not the first fragment
//		skb.LoadLink(14, asm.Byte), // r0 = version, IHL
//		asm.And.Imm(asm.R0, 0x0f),
//		asm.LSh.Imm(asm.R0, 2), // r0 = IPv4 header length
//		asm.Mov.Reg(asm.R7, asm.R0),
//		skb.LoadLinkInd(asm.R7, 14+2, asm.Half), // r0 = UDP destination port
//		asm.JNE.Imm(asm.R0, 53, "drop"),
//		asm.Mov.Imm(asm.R0, -1), // keep the whole frame: skb.AcceptAll
//		asm.Exit(),
//		asm.Mov.Imm(asm.R0, 0).WithLabel("drop"),
//		asm.Exit(),
//	)
//
// # Where the data starts
//
// The data of a socket buffer starts at the link-layer header on a
// SOCK_RAW packet socket but at the network header in
// BPF_PROG_TEST_RUN, while the link-layer and network headers are found in
// both. LoadLink and LoadNet read relative to those headers; asm.LoadAbs
// with an offset from 0, and direct reads of skb->len, do not give the
// same answer both ways.
package skb

import (
	"strconv"

	"github.com/purebpf/purebpf/asm"
)

// AcceptAll is the value a filter returns to keep the whole frame: the
// kernel keeps min(frame length, return value) bytes of a frame, and drops
// it when the filter returns 0.
const AcceptAll uint32 = 0xffffffff

// Offsets of the legacy packet loads that are relative to a header rather
// than to skb->data (SKF_NET_OFF and SKF_LL_OFF in linux/filter.h). Byte k
// of the header is at offset Off + k, for k below 1 MiB.
const (
	// NetOff + k addresses byte k of the network header.
	NetOff int32 = -0x100000
	// LLOff + k addresses byte k of the link-layer header.
	LLOff int32 = -0x200000
)

// Prologue returns `r6 = r1`, the start of a program that uses the legacy
// packet loads (LoadLink, LoadNet, asm.LoadAbs, asm.LoadInd): they take
// the socket buffer from r6, and calls clobber r1.
func Prologue() asm.Instructions {
	return asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
}

// LoadLink emits `r0 = *(size *)(link-layer header + off)`, converted from
// network byte order: a legacy packet load at LLOff + off (SKF_LL_OFF). It reads
// byte off of the frame as a packet socket sees it, under the kernel's
// test run as live. Like asm.LoadAbs it needs the socket buffer in r6 (see Prologue),
// clobbers r1 to r5, and ends the program returning 0 when the frame is
// too short.
func LoadLink(off uint16, size asm.Size) asm.Instruction {
	return asm.LoadAbs(LLOff+int32(off), size)
}

// LoadLinkInd emits `r0 = *(size *)(link-layer header + src + off)`, the
// indexed form of LoadLink (a legacy BPF_IND load at LLOff + off (SKF_LL_OFF)).
// The sum src + off must stay below 1 MiB, where NetOff begins.
func LoadLinkInd(src asm.Register, off uint16, size asm.Size) asm.Instruction {
	return asm.LoadInd(src, LLOff+int32(off), size)
}

// LoadNet emits `r0 = *(size *)(network header + off)`, a legacy packet
// load at NetOff + off (SKF_NET_OFF), with the semantics of LoadLink. On an
// Ethernet frame, LoadNet(off, size) reads what LoadLink(14+off, size)
// does.
func LoadNet(off uint16, size asm.Size) asm.Instruction {
	return asm.LoadAbs(NetOff+int32(off), size)
}

// LoadNetInd emits `r0 = *(size *)(network header + src + off)`, the
// indexed form of LoadNet. The sum src + off must stay below 1 MiB.
func LoadNetInd(src asm.Register, off uint16, size asm.Size) asm.Instruction {
	return asm.LoadInd(src, NetOff+int32(off), size)
}

// HeaderStart is the header that bpf_skb_load_bytes_relative counts its
// offset from (enum bpf_hdr_start_off).
type HeaderStart int32

// The header starts.
const (
	HeaderMAC HeaderStart = 0 // BPF_HDR_START_MAC: the link-layer header
	HeaderNet HeaderStart = 1 // BPF_HDR_START_NET: the network header
)

// String returns "mac" or "net".
func (h HeaderStart) String() string {
	switch h {
	case HeaderMAC:
		return "mac"
	case HeaderNet:
		return "net"
	}
	return "HeaderStart(" + strconv.Itoa(int(h)) + ")"
}

// LoadBytesRelative emits a call of bpf_skb_load_bytes_relative (Linux
// 4.18) that copies n bytes of the frame, from offset off after the header
// start, to the stack at r10 + stack (stack is negative). The socket buffer
// is taken from ctx, which must not be r1 to r5. Afterwards r0 is 0 on
// success and negative when the frame is too short; r1 to r5 are
// clobbered.
func LoadBytesRelative(ctx asm.Register, off int32, stack int16, n int32, start HeaderStart) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, ctx),
		asm.Mov.Imm(asm.R2, off),
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, int32(stack)),
		asm.Mov.Imm(asm.R4, n),
		asm.Mov.Imm(asm.R5, int32(start)),
		asm.Call(asm.FnSkbLoadBytesRelative),
	}
}
