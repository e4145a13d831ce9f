//go:build linux

// Package tpacket is the mechanics of reading frames from an AF_PACKET
// socket: the TPACKET_V3 receive ring (packet(7),
// Documentation/networking/packet_mmap.rst) — its geometry, its setup and
// the reader that walks its blocks — and the recvmsg(2) reader with its
// control messages, for a socket without a ring. The sockfilter package's
// Conn drives them; nothing here is part of purebpf's API.
package tpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// The TPACKET_V3 ring's defaults (sockfilter's DefaultRingBlockSize and
// DefaultRingBlockCount). A ring of 32 blocks of 1 MiB holds about
// 170,000 small frames: on lo, a UDP datagram with 64 bytes of payload takes
// 192 bytes of ring (tpacket3_hdr, sockaddr_ll, alignment, 106 bytes of
// frame), so at a million datagrams a second a block fills in 5 ms and the
// ring rides out a reader stalled for 170 ms, 16 times what libpcap's 2 MiB
// default buffer does. The reader wakes once per block, not per frame: 200
// wakeups a second at that rate. Blocks of 1 MiB (order-8 allocations) are
// found contiguous more easily than the 4 MiB maximum, and many blocks
// waste less than few when a block timeout retires a block half full at
// low rates.
const (
	DefaultBlockSize  = 1 << 20
	DefaultBlockCount = 32
)

// TPACKET_V3 layout (linux/if_packet.h). The offsets are those of the
// fields in struct tpacket_block_desc (its hdr is a tpacket_hdr_v1) and in
// struct tpacket3_hdr; the sockaddr_ll of a frame follows its
// tpacket3_hdr at TPACKET_ALIGN(sizeof(struct tpacket3_hdr)), as
// tpacket_rcv puts it.
const (
	ringBlockStatusOff = 8  // block_status
	ringBlockNumOff    = 12 // num_pkts
	ringBlockFirstOff  = 16 // offset_to_first_pkt
	ringBlockHdrLen    = 48 // BLK_HDR_LEN: ALIGN(sizeof(tpacket_block_desc), 8)

	ringHdrLen     = unix.SizeofTpacket3Hdr // 48, already TPACKET_ALIGNed
	ringSllOff     = ringHdrLen             // where the sockaddr_ll starts
	ringFrameStart = ringSllOff + unix.SizeofSockaddrLinklayer

	// ringFrameSize is tp_frame_size. A TPACKET_V3 ring packs frames of any
	// length into its blocks, so the kernel only checks that it is aligned
	// and holds a header; it needs no other meaning.
	ringFrameSize = 1 << 11

	// ringMaxBlocks: the kernel numbers blocks in 16 bits
	// (tpacket_kbdq_core.kactive_blk_num).
	ringMaxBlocks = math.MaxUint16
)

// Geometry is a ring's shape, checked.
type Geometry struct {
	blockSize, blockCount int
	timeoutMS             uint32 // tp_retire_blk_tov; 0 lets the kernel choose
}

// NewGeometry checks a ring's block size, block count and block timeout,
// as sockfilter.Config gives them, and fills in the defaults for zeros.
func NewGeometry(blockSize, blockCount int, timeout time.Duration) (Geometry, error) {
	g := Geometry{blockSize: blockSize, blockCount: blockCount}
	if g.blockSize == 0 {
		g.blockSize = DefaultBlockSize
	}
	if g.blockCount == 0 {
		g.blockCount = DefaultBlockCount
	}
	page := os.Getpagesize()
	switch {
	// The kernel takes the block size as an int (packet_set_ring).
	case g.blockSize < 0 || g.blockSize%page != 0 || uint64(g.blockSize) >= 1<<31:
		return g, fmt.Errorf("ring block size %d is not a multiple of the page size (%d bytes) below 2 GiB", blockSize, page)
	case g.blockCount < 0 || g.blockCount > ringMaxBlocks:
		return g, fmt.Errorf("ring block count %d is not between 1 and %d", blockCount, ringMaxBlocks)
	case uint64(g.blockSize/ringFrameSize)*uint64(g.blockCount) > math.MaxUint32:
		return g, fmt.Errorf("ring of %d blocks of %d bytes is too large", g.blockCount, g.blockSize)
	case timeout < 0:
		return g, fmt.Errorf("ring block timeout %v is negative", timeout)
	}
	// The kernel counts in milliseconds: round up, so that a timeout asked
	// for is never zero, which would mean the kernel's choice.
	ms := (timeout + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxUint32 {
		return g, fmt.Errorf("ring block timeout %v is too long", timeout)
	}
	g.timeoutMS = uint32(ms)
	return g, nil
}

// SetRing and MmapRing make and map the ring; variables so that a test
// can make them fail. (No geometry that Config allows makes the kernel
// refuse the ring at once: it tries to allocate even an absurd one.)
var (
	SetRing  = unix.SetsockoptTpacketReq3
	MmapRing = unix.Mmap
)

// Setup gives the unbound socket fd a TPACKET_V3 receive ring of shape g
// and maps it (packet(7), Documentation/networking/packet_mmap.rst). If it
// fails, the socket is left as it was, ready for recvmsg(2), unless the
// error matches ErrTeardown.
func Setup(fd int, g Geometry) (*Mapping, error) {
	if err := setsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3, "PACKET_VERSION"); err != nil {
		return nil, err
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(g.blockSize),
		Block_nr:       uint32(g.blockCount),
		Frame_size:     ringFrameSize,
		Frame_nr:       uint32(g.blockSize / ringFrameSize * g.blockCount),
		Retire_blk_tov: g.timeoutMS,
	}
	if err := SetRing(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		err = os.NewSyscallError("setsockopt PACKET_RX_RING", err)
		return nil, errors.Join(err, resetVersion(fd))
	}
	mem, err := MmapRing(fd, 0, g.blockSize*g.blockCount, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		err = os.NewSyscallError("mmap", err)
		// A ring of no blocks frees the one just made.
		var none unix.TpacketReq3
		if terr := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &none); terr != nil {
			return nil, errors.Join(err, fmt.Errorf("%w: %w", ErrTeardown, os.NewSyscallError("setsockopt PACKET_RX_RING", terr)))
		}
		return nil, errors.Join(err, resetVersion(fd))
	}
	return &Mapping{mem: mem}, nil
}

