package sockfilter

import (
	"net"
	"strconv"
	"time"
)

// ErrClosed is the error a Conn's methods return, wrapped, once the Conn is
// closed. It is net.ErrClosed, so errors.Is(err, net.ErrClosed) matches.
var ErrClosed = net.ErrClosed

// AnyInterface is the interface name Listen takes for every interface at
// once, as libpcap's "any" device: the Conn reads from a SOCK_DGRAM packet
// socket bound to no interface (ifindex 0), which gets each frame from its
// network header on, without its link-layer header, and puts a Linux cooked
// header in front of each (LINKTYPE_LINUX_SLL2, packet.LinkLinuxSLL2):
// the EtherType, the interface index, the device type, the packet type and
// the link-layer source address, 20 bytes. An interface named "any", if
// there is one, cannot be listened on alone.
//
// The filter sees each frame as the socket does, from its network header:
// packet loads at offset 0 read the IP header, skb->protocol holds the
// EtherType, skb->ifindex the interface. Its return value cuts the frame
// before the cooked header is added, which Info.Length and the frame
// include. Promiscuous mode needs an interface, and Listen refuses it here.
// pcapfilter.Compile(expr, packet.LinkLinuxSLL2) compiles a filter for
// this socket with tcpdump -i any's meaning: the cooked header's fields
// (`arp`, `inbound`, `ifindex 2`) read from the socket buffer.
const AnyInterface = "any"

// The TPACKET_V3 ring's defaults. A ring of 32 blocks of 1 MiB holds about
// 170,000 small frames (a 64-byte UDP datagram on lo takes 192 bytes of
// ring) and rides out a reader stalled for 170 ms at a million frames a
// second; the reader wakes once per block, not per frame. Blocks of 1 MiB
// are found contiguous more easily than the 4 MiB maximum, and many blocks
// waste less than few when the block timeout retires them half full.
const (
	DefaultRingBlockSize  = 1 << 20
	DefaultRingBlockCount = 32
)

// MaxRingBlockSize is the largest ring block Listen accepts, 64 MiB. The
// kernel allocates a block up to 4 MiB in one piece and a larger one page by
// page (alloc_one_pg_vec_page), all of it zeroed: blocks past this only
// slow Listen down (a 2 GiB one takes seconds) and hold no frame that needs
// them.
const MaxRingBlockSize = 64 << 20

// MaxReceiveBuffer is the largest Config.ReceiveBuffer: the kernel caps
// SO_RCVBUF and SO_RCVBUFFORCE at INT_MAX/2 and doubles it
// (__sock_set_rcvbuf).
const MaxReceiveBuffer = 1<<30 - 1

// Direction selects, in a Config, the frames a Conn sees by where they
// were going: received by the host, sent by it, or both, as tcpdump's -Q
// in|out|inout and libpcap's pcap_setdirection(3PCAP) do. A frame says
// where it was going with its own packet.Direction.
//
// On a loopback device (ARPHRD_LOOPBACK, such as lo), every packet the
// host sends it also receives, so a packet socket sees each twice: once
// outgoing, once incoming. DirectionInOut shows each once, as incoming,
// as libpcap does (Config.LoopbackOutgoing keeps both copies);
// DirectionOut shows each once, as outgoing (libpcap shows none there).
//
// Where a socket option can, the kernel drops the frames a Conn is not to
// see before any filter runs or anything is copied: PACKET_IGNORE_OUTGOING
// (Linux 4.20) keeps sent frames away, for DirectionIn on every device and
// for DirectionInOut on a loopback device. No option keeps received frames
// away, so for DirectionOut, and for DirectionInOut on the "any"
// interface (where a loopback device's sent copies cannot be singled out
// in the kernel), the Conn reads the frames it is not to see and skips
// them: they pass through the filter, take room in the ring and count in
// Stats as received. A filter that tests skb->pkt_type drops them in the
// kernel instead (PACKET_OUTGOING is 4).
type Direction uint8

// The directions a Conn can see.
const (
	// DirectionInOut sees the frames the host receives and those it sends,
	// each packet on a loopback device once. It is the default.
	DirectionInOut Direction = iota
	// DirectionIn sees the frames the host receives (every
	// packet.Direction but DirectionOutgoing).
	DirectionIn
	// DirectionOut sees the frames the host sends (packet.DirectionOutgoing).
	DirectionOut
)

