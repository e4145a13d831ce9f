//go:build linux

package tpacket

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// Reader iterates over a TPACKET_V3 ring: the kernel fills blocks in
// turn and hands each over by setting TP_STATUS_USER in its block_status;
// the reader walks the frames of the block it holds and hands the block
// back by storing TP_STATUS_KERNEL once it has moved past it. A frame's
// bytes are read in place, so they are the frame's until the reader moves
// on (and stay readable after; see Mapping).
//
// The Conn's read lock guards every field; blockStatus is also written by
// the kernel, and read and written with atomics.
type Reader struct {
	rc    syscall.RawConn
	m     *Mapping
	mem   []byte                // m.mem, while the ring is mapped
	await func(fd uintptr) bool // r.wait, bound once: a method value allocates
	probe func(fd uintptr) bool // returns true; rc.Read(probe) checks the deadline
	opts  Options

	blockSize, blockCount int

	cur  int  // the block the reader is at
	held bool // the reader holds block cur (the kernel handed it over)
	left int  // frames of block cur not yet read
	off  int  // offset in block cur of the next frame

	// lent has a bit set for each block a frame has been handed out from
	// in place (Lend): from then on the ring's owner cannot know when that
	// block's memory stops being read. curLent says block cur's is set.
	lent    []uint64
	curLent bool

	// waitErr is what wait found instead of a block: the socket's pending
	// error, or stop.
	waitErr error
	// stop, once set (Stop), is returned instead of waiting for a block.
	stop error

	// pending is an error met after the first frame of a NextFrames
	// batch, for the next read to return.
	pending error
}

// NewReader returns a reader of the ring m of shape g on the socket rc.
func NewReader(rc syscall.RawConn, m *Mapping, g Geometry, opts Options) *Reader {
	r := &Reader{rc: rc, m: m, mem: m.mem, blockSize: g.blockSize, blockCount: g.blockCount, opts: opts}
	r.lent = make([]uint64, (g.blockCount+63)/64)
	r.await = r.wait
	r.probe = func(uintptr) bool { return true }
	return r
}

// blockStatus points at the block_status of block i.
func (r *Reader) blockStatus(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[i*r.blockSize+blockStatusOff]))
}

// blockReady reports whether the kernel has handed block cur over.
func (r *Reader) blockReady() bool {
	return atomic.LoadUint32(r.blockStatus(r.cur))&unix.TP_STATUS_USER != 0
}

// wait is the callback rc.Read runs: true once the kernel has handed block
// cur over or the socket has an error pending, false to wait for the
// socket to become readable, which it does when the kernel retires a block
// (prb_close_block wakes the socket) or reports an error. The kernel
// reports its interface going down or away that way (packet_notifier sets
// sk_err to ENETDOWN and wakes the socket), and getsockopt(2) SO_ERROR
// takes the error, as a recvmsg(2) would.
func (r *Reader) wait(fd uintptr) bool {
	if r.blockReady() {
		return true
	}
	if r.stop != nil {
		r.waitErr = r.stop
		return true
	}
	if errno := socketError(fd); errno != 0 {
		r.waitErr = os.NewSyscallError("getsockopt SO_ERROR", errno)
		return true
	}
	return false
}

// socketError takes the socket's pending error (SO_ERROR, socket(7)).
func socketError(fd uintptr) syscall.Errno {
	v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if errno, ok := err.(syscall.Errno); ok {
		return errno
	}
	return syscall.Errno(v)
}

// Stop makes the reader return err, once the ring holds no more frames,
// instead of waiting for more: for a socket whose interface has gone.
func (r *Reader) Stop(err error) { r.stop = err }

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
	for {
		for r.left == 0 {
			if err := r.nextBlock(); err != nil {
				return nil, err
			}
		}
		frame, err := r.inBlock(info)
		if frame != nil || err != nil {
			return frame, err
		}
	}
}

// nextBlock hands block cur back, if the reader holds it, and waits for
// the next.
func (r *Reader) nextBlock() error {
	if r.held {
		// Hand the block back. The atomic store orders every read of the
		// block before it.
		atomic.StoreUint32(r.blockStatus(r.cur), unix.TP_STATUS_KERNEL)
		r.held, r.curLent = false, false
		r.cur++
		if r.cur == r.blockCount {
			r.cur = 0
		}
	}
	if !r.blockReady() {
		r.waitErr = nil
		if err := r.rc.Read(r.await); err != nil {
			return err
		}
		if err := r.waitErr; err != nil {
			r.waitErr = nil
			return err
		}
	}
	// The atomic load in blockReady orders it before these reads.
	d := (*blockDesc)(unsafe.Pointer(&r.block()[0]))
	r.held = true
	r.left = int(d.Hdr.NumPkts)
	r.off = int(d.Hdr.OffsetToFirstPkt)
	return nil
}

// inBlock returns the next frame of block cur that the reader does not
// skip, or nil once the block holds no more.
func (r *Reader) inBlock(info *packet.Info) ([]byte, error) {
	blk := r.block()
	for r.left > 0 {
		off := r.off
		frame, next, sa, err := parseFrame(blk, off, info)
		if err != nil {
			r.left = 0 // skip the rest of the block
			return nil, fmt.Errorf("ring block %d: %w", r.cur, err)
		}
		r.left--
		if r.left > 0 && next == 0 {
			r.left = 0
			return nil, fmt.Errorf("ring block %d: frame at offset %d has no successor, yet the block holds more", r.cur, off)
		}
		r.off += next
		if r.opts.Skip.skips(sa.Pkttype, sa.Hatype) {
			continue
		}
		if r.opts.Cooked {
			if frame, err = cook(blk, off, frame, sa, info); err != nil {
				return nil, fmt.Errorf("ring block %d: %w", r.cur, err)
			}
		}
		return frame, nil
	}
	return nil, nil
}

// More adds to frames and infos, from the start, the frames the current
// block still holds, without waiting, up to the shorter of the two, and
// returns how many. An error is kept for the next call of Next to return.
func (r *Reader) More(frames [][]byte, infos []packet.Info) int {
	n := 0
	for n < len(frames) && n < len(infos) && r.left > 0 {
		frame, err := r.inBlock(&infos[n])
		if err != nil {
			frames[n], infos[n] = nil, packet.Info{}
			r.pending = err
			break
		}
		if frame == nil {
			break
		}
		frames[n] = frame
		n++
	}
	return n
}

// Lend records that a frame of block cur was handed out in place.
func (r *Reader) Lend() {
	if !r.curLent {
		r.curLent = true
		r.lent[r.cur/64] |= 1 << (r.cur % 64)
	}
}

// Retire gives the ring's memory back (Mapping.Retire), keeping the bytes
// of the blocks whose frames may still be in use. The reader must not be
// used after. The caller holds the Conn's read lock, or the Conn is
// unreachable.
func (r *Reader) Retire() error {
	if r.mem == nil {
		return nil
	}
	r.mem = nil
	return r.m.Retire(r.blockSize, r.lent)
}

// block returns block cur.
func (r *Reader) block() []byte {
	return r.mem[r.cur*r.blockSize : (r.cur+1)*r.blockSize]
}
