//go:build linux

package tpacket

import (
	"structs"
	"unsafe"
)

// The structs the kernel writes into a TPACKET_V3 ring (linux/if_packet.h,
// Documentation/networking/packet_mmap.rst), in host layout. TestLayout
// checks each against the running kernel's BTF (testdata/layout.golden,
// written by testdata/gen-layout.sh). Field names are the C names without
// their tp_ or sll_ prefix.

// frameHeader is struct tpacket3_hdr, which starts each frame of a block.
type frameHeader struct {
	_          structs.HostLayout
	NextOffset uint32 // to the next frame's header in the block, or 0
	Sec        uint32 // receive time, seconds
	Nsec       uint32 // and nanoseconds
	Snaplen    uint32 // bytes of the frame in the ring
	Len        uint32 // the frame's length before the filter cut it
	Status     uint32 // TP_STATUS_* bits
	Mac        uint16 // from the header to the frame's first byte
	Net        uint16 // from the header to the network header
	Hv1        frameVariant1
	Padding    [8]uint8
}

// frameVariant1 is struct tpacket_hdr_variant1, the hv1 member of
// tpacket3_hdr's union.
type frameVariant1 struct {
	_        structs.HostLayout
	Rxhash   uint32
	VLANTCI  uint32
	VLANTPID uint16
	Padding  uint16
}

// blockDesc is struct tpacket_block_desc, which starts each block.
type blockDesc struct {
	_            structs.HostLayout
	Version      uint32
	OffsetToPriv uint32
	Hdr          blockHeaderV1 // union tpacket_bd_header_u, whose one member is bh1
}

// blockHeaderV1 is struct tpacket_hdr_v1.
type blockHeaderV1 struct {
	_                structs.HostLayout
	BlockStatus      uint32 // TP_STATUS_KERNEL or TP_STATUS_USER: who holds the block
	NumPkts          uint32 // frames in the block
	OffsetToFirstPkt uint32 // from the block's start to its first frame's header
	BlkLen           uint32
	SeqNum           uint64
	TsFirstPkt       blockTimestamp
	TsLastPkt        blockTimestamp
}

// blockTimestamp is struct tpacket_bd_ts.
type blockTimestamp struct {
	_      structs.HostLayout
	TsSec  uint32
	TsUsec uint32 // union with ts_nsec
}

// sockaddrLL is struct sockaddr_ll (packet(7)), which follows each
// frame's header at TPACKET_ALIGN(sizeof(struct tpacket3_hdr)).
type sockaddrLL struct {
	_        structs.HostLayout
	Family   uint16
	Protocol uint16 // big-endian EtherType
	Ifindex  int32
	Hatype   uint16 // ARPHRD_* device type
	Pkttype  uint8  // PACKET_* packet type
	Halen    uint8  // length of Addr in use
	Addr     [8]uint8
}

// The layout the reader relies on: where each struct sits in a block.
const (
	// blockHdrLen is BLK_HDR_LEN, ALIGN(sizeof(tpacket_block_desc), 8):
	// the first frame of a block is at or after it.
	blockHdrLen = (int(unsafe.Sizeof(blockDesc{})) + 7) &^ 7
	// frameHdrLen is TPACKET_ALIGN(sizeof(struct tpacket3_hdr)), where
	// the sockaddr_ll starts (tpacket_rcv).
	frameHdrLen = (int(unsafe.Sizeof(frameHeader{})) + tpacketAlign - 1) &^ (tpacketAlign - 1)
	// frameStart is the first offset after a frame's headers.
	frameStart = frameHdrLen + int(unsafe.Sizeof(sockaddrLL{}))
	// headerAlign is the alignment a frame header needs to be read in
	// place: the kernel puts each at a multiple of tpacketAlign.
	headerAlign  = int(unsafe.Alignof(frameHeader{}))
	tpacketAlign = 16 // TPACKET_ALIGNMENT
)

// blockStatusOff is the offset of block_status in a block.
const blockStatusOff = int(unsafe.Offsetof(blockDesc{}.Hdr) + unsafe.Offsetof(blockHeaderV1{}.BlockStatus))
