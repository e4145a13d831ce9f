//go:build linux

package tpacket

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// Options says which frames a reader skips and how it presents the others.
type Options struct {
	// Skip names the frames the reader drops, for the directions no
	// socket option keeps away.
	Skip Skip
	// Cooked puts a Linux cooked header (LINKTYPE_LINUX_SLL2) in front of
	// each frame, built from its sockaddr_ll, as libpcap does for a
	// SOCK_DGRAM socket, whose frames start at the network header.
	Cooked bool
}

// Skip is a set of frames a reader drops.
type Skip uint8

const (
	// SkipIncoming drops every frame but those the host sends
	// (PACKET_OUTGOING).
	SkipIncoming Skip = 1 << iota
	// SkipOutgoing drops the frames the host sends, where
	// PACKET_IGNORE_OUTGOING (Linux 4.20) is missing.
	SkipOutgoing
	// SkipLoopbackOutgoing drops the frames the host sends on a loopback
	// device (ARPHRD_LOOPBACK), each of which it also receives.
	SkipLoopbackOutgoing
)

// skips reports whether s drops a frame of packet type pkttype from a
// device of type hatype.
func (s Skip) skips(pkttype uint8, hatype uint16) bool {
	if s == 0 {
		return false
	}
	out := pkttype == unix.PACKET_OUTGOING
	switch {
	case s&SkipIncoming != 0 && !out,
		s&SkipOutgoing != 0 && out,
		s&SkipLoopbackOutgoing != 0 && out && hatype == unix.ARPHRD_LOOPBACK:
		return true
	}
	return false
}

// SLL2HeaderLen is the length of a Linux cooked header, version 2.
const SLL2HeaderLen = 20

// putSLL2 writes into h[:20] the LINKTYPE_LINUX_SLL2 header of a frame
// whose sockaddr_ll is sa: the protocol (sll_protocol, already big-endian
// in sa), two reserved zero bytes, the interface index, the ARPHRD_ type,
// the packet type, the address length and 8 bytes of address, the fields
// but the first in network byte order (tcpdump.org/linktypes/
// LINKTYPE_LINUX_SLL2.html).
func putSLL2(h []byte, sa *sockaddrLL) {
	_ = h[SLL2HeaderLen-1]
	*(*uint16)(unsafe.Pointer(&h[0])) = sa.Protocol
	h[2], h[3] = 0, 0
	binary.BigEndian.PutUint32(h[4:], uint32(sa.Ifindex))
	binary.BigEndian.PutUint16(h[8:], sa.Hatype)
	h[10] = sa.Pkttype
	h[11] = min(sa.Halen, 8)
	copy(h[12:20], sa.Addr[:])
}

// parseFrame reads the frame whose tpacket3_hdr is at off in blk: it
// returns the frame's bytes, tp_next_offset, and its sockaddr_ll, and
// fills info with what the kernel said about the frame. The kernel writes
// the ring, but parseFrame trusts none of it: every offset is checked
// against blk.
func parseFrame(blk []byte, off int, info *packet.Info) ([]byte, int, *sockaddrLL, error) {
	if off < blockHdrLen || off > len(blk)-frameStart {
		return nil, 0, nil, fmt.Errorf("frame offset %d outside the block", off)
	}
	p := unsafe.Pointer(&blk[off])
	if uintptr(p)%uintptr(headerAlign) != 0 {
		return nil, 0, nil, fmt.Errorf("frame offset %d is not aligned", off)
	}
	h := (*frameHeader)(p)
	sa := (*sockaddrLL)(unsafe.Pointer(&blk[off+frameHdrLen]))
	mac, snaplen := int(h.Mac), int64(h.Snaplen)
	if mac < frameStart || mac > len(blk)-off || snaplen > int64(len(blk)-off-mac) {
		return nil, 0, nil, fmt.Errorf("frame at offset %d: %d bytes at %d overrun the block", off, snaplen, mac)
	}
	*info = packet.Info{
		Time:      time.Unix(int64(h.Sec), int64(h.Nsec)), // TPACKET_V3 stamps in ns
		Ifindex:   int(sa.Ifindex),
		Direction: Direction(sa.Pkttype),
		Length:    int(h.Len),
	}
	if h.Status&unix.TP_STATUS_VLAN_VALID != 0 {
		info.HasVLAN = true
		info.VLANTCI = uint16(h.Hv1.VLANTCI)
		info.VLANTPID = unix.ETH_P_8021Q
		if h.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			info.VLANTPID = h.Hv1.VLANTPID
		}
	}
	start, end := off+mac, off+mac+int(snaplen)
	return blk[start:end:end], int(h.NextOffset), sa, nil
}

// cook puts the SLL2 header of frame, which sa describes, in the bytes
// before it in blk (the ring's padding between the sockaddr_ll and a
// SOCK_DGRAM frame: tpacket_rcv puts such a frame at
// TPACKET_ALIGN(TPACKET3_HDRLEN) + 16, 28 bytes past the sockaddr_ll), and
// returns header and frame together. frame is what parseFrame returned for
// the header at off.
func cook(blk []byte, off int, frame []byte, sa *sockaddrLL, info *packet.Info) ([]byte, error) {
	// From the header, not frame's address: an empty frame's is blk's.
	start := off + int((*frameHeader)(unsafe.Pointer(&blk[off])).Mac)
	if start-SLL2HeaderLen < off+frameStart {
		return nil, fmt.Errorf("frame at offset %d: no room for its cooked header", off)
	}
	h := blk[start-SLL2HeaderLen : start+len(frame) : start+len(frame)]
	putSLL2(h, sa)
	info.Length += SLL2HeaderLen
	return h, nil
}

// Direction converts the kernel's sll_pkttype (PACKET_* in
// linux/if_packet.h) to a packet.Direction.
func Direction(pkttype uint8) packet.Direction {
	if pkttype > unix.PACKET_OUTGOING {
		return packet.DirectionUnknown
	}
	return packet.Direction(pkttype + 1)
}