// ErrTeardown marks a ring setup failure that left the socket unfit
// for recvmsg(2).
var ErrTeardown = errors.New("cannot free the ring")

// resetVersion puts the socket back to TPACKET_V1, the version recvmsg(2)
// and PACKET_STATISTICS assume.
func resetVersion(fd int) error {
	if err := setsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V1, "PACKET_VERSION"); err != nil {
		return fmt.Errorf("%w: %w", ErrTeardown, err)
	}
	return nil
}

// Mapping is the ring's memory, mapped once and unmapped once.
type Mapping struct {
	mem  []byte
	once sync.Once
}

// Unmap unmaps the ring. The mapping holds a reference to the socket, so
// this, not close(2), is what finally releases a socket with a ring.
func (m *Mapping) Unmap() {
	m.once.Do(func() {
		unix.Munmap(m.mem) // fails only for a bad range, which this is not
		m.mem = nil
	})
}

// Reader iterates over a TPACKET_V3 ring: the kernel fills blocks in
// turn and hands each over by setting TP_STATUS_USER in its block_status;
// the reader walks the frames of the block it holds and hands the block
// back by storing TP_STATUS_KERNEL once it has moved past it. A frame's
// bytes are read in place, so they stay valid until the reader moves on.
//
// The Conn's read lock guards every field; blockStatus is also written by
// the kernel, and read and written with atomics.
type Reader struct {
	rc    syscall.RawConn
	m     *Mapping
	ready func(fd uintptr) bool // r.blockReady, bound once: a method value allocates
	probe func(fd uintptr) bool // returns true; rc.Read(probe) checks the deadline

	blockSize, blockCount int

	cur  int  // the block the reader is at
	held bool // the reader holds block cur (the kernel handed it over)
	left int  // frames of block cur not yet read
	off  int  // offset in block cur of the next frame

	// lent is set once a frame has been handed out in place (Lend): from
	// then on the ring's owner cannot know when its memory stops being
	// read.
	lent bool

	// pending is an error met after the first frame of a NextFrames
	// batch, for the next read to return.
	pending error
}

func NewReader(rc syscall.RawConn, m *Mapping, g Geometry) *Reader {
	r := &Reader{rc: rc, m: m, blockSize: g.blockSize, blockCount: g.blockCount}
	r.ready = r.blockReady
	r.probe = func(uintptr) bool { return true }
	return r
}

// blockStatus points at the block_status of block i.
func (r *Reader) blockStatus(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.m.mem[i*r.blockSize+ringBlockStatusOff]))
}

// blockReady is the callback rc.Read runs: true once the kernel has handed
// block cur over, false to wait for the socket to become readable, which it
// does when the kernel retires a block (prb_close_block wakes the socket).
func (r *Reader) blockReady(uintptr) bool {
	return atomic.LoadUint32(r.blockStatus(r.cur))&unix.TP_STATUS_USER != 0
}

