package sockfilter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The read path behind a Conn is a ringReader, or a recvmsgReader where no
// ring could be had. Each fills a *FrameInfo that the Conn passes down;
// the Conn calls them directly rather than through an interface, so that
// the pointer does not escape (and a read allocate), and so that the 56
// bytes of a FrameInfo are written once instead of copied up through each
// call's results.

// recvmsgReader reads one frame per recvmsg(2). Its message header, address
// and control buffer are allocated once, with the Conn, so that a read
// allocates nothing.
type recvmsgReader struct {
	rc   syscall.RawConn
	recv func(fd uintptr) bool // r.recvmsg, bound once: a method value allocates

	msg unix.Msghdr
	iov unix.Iovec
	sa  unix.RawSockaddrLinklayer
	// oob receives the control messages: SCM_TIMESTAMPNS (a timespec) and
	// PACKET_AUXDATA (a tpacket_auxdata), 72 bytes on 64-bit machines. It is
	// made of uint64s so that cmsghdrs in it are aligned.
	oob [16]uint64

	n     int
	errno syscall.Errno

	// own is the buffer next reads into, made on first use.
	own []byte
}

// recvmsgBufLen is the size of the buffer NextFrame reads into without a
// ring: libpcap's largest snap length, more than any frame on lo (whose MTU
// is 65536).
const recvmsgBufLen = 262144

func newRecvmsgReader(rc syscall.RawConn) *recvmsgReader {
	r := &recvmsgReader{rc: rc}
	r.recv = r.recvmsg
	r.msg.Name = (*byte)(unsafe.Pointer(&r.sa))
	r.msg.Iov = &r.iov
	r.msg.SetIovlen(1)
	r.msg.Control = (*byte)(unsafe.Pointer(&r.oob[0]))
	return r
}

// recvmsg is the callback rc.Read runs with the socket's descriptor: it
// reports true when it got a frame or an error, false to wait for the
// socket to become readable.
func (r *recvmsgReader) recvmsg(fd uintptr) bool {
	for {
		// The kernel overwrites these with the lengths it used.
		r.msg.Namelen = unix.SizeofSockaddrLinklayer
		r.msg.SetControllen(len(r.oob) * 8)
		r.msg.Flags = 0
		n, _, errno := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), 0)
		switch errno {
		case 0:
			r.n, r.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		r.n, r.errno = 0, errno
		return true
	}
}

// next reads the next frame into the reader's own buffer, valid until the
// next call.
func (r *recvmsgReader) next(info *FrameInfo) ([]byte, error) {
	if r.own == nil {
		r.own = make([]byte, recvmsgBufLen)
	}
	n, err := r.readFrame(r.own, info)
	if err != nil {
		return nil, err
	}
	return r.own[:n:n], nil
}

// readFrame reads the next frame into buf and what the kernel said about it
// into info. The poller checks the read deadline on every read.
func (r *recvmsgReader) readFrame(buf []byte, info *FrameInfo) (int, error) {
	if len(buf) > 0 {
		r.iov.Base = &buf[0]
	}
	r.iov.SetLen(len(buf))
	err := r.rc.Read(r.recv)
	r.iov.Base = nil // keep no reference to the caller's buffer
	if err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, os.NewSyscallError("recvmsg", r.errno)
	}
	*info = FrameInfo{
		Ifindex:   int(r.sa.Ifindex),
		Direction: DirectionFromPktType(r.sa.Pkttype),
		Length:    r.n,
	}
	r.parseControl(info)
	return r.n, nil
}

// parseControl fills info from the control messages of the last recvmsg.
func (r *recvmsgReader) parseControl(info *FrameInfo) {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&r.oob[0])), len(r.oob)*8)
	b = b[:min(uint64(r.msg.Controllen), uint64(len(b)))]
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		if uint64(h.Len) < unix.SizeofCmsghdr || uint64(h.Len) > uint64(len(b)) {
			return
		}
		data := b[unix.CmsgLen(0):h.Len]
		switch {
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
			info.Time = time.Unix(int64(ts.Sec), int64(ts.Nsec))
		case h.Level == unix.SOL_PACKET && h.Type == unix.PACKET_AUXDATA && len(data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&data[0]))
			// tp_len is the frame's length before the filter's return
			// value cut it (tp_snaplen is after); the buffer may have cut
			// it further.
			info.Length = int(aux.Len)
			if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
				info.HasVLAN = true
				info.VLANTCI = aux.Vlan_tci
				info.VLANTPID = unix.ETH_P_8021Q
				if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
					info.VLANTPID = aux.Vlan_tpid
				}
			}
		}
		next := unix.CmsgSpace(int(h.Len) - unix.CmsgLen(0))
		if next > len(b) {
			return
		}
		b = b[next:]
	}
}

