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

// frameReader is the read path behind a Conn. readFrame copies the next
// frame into buf, blocking through the runtime poller, and returns how many
// bytes it copied and what the kernel said about the frame. The recvmsg
// reader below takes one frame per system call; a TPACKET_V3 ring reader
// can take its place without changing ReadFrame's contract.
type frameReader interface {
	readFrame(buf []byte) (int, FrameInfo, error)
}

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
}

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

func (r *recvmsgReader) readFrame(buf []byte) (int, FrameInfo, error) {
	if len(buf) > 0 {
		r.iov.Base = &buf[0]
	}
	r.iov.SetLen(len(buf))
	err := r.rc.Read(r.recv)
	r.iov.Base = nil // keep no reference to the caller's buffer
	if err != nil {
		return 0, FrameInfo{}, err
	}
	if r.errno != 0 {
		return 0, FrameInfo{}, os.NewSyscallError("recvmsg", r.errno)
	}
	info := FrameInfo{
		Ifindex:   int(r.sa.Ifindex),
		Direction: DirectionFromPktType(r.sa.Pkttype),
		Length:    r.n,
	}
	r.parseControl(&info)
	return r.n, info, nil
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
// wraps recvmsg(2) on the packet socket (packet(7)).
//
// Frames start with the link-layer header (see LinkType). A frame is cut to
// the length the filter returned and then to len(buf); info.Length keeps
// the original length, so n < info.Length shows the cut. The rest of a cut
// frame is lost: each call reads a new frame. A VLAN tag that the device or
// the kernel's receive path took out of the frame (as Linux does with every
// tag on receive) is not in buf; info.HasVLAN, VLANTCI and VLANTPID carry
// it, from PACKET_AUXDATA.
//
// ReadFrame blocks until a frame arrives, the read deadline passes (the
// error then matches os.ErrDeadlineExceeded), or the Conn is closed (the
// error then matches ErrClosed). It does not allocate, and keeps no
// reference to buf once it returns.
func (c *Conn) ReadFrame(buf []byte) (n int, info FrameInfo, err error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	return c.readFrameLocked(buf)
}

func (c *Conn) readFrameLocked(buf []byte) (int, FrameInfo, error) {
	n, info, err := c.r.readFrame(buf)
	if err != nil {
		if c.closed.Load() {
			return 0, FrameInfo{}, fmt.Errorf("read frame: %w", ErrClosed)
		}
		return 0, FrameInfo{}, fmt.Errorf("read frame: %w", err)
	}
	return n, info, nil
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
	if err := ctx.Err(); err != nil {
		return 0, FrameInfo{}, fmt.Errorf("read frame: %w", err)
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()

	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		c.dlMu.Lock()
		defer c.dlMu.Unlock()
		c.ctxFired = true
		c.f.SetReadDeadline(aLongTimeAgo) // fails only once closed
	})
	n, info, err = c.readFrameLocked(buf)
	if stop() {
		return n, info, err
	}
	// The context ended: put the caller's deadline back.
	<-fired
	c.dlMu.Lock()
	c.ctxFired = false
	c.f.SetReadDeadline(c.deadline) // fails only once closed
	c.dlMu.Unlock()
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, FrameInfo{}, fmt.Errorf("read frame: %w", ctx.Err())
	}
	return n, info, err
}

// SetReadDeadline sets the time after which ReadFrame and ReadFrameContext
// fail with an error matching os.ErrDeadlineExceeded, as
// net.Conn.SetReadDeadline does; a blocked read is woken. The zero time
// means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.deadline = t
	if c.ctxFired {
		// ReadFrameContext is waking its read; it restores t after.
		return nil
	}
	if err := c.f.SetReadDeadline(t); err != nil {
		if c.closed.Load() {
			return fmt.Errorf("set read deadline: %w", ErrClosed)
		}
		return fmt.Errorf("set read deadline: %w", err)
	}
	return nil
}
