package sockfilter

import (
	"net"
	"time"
)

// ErrClosed is the error a Conn's methods return, wrapped, once the Conn is
// closed. It is net.ErrClosed, so errors.Is(err, net.ErrClosed) matches.
var ErrClosed = net.ErrClosed

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

// Config tunes a Conn. The zero Config, like a nil *Config, gives the
// defaults: incoming frames only, read from a TPACKET_V3 ring of
// DefaultRingBlockCount blocks of DefaultRingBlockSize bytes.
type Config struct {
	// Outgoing also delivers the frames this host sends on the interface
	// (sll_pkttype PACKET_OUTGOING). By default a Conn sees incoming frames
	// only; on lo, where every packet is both sent and received, that means
	// each packet once instead of twice.
	//
	// The default is enforced in the kernel with PACKET_IGNORE_OUTGOING
	// (Linux 4.20), not by reading outgoing frames and discarding them.
	Outgoing bool

	// ReceiveBuffer is the socket's receive buffer size in bytes
	// (SO_RCVBUFFORCE, or SO_RCVBUF without CAP_NET_ADMIN, where
	// net.core.rmem_max caps it). As socket(7) says, the kernel doubles the
	// value to leave room for bookkeeping and enforces a minimum of a few
	// KiB. Frames arriving while the buffer is full are dropped and counted
	// in Stats. Zero keeps the system default (net.core.rmem_default).
	//
	// It matters only without a ring (NoRing, or when the ring could not be
	// set up): a ring is the socket's receive buffer.
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
	// Stats. The block size must be a multiple of the page size; zero gives
	// DefaultRingBlockSize. The block count may be up to 65535; zero gives
	// DefaultRingBlockCount. The ring takes RingBlockSize*RingBlockCount
	// bytes of unswappable kernel memory for the life of the Conn, and a
	// frame longer than a block less 48 bytes is cut to fit.
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