// Next returns the next frame in place and fills info. With checkDeadline
// it first asks the runtime poller whether the read deadline has passed, so
// that a deadline fails a read even when frames are waiting, as it does
// with recvmsg(2).
func (r *Reader) Next(info *packet.Info, checkDeadline bool) ([]byte, error) {
	if err := r.pending; err != nil {
		r.pending = nil
		return nil, err
	}
	if checkDeadline {
		if err := r.rc.Read(r.probe); err != nil {
			return nil, err
		}
	}
	for r.left == 0 {
		if r.held {
			// Hand the block back. The atomic store orders every read of
			// the block before it.
			atomic.StoreUint32(r.blockStatus(r.cur), unix.TP_STATUS_KERNEL)
			r.held = false
			r.cur++
			if r.cur == r.blockCount {
				r.cur = 0
			}
		}
		if !r.blockReady(0) {
			if err := r.rc.Read(r.ready); err != nil {
				return nil, err
			}
		}
		// The atomic load in blockReady orders it before these reads.
		blk := r.block()
		r.held = true
		r.left = int(binary.NativeEndian.Uint32(blk[ringBlockNumOff:]))
		r.off = int(binary.NativeEndian.Uint32(blk[ringBlockFirstOff:]))
	}
	frame, next, err := ParseFrame(r.block(), r.off, info)
	if err != nil {
		r.left = 0 // skip the rest of the block
		return nil, fmt.Errorf("ring block %d: %w", r.cur, err)
	}
	r.left--
	if r.left > 0 && next == 0 {
		r.left = 0
		return nil, fmt.Errorf("ring block %d: frame at offset %d has no successor, yet the block holds more", r.cur, r.off)
	}
	r.off += next
	return frame, nil
}

// More adds to frames and infos, from the start, the frames the current
// block still holds, without waiting, up to the shorter of the two, and
// returns how many. An error is kept for the next call of Next to return.
func (r *Reader) More(frames [][]byte, infos []packet.Info) int {
	n := 0
	for n < len(frames) && n < len(infos) && r.left > 0 {
		frame, err := r.Next(&infos[n], false) // no wait: the block holds it
		if err != nil {
			frames[n], infos[n] = nil, packet.Info{}
			r.pending = err
			break
		}
		frames[n] = frame
		n++
	}
	return n
}

// Lend records that a frame was handed out in place.
func (r *Reader) Lend() { r.lent = true }

// Lent reports whether Lend was called.
func (r *Reader) Lent() bool { return r.lent }

// Mapping returns the ring's memory.
func (r *Reader) Mapping() *Mapping { return r.m }

// block returns block cur.
func (r *Reader) block() []byte {
	return r.m.mem[r.cur*r.blockSize : (r.cur+1)*r.blockSize]
}

// ParseFrame reads the frame whose tpacket3_hdr is at off in blk: it
// returns its bytes and tp_next_offset, and fills info with what the kernel
// said about it.
func ParseFrame(blk []byte, off int, info *packet.Info) ([]byte, int, error) {
	if off < ringBlockHdrLen || off > len(blk)-ringFrameStart {
		return nil, 0, fmt.Errorf("frame offset %d outside the block", off)
	}
	h := blk[off:]
	ne := binary.NativeEndian
	next := int(ne.Uint32(h[0:]))                                                    // tp_next_offset
	sec := ne.Uint32(h[4:])                                                          // tp_sec
	nsec := ne.Uint32(h[8:])                                                         // tp_nsec: TPACKET_V3 stamps in ns
	snaplen := int(ne.Uint32(h[12:]))                                                // tp_snaplen
	length := int(ne.Uint32(h[16:]))                                                 // tp_len
	status := ne.Uint32(h[20:])                                                      // tp_status
	mac := int(ne.Uint16(h[24:]))                                                    // tp_mac
	tci := ne.Uint32(h[32:])                                                         // hv1.tp_vlan_tci
	tpid := ne.Uint16(h[36:])                                                        // hv1.tp_vlan_tpid
	if mac < ringFrameStart || mac > len(h) || snaplen < 0 || snaplen > len(h)-mac { // snaplen < 0: a uint32 in a 32-bit int
		return nil, 0, fmt.Errorf("frame at offset %d: %d bytes at %d overrun the block", off, snaplen, mac)
	}
	// struct sockaddr_ll: sll_ifindex at 4, sll_pkttype at 10.
	sll := h[ringSllOff:ringFrameStart]
	*info = packet.Info{
		Time:      time.Unix(int64(sec), int64(nsec)),
		Ifindex:   int(int32(ne.Uint32(sll[4:]))),
		Direction: Direction(sll[10]),
		Length:    length,
	}
	if status&unix.TP_STATUS_VLAN_VALID != 0 {
		info.HasVLAN = true
		info.VLANTCI = uint16(tci)
		info.VLANTPID = unix.ETH_P_8021Q
		if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			info.VLANTPID = tpid
		}
	}
	return h[mac : mac+snaplen : mac+snaplen], next, nil
}

// setsockoptInt wraps setsockopt(2) for an int option named name.
func setsockoptInt(fd, level, opt, value int, name string) error {
	if err := unix.SetsockoptInt(fd, level, opt, value); err != nil {
		return os.NewSyscallError("setsockopt "+name, err)
	}
	return nil
}