// ReadFrame reads the next frame the filter accepted into buf and returns
// the number of bytes copied and what the kernel said about the frame. It
// takes the frame from the Conn's TPACKET_V3 ring, or wraps recvmsg(2) on
// the packet socket where there is no ring (packet(7)).
//
// Frames start with the link-layer header (see LinkType). A frame is cut to
// the length the filter returned and then to len(buf); info.Length keeps
// the original length, so n < info.Length shows the cut. The rest of a cut
// frame is lost: each call reads a new frame. A VLAN tag that the device or
// the kernel's receive path took out of the frame (as Linux does with every
// tag on receive) is not in buf; info.HasVLAN, VLANTCI and VLANTPID carry
// it, from the ring's frame header or PACKET_AUXDATA.
//
// ReadFrame blocks until a frame arrives, the read deadline passes (the
// error then matches os.ErrDeadlineExceeded, even if frames are waiting),
// or the Conn is closed (the error then matches ErrClosed). It does not
// allocate, and keeps no reference to buf once it returns. Like every
// read, it ends the validity of the frames NextFrame and NextFrames last
// returned.
func (c *Conn) ReadFrame(buf []byte) (n int, info FrameInfo, err error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if n, err = c.readLocked(buf, &info); err != nil {
		return 0, FrameInfo{}, err
	}
	return n, info, nil
}

// readLocked copies the next frame into buf. The caller holds readMu.
func (c *Conn) readLocked(buf []byte, info *FrameInfo) (int, error) {
	if c.closed.Load() {
		return 0, errReadClosed
	}
	if c.ring == nil {
		n, err := c.rec.readFrame(buf, info)
		if err != nil {
			return 0, c.readError(err)
		}
		return n, nil
	}
	frame, err := c.ring.next(info, c.deadlineArmed())
	if err != nil {
		return 0, c.readError(err)
	}
	return copy(buf, frame), nil
}

// NextFrame returns the next frame the filter accepted, in place: with a
// ring, frame is the frame's bytes in the ring's memory, copied by nobody
// since the kernel put them there, and NextFrame makes no system call while
// the kernel's last batch of frames lasts. Without a ring, frame is in a
// buffer of 256 KiB that the Conn owns.
//
// frame is valid until the next read on the Conn, by any goroutine
// (NextFrame, NextFrames, NextFrameContext, ReadFrame, ReadFrameContext):
// that read may hand its memory back to the kernel, which overwrites it.
// Copy what must outlive it (ReadFrame copies). Do not write to frame, and
// do not use it after Close (see Close for what happens if one does). Read
// from one goroutine, or serialise the reads and the use of each frame.
//
// frame is cut to the length the filter returned: to capture only the first
// N bytes of each frame, have the filter return N instead of -1 (a snap
// length; the kernel then copies N bytes, not the whole frame), and
// info.Length keeps the original length. Apart from frame being in place,
// NextFrame is ReadFrame: the same info, the same blocking, deadlines and
// errors; it does not allocate.
func (c *Conn) NextFrame() (frame []byte, info FrameInfo, err error) {
	// No defer: nextLocked does not panic, and this is the per-frame path.
	c.readMu.Lock()
	frame, err = c.nextLocked(&info)
	c.readMu.Unlock()
	if err != nil {
		return nil, FrameInfo{}, err
	}
	return frame, info, nil
}

// NextFrames is NextFrame for a batch: it reads frames in place into
// frames and infos, up to the shorter of the two, and returns how many.
// It waits, as NextFrame does, for the first; then it adds the frames the
// ring's current block still holds, without waiting for more. Every frame
// of the batch stays valid until the next read on the Conn. Without a ring
// a batch is one frame.
//
// A batch takes the Conn's read lock and looks at the read deadline once,
// where NextFrame does both for every frame: a capture loop over batches
// of a few dozen frames spends less per frame. The errors are NextFrame's;
// an error the ring gives after the first frame of a batch is returned by
// the next read. With empty frames or infos it reads nothing and returns
// 0 and nil, or ErrClosed once the Conn is closed. It does not allocate.
func (c *Conn) NextFrames(frames [][]byte, infos []FrameInfo) (int, error) {
	limit := min(len(frames), len(infos))
	if limit == 0 {
		if c.closed.Load() {
			return 0, errReadClosed
		}
		return 0, nil
	}
	c.readMu.Lock()
	frame, err := c.nextLocked(&infos[0])
	if err != nil {
		c.readMu.Unlock()
		frames[0], infos[0] = nil, FrameInfo{}
		return 0, err
	}
	frames[0] = frame
	n := 1
	if r := c.ring; r != nil {
		for n < limit && r.left > 0 {
			frame, err := r.next(&infos[n], false) // no wait: the block holds it
			if err != nil {
				frames[n], infos[n] = nil, FrameInfo{}
				r.pending = err
				break
			}
			frames[n] = frame
			n++
		}
	}
	c.readMu.Unlock()
	return n, nil
}

