//go:build linux

package tpacket

import (
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// The read path behind a Conn is a Reader, or a RecvmsgReader where no
// ring could be had. Each fills a *packet.Info that the Conn passes down;
// the Conn calls them directly rather than through an interface, so that
// the pointer does not escape (and a read allocate), and so that the 56
// bytes of an Info are written once instead of copied up through each
// call's results.

// RecvmsgReader reads one frame per recvmsg(2). Its message header, address
// and control buffer are allocated once, with the Conn, so that a read
// allocates nothing.
type RecvmsgReader struct {
	rc   syscall.RawConn
	recv func(fd uintptr) bool // r.recvmsg, bound once: a method value allocates
	opts Options
	stop error // once set (Stop), returned instead of waiting for a frame

	msg unix.Msghdr
	iov unix.Iovec
	sa  sockaddrLL
	// oob receives the control messages: SCM_TIMESTAMPNS (a timespec) and
	// PACKET_AUXDATA (a tpacket_auxdata), 72 bytes on 64-bit machines. It is
	// made of uint64s so that cmsghdrs in it are aligned.
	oob [16]uint64

	n       int
	errno   syscall.Errno
	stopped bool // the last call found no frame, and stop set

	// own is the buffer next reads into, made on first use.
	own []byte
}

// recvmsgBufLen is the size of the buffer Next reads into: libpcap's
// largest snap length, more than any frame on lo (whose MTU is 65536).
const recvmsgBufLen = wire.MaxSnapLen

// NewRecvmsgReader returns a reader of the socket rc.
func NewRecvmsgReader(rc syscall.RawConn, opts Options) *RecvmsgReader {
	r := &RecvmsgReader{rc: rc, opts: opts}
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
func (r *RecvmsgReader) recvmsg(fd uintptr) bool {
	for {
		// The kernel overwrites these with the lengths it used.
		r.msg.Namelen = uint32(unsafe.Sizeof(r.sa))
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
			if r.stop != nil {
				r.n, r.errno, r.stopped = 0, 0, true
				return true
			}
			return false
		}
		r.n, r.errno = 0, errno
		return true
	}
}

// Next reads the next frame into the reader's own buffer, valid until the
// next call.
func (r *RecvmsgReader) Next(info *packet.Info) ([]byte, error) {
	if r.own == nil {
		r.own = make([]byte, recvmsgBufLen)
	}
	n, err := r.ReadFrame(r.own, info)
	if err != nil {
		return nil, err
	}
	return r.own[:n:n], nil
}

// Stop makes the reader return err, once the socket holds no more frames,
// instead of waiting for more: for a socket whose interface has gone.
func (r *RecvmsgReader) Stop(err error) { r.stop = err }

// ReadFrame reads the next frame into buf and what the kernel said about it
// into info. The poller checks the read deadline on every read. A frame
// the reader skips is read and dropped.
func (r *RecvmsgReader) ReadFrame(buf []byte, info *packet.Info) (int, error) {
	if !r.opts.Cooked {
		return r.read(buf, info)
	}
	if len(buf) < SLL2HeaderLen {
		// Too short even for the header: read into the reader's own
		// buffer and cut.
		frame, err := r.Next(info)
		if err != nil {
			return 0, err
		}
		return copy(buf, frame), nil
	}
	n, err := r.read(buf[SLL2HeaderLen:], info)
	if err != nil {
		return 0, err
	}
	putSLL2(buf, &r.sa)
	info.Length += SLL2HeaderLen
	return SLL2HeaderLen + n, nil
}

// read reads the next frame the reader does not skip into buf.
func (r *RecvmsgReader) read(buf []byte, info *packet.Info) (int, error) {
	if len(buf) > 0 {
		r.iov.Base = &buf[0]
	}
	r.iov.SetLen(len(buf))
	n, err := r.readLoop(info)
	r.iov.Base = nil // keep no reference to the caller's buffer
	return n, err
}

// readLoop calls recvmsg(2) until it gets a frame the reader does not skip,
// or an error.
func (r *RecvmsgReader) readLoop(info *packet.Info) (int, error) {
	for {
		r.stopped = false
		if err := r.rc.Read(r.recv); err != nil {
			return 0, err
		}
		switch {
		case r.stopped:
			return 0, r.stop
		case r.errno != 0:
			return 0, os.NewSyscallError("recvmsg", r.errno)
		case r.opts.Skip.skips(r.sa.Pkttype, r.sa.Hatype):
			continue
		}
		*info = packet.Info{
			Ifindex:   int(r.sa.Ifindex),
			Direction: Direction(r.sa.Pkttype),
			Length:    r.n,
		}
		r.parseControl(info)
		return r.n, nil
	}
}

// parseControl fills info from the control messages of the last recvmsg.
func (r *RecvmsgReader) parseControl(info *packet.Info) {
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
