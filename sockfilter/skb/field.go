package skb

import (
	"strconv"

	"github.com/purebpf/purebpf/asm"
)

// Field is a field of struct __sk_buff, the context a socket filter gets
// in r1, given by its byte offset (include/uapi/linux/bpf.h).
type Field int16

// The fields of struct __sk_buff a socket filter may read
// (sk_filter_is_valid_access in net/core/filter.c); each is a u32. A
// socket filter may also write CB to CB+16, the control block it shares
// with later programs on the same socket buffer.
const (
	// Len is skb->len: the frame's length from skb->data, which includes
	// the link-layer header on a live packet socket and not under the
	// kernel's test run.
	Len Field = 0
	// PktType is skb->pkt_type, the PACKET_* type (linux/if_packet.h):
	// PACKET_HOST 0, PACKET_BROADCAST 1, PACKET_MULTICAST 2,
	// PACKET_OTHERHOST 3, PACKET_OUTGOING 4.
	PktType Field = 4
	// Mark is skb->mark.
	Mark Field = 8
	// QueueMapping is skb->queue_mapping.
	QueueMapping Field = 12
	// Protocol is skb->protocol, the EtherType in network byte order.
	Protocol Field = 16
	// VLANPresent is 1 when the device removed a VLAN tag.
	VLANPresent Field = 20
	// VLANTCI is the removed VLAN tag's TCI.
	VLANTCI Field = 24
	// VLANProto is the removed VLAN tag's protocol, network byte order.
	VLANProto Field = 28
	// Priority is skb->priority.
	Priority Field = 32
	// IngressIfindex is the index of the interface the frame came in on.
	IngressIfindex Field = 36
	// Ifindex is the index of the interface the frame is on.
	Ifindex Field = 40
	// TCIndex is skb->tc_index, the traffic control index.
	TCIndex Field = 44
	// CB is cb[0], the first of the five u32 words of the control block;
	// cb[i] is at CB + 4*i.
	CB Field = 48
	// Hash is skb->hash, the flow hash (0 when not computed).
	Hash Field = 68
	// NapiID is skb->napi_id, the NAPI instance the frame came from.
	NapiID Field = 84
	// GSOSegs is skb_shinfo(skb)->gso_segs (Linux 5.1).
	GSOSegs Field = 164
	// GSOSize is skb_shinfo(skb)->gso_size (Linux 5.7).
	GSOSize Field = 176
)

// fieldNames are the C names of the fields.
var fieldNames = map[Field]string{
	Len: "len", PktType: "pkt_type", Mark: "mark", QueueMapping: "queue_mapping",
	Protocol: "protocol", VLANPresent: "vlan_present", VLANTCI: "vlan_tci", VLANProto: "vlan_proto",
	Priority: "priority", IngressIfindex: "ingress_ifindex", Ifindex: "ifindex", TCIndex: "tc_index",
	CB: "cb[0]", CB + 4: "cb[1]", CB + 8: "cb[2]", CB + 12: "cb[3]", CB + 16: "cb[4]",
	Hash: "hash", NapiID: "napi_id", GSOSegs: "gso_segs", GSOSize: "gso_size",
}

// Load emits `dst = *(u32 *)(ctx + f)`, reading the field f of the
// struct __sk_buff that ctx points to.
func (f Field) Load(dst, ctx asm.Register) asm.Instruction {
	return asm.LoadMem(dst, ctx, int16(f), asm.Word)
}

// String returns the C name of the field, such as "len", "pkt_type" or
// "cb[2]".
func (f Field) String() string {
	if n, ok := fieldNames[f]; ok {
		return n
	}
	return "Field(" + strconv.Itoa(int(f)) + ")"
}