// nextLocked returns the next frame in place. The caller holds readMu.
func (c *Conn) nextLocked(info *FrameInfo) ([]byte, error) {
	if c.closed.Load() {
		return nil, errReadClosed
	}
	if c.ring == nil {
		frame, err := c.rec.next(info)
		if err != nil {
			return nil, c.readError(err)
		}
		return frame, nil
	}
	frame, err := c.ring.next(info, c.deadlineArmed())
	if err != nil {
		return nil, c.readError(err)
	}
	c.ring.lent = true
	return frame, nil
}

// errReadClosed is what a read on a closed Conn returns.
var errReadClosed = fmt.Errorf("read frame: %w", ErrClosed)

// readError wraps an error from the reader.
func (c *Conn) readError(err error) error {
	if c.closed.Load() {
		return errReadClosed
	}
	return fmt.Errorf("read frame: %w", err)
}

// aLongTimeAgo is a deadline in the past, which wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// ReadFrameContext is ReadFrame that also returns when ctx is done, with an
// error matching ctx.Err(). The read deadline still applies. A context that
// can be done costs the call a few small allocations; ReadFrame has none.
func (c *Conn) ReadFrameContext(ctx context.Context, buf []byte) (n int, info FrameInfo, err error) {
	if ctx.Done() == nil {
		return c.ReadFrame(buf)
	}
	err = c.withContext(ctx, func() error {
		var rerr error
		n, rerr = c.readLocked(buf, &info)
		return rerr
	})
	if err != nil {
		return 0, FrameInfo{}, err
	}
	return n, info, nil
}

// NextFrameContext is NextFrame that also returns when ctx is done, with
// an error matching ctx.Err(). The read deadline still applies. A context
// that can be done costs the call a few small allocations; NextFrame has
// none. The frame's validity is NextFrame's.
func (c *Conn) NextFrameContext(ctx context.Context) (frame []byte, info FrameInfo, err error) {
	if ctx.Done() == nil {
		return c.NextFrame()
	}
	err = c.withContext(ctx, func() error {
		var rerr error
		frame, rerr = c.nextLocked(&info)
		return rerr
	})
	if err != nil {
		return nil, FrameInfo{}, err
	}
	return frame, info, nil
}

// withContext runs read holding the read lock, with the read deadline
// forced into the past if ctx ends meanwhile, and maps the deadline error
// that then causes to ctx.Err().
func (c *Conn) withContext(ctx context.Context, read func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("read frame: %w", err)
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()

	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		c.dlMu.Lock()
		defer c.dlMu.Unlock()
		c.ctxFired = true
		c.armNow()
		c.f.SetReadDeadline(aLongTimeAgo) // fails only once closed
	})
	err := read()
	if stop() {
		return err
	}
	// The context ended: put the caller's deadline back, unless Close has
	// put its own there.
	<-fired
	c.dlMu.Lock()
	c.ctxFired = false
	if !c.closed.Load() {
		c.armDeadline()
		c.f.SetReadDeadline(c.deadline) // fails only once closed
	}
	c.dlMu.Unlock()
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("read frame: %w", ctx.Err())
	}
	return err
}

// SetReadDeadline sets the time after which ReadFrame, NextFrame,
// NextFrames and the Context variants fail with an error matching
// os.ErrDeadlineExceeded, as net.Conn.SetReadDeadline does; a blocked read
// is woken. The zero time means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	if c.closed.Load() {
		return fmt.Errorf("set read deadline: %w", ErrClosed)
	}
	c.deadline = t
	c.armDeadline()
	if c.ctxFired {
		// A Context read is waking its read; it restores t after.
		return nil
	}
	if err := c.f.SetReadDeadline(t); err != nil {
		return fmt.Errorf("set read deadline: %w", err)
	}
	return nil
}

// armDeadline sets dlState for c.deadline: armed now if it has passed (or
// a Context read is failing its read), else when it passes, by a timer.
// The caller holds dlMu.
func (c *Conn) armDeadline() {
	if c.dlTimer != nil {
		c.dlTimer.Stop()
		c.dlTimer = nil
	}
	unarmed := (c.dlState.Load()>>1 + 1) << 1 // a new generation
	d := c.deadline
	switch {
	case c.ctxFired, !d.IsZero() && !time.Now().Before(d):
		c.dlState.Store(unarmed | 1)
	case d.IsZero():
		c.dlState.Store(unarmed)
	default:
		c.dlState.Store(unarmed)
		st := c.dlState // not c: a pending timer must not keep the Conn alive
		c.dlTimer = time.AfterFunc(time.Until(d), func() {
			st.CompareAndSwap(unarmed, unarmed|1) // only if no deadline was set since
		})
	}
}

// armNow arms dlState in its current generation. The caller holds dlMu.
func (c *Conn) armNow() {
	c.dlState.Store(c.dlState.Load() | 1)
}

// deadlineArmed reports whether a read must ask the poller about the
// deadline: whether it may have passed.
func (c *Conn) deadlineArmed() bool {
	return c.dlState.Load()&1 != 0
}