// String returns "inout", "in" or "out", the words tcpdump -Q takes.
func (d Direction) String() string {
	switch d {
	case DirectionInOut:
		return "inout"
	case DirectionIn:
		return "in"
	case DirectionOut:
		return "out"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// Config tunes a Conn. The zero Config, like a nil *Config, gives the
// defaults: frames in both directions (each packet on a loopback device
// once), read from a TPACKET_V3 ring of DefaultRingBlockCount blocks of
// DefaultRingBlockSize bytes.
type Config struct {
	// Direction selects the frames a Conn sees by where they were going,
	// as tcpdump's -Q does: DirectionInOut (the default) both the frames
	// the host receives and those it sends, DirectionIn the received ones
	// only, DirectionOut the sent ones only. See Direction.
	Direction Direction

	// LoopbackOutgoing keeps, with DirectionInOut, the outgoing copy of
	// each packet on a loopback device, which a Conn otherwise drops: each
	// such packet is then seen twice, once sent (DirectionOutgoing) and
	// once received, as a packet socket gets it. It applies to
	// DirectionInOut only.
	LoopbackOutgoing bool

	// ReceiveBuffer is the socket's receive buffer size in bytes
	// (SO_RCVBUFFORCE, or SO_RCVBUF without CAP_NET_ADMIN, where
	// net.core.rmem_max caps it). As socket(7) says, the kernel doubles the
	// value to leave room for bookkeeping and enforces a minimum of a few
	// KiB. Frames arriving while the buffer is full are dropped and counted
	// in Stats. Zero keeps the system default (net.core.rmem_default).
	//
	// It matters only without a ring (NoRing, or when the ring could not be
	// set up): a ring is the socket's receive buffer. The kernel takes at
	// most MaxReceiveBuffer; Listen refuses more rather than let the
	// kernel cut it.
	ReceiveBuffer int

	// Promiscuous puts the interface in promiscuous mode for the life of
	// the Conn (PACKET_ADD_MEMBERSHIP with PACKET_MR_PROMISC; see
	// packet(7)), so frames addressed to other hosts reach it. The kernel
	// undoes it when the socket is closed.
	Promiscuous bool

	// RingBlockSize and RingBlockCount shape the TPACKET_V3 receive ring
	// (PACKET_RX_RING; Documentation/networking/packet_mmap.rst, Linux
	// 3.2): the kernel copies each accepted frame into the current block
	// and hands a block to the reader when it is full or its timeout
	// passes; the reader hands it back when it has read its frames. When
	// every block is with the reader, frames are dropped and counted in
	// Stats. The block size must be a multiple of the page size, up to
	// MaxRingBlockSize; zero gives DefaultRingBlockSize. The block count
	// may be up to 65535; zero gives DefaultRingBlockCount (or fewer, where
	// that many would be more than the machine allows a ring). The ring
	// takes RingBlockSize*RingBlockCount bytes of unswappable kernel memory
	// until Close, at most a quarter of the machine's memory (MemTotal in
	// /proc/meminfo); Listen refuses a larger ring. A frame longer than a
	// block less 48 bytes is cut to fit. The ring's address range is
	// memory of the Go heap (see Conn.NextFrame), which counts it in
	// runtime.MemStats, GOGC and GOMEMLIMIT.
	RingBlockSize  int
	RingBlockCount int

	// RingBlockTimeout is how long the kernel waits before it hands over a
	// block that holds frames but is not full (tp_retire_blk_tov, rounded
	// up to milliseconds): the most a frame waits to be read when traffic
	// is slow. Zero keeps the kernel's choice (prb_calc_retire_blk_tmo):
	// the time the link takes to fill a block at its speed, or 8 ms where
	// the speed is unknown, as on lo.
	RingBlockTimeout time.Duration

	// NoRing reads each frame with its own recvmsg(2) instead of from a
	// ring, as a Conn also does when the ring cannot be set up (see
	// Conn.Ring).
	NoRing bool
}

// Stats are a Conn's frame counters since Listen.
type Stats struct {
	// Received counts the frames the filter accepted that the kernel
	// queued for reading.
	Received uint64
	// Drops counts the frames the filter accepted that the kernel dropped
	// instead of queueing, because the reader lagged: every block of the
	// ring was full (Config.RingBlockSize, RingBlockCount), or, without a
	// ring, the receive buffer was (Config.ReceiveBuffer).
	Drops uint64
	// Freezes counts the times the ring filled up, so that the kernel
	// froze its queue of blocks and dropped frames until the reader handed
	// a block back (tp_freeze_q_cnt). It stays zero without a ring.
	Freezes uint64
}
