package sockfilter

import (
	"strconv"

	"github.com/purebpf/purebpf/asm"
)

// This file holds builders for programs that read the frame at the same
// offsets under Program.Test as on a live packet socket: the data of a
// socket buffer starts at the link-layer header on a SOCK_RAW packet
// socket but at the network header in BPF_PROG_TEST_RUN, while the
// link-layer and network headers are found in both. See the package
// documentation.

// Prologue returns `r6 = r1`, the start of a program that uses the legacy
// packet loads (LoadLink, LoadNet, asm.LoadAbs, asm.LoadInd): they take
// the socket buffer from r6, and calls clobber r1.
func Prologue() asm.Instructions {
	return asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
}

// LoadLink emits `r0 = *(size *)(link-layer header + off)`, converted from
// network byte order: a legacy packet load at SKF_LL_OFF + off. It reads
// byte off of the frame as a packet socket sees it, under Program.Test as
// live. Like asm.LoadAbs it needs the socket buffer in r6 (see Prologue),
// clobbers r1 to r5, and ends the program returning 0 when the frame is
// too short.
func LoadLink(off uint16, size asm.Size) asm.Instruction {
	return asm.LoadAbs(asm.SKF_LL_OFF+int32(off), size)
}

// LoadLinkInd emits `r0 = *(size *)(link-layer header + src + off)`, the
// indexed form of LoadLink (a legacy BPF_IND load at SKF_LL_OFF + off).
// The sum src + off must stay below 1 MiB, where SKF_NET_OFF begins.
func LoadLinkInd(src asm.Register, off uint16, size asm.Size) asm.Instruction {
	return asm.LoadInd(src, asm.SKF_LL_OFF+int32(off), size)
}

// LoadNet emits `r0 = *(size *)(network header + off)`, a legacy packet
// load at SKF_NET_OFF + off, with the semantics of LoadLink. On an
// Ethernet frame, LoadNet(off, size) reads what LoadLink(14+off, size)
// does.
func LoadNet(off uint16, size asm.Size) asm.Instruction {
	return asm.LoadAbs(asm.SKF_NET_OFF+int32(off), size)
}

// LoadNetInd emits `r0 = *(size *)(network header + src + off)`, the
// indexed form of LoadNet. The sum src + off must stay below 1 MiB.
func LoadNetInd(src asm.Register, off uint16, size asm.Size) asm.Instruction {
	return asm.LoadInd(src, asm.SKF_NET_OFF+int32(off), size)
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

// SkbField is a field of struct __sk_buff, the context a socket filter
// gets in r1, given by its byte offset.
type SkbField int16

// The fields of struct __sk_buff a socket filter may read; each is a u32.
const (
	// SkbLen is skb->len: the frame's length from skb->data, which
	// includes the link-layer header on a live packet socket and not under
	// Program.Test.
	SkbLen SkbField = 0
	// SkbPktType is skb->pkt_type, the PACKET_* type (linux/if_packet.h):
	// PACKET_HOST 0, PACKET_BROADCAST 1, PACKET_MULTICAST 2,
	// PACKET_OTHERHOST 3, PACKET_OUTGOING 4.
	SkbPktType SkbField = 4
	// SkbMark is skb->mark.
	SkbMark SkbField = 8
	// SkbQueueMapping is skb->queue_mapping.
	SkbQueueMapping SkbField = 12
	// SkbProtocol is skb->protocol, the EtherType in network byte order.
	SkbProtocol SkbField = 16
	// SkbVLANPresent is 1 when the device removed a VLAN tag.
	SkbVLANPresent SkbField = 20
	// SkbVLANTCI is the removed VLAN tag's TCI.
	SkbVLANTCI SkbField = 24
	// SkbVLANProto is the removed VLAN tag's protocol, network byte order.
	SkbVLANProto SkbField = 28
	// SkbPriority is skb->priority.
	SkbPriority SkbField = 32
	// SkbIngressIfindex is the index of the interface the frame came in on.
	SkbIngressIfindex SkbField = 36
	// SkbIfindex is the index of the interface the frame is on.
	SkbIfindex SkbField = 40
)

// Load emits `dst = *(u32 *)(ctx + f)`, reading the field f of the
// struct __sk_buff that ctx points to.
func (f SkbField) Load(dst, ctx asm.Register) asm.Instruction {
	return asm.LoadMem(dst, ctx, int16(f), asm.Word)
}

// String returns the C name of the field, such as "len" or "pkt_type".
func (f SkbField) String() string {
	switch f {
	case SkbLen:
		return "len"
	case SkbPktType:
		return "pkt_type"
	case SkbMark:
		return "mark"
	case SkbQueueMapping:
		return "queue_mapping"
	case SkbProtocol:
		return "protocol"
	case SkbVLANPresent:
		return "vlan_present"
	case SkbVLANTCI:
		return "vlan_tci"
	case SkbVLANProto:
		return "vlan_proto"
	case SkbPriority:
		return "priority"
	case SkbIngressIfindex:
		return "ingress_ifindex"
	case SkbIfindex:
		return "ifindex"
	}
	return "SkbField(" + strconv.Itoa(int(f)) + ")"
}
