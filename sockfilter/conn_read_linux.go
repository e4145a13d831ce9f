package sockfilter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

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
//
// When the interface goes down, a read fails, once, with an error naming
// it that matches unix.ENETDOWN (from a ring, after the frames the ring
// already holds; recvmsg(2) says so first); later reads wait for it to
// come up again, and then go on. When the interface is deleted, reads
// fail from then on with an error matching unix.ENODEV, without waiting.
// A read already waiting on an interface that went down is not woken when
// it is then deleted, for the kernel tells the socket nothing: the next
// read fails. Set a deadline to bound the wait.
func (c *Conn) ReadFrame(buf []byte) (n int, info packet.Info, err error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if n, err = c.readLocked(buf, &info); err != nil {
		return 0, packet.Info{}, err
	}
	return n, info, nil
}

// readLocked copies the next frame into buf. The caller holds readMu.
func (c *Conn) readLocked(buf []byte, info *packet.Info) (int, error) {
	if c.closed.Load() {
		return 0, errReadClosed
	}
	if c.ifDown {
		c.checkGone()
	}
	if c.ring == nil {
		n, err := c.rec.ReadFrame(buf, info)
		if err != nil {
			return 0, c.readError(err)
		}
		c.ifDown = false
		return n, nil
	}
	frame, err := c.ring.Next(info, c.deadlineArmed())
	if err != nil {
		return 0, c.readError(err)
	}
	c.ifDown = false
	return copy(buf, frame), nil
}

// NextFrame returns the next frame the filter accepted, in place: with a
// ring, frame is the frame's bytes in the ring's memory, copied by nobody
// since the kernel put them there, and NextFrame makes no system call while
// the kernel's last batch of frames lasts. Without a ring, frame is in a
// buffer of 256 KiB that the Conn owns.
//
// frame holds this frame's bytes until the next read on the Conn, by any
// goroutine (NextFrame, NextFrames, NextFrameContext, ReadFrame,
// ReadFrameContext), and stays readable memory for as long as it is held,
// after Close and after the Conn is dropped, never faulting and never
// showing another Conn's bytes, but from that read until Close it may show
// later frames of this Conn, and from Close on it keeps the bytes it had
// then. (The next read may hand the memory back to the kernel, which
// overwrites it; Close puts a private copy of the ring in its place; the
// ring is memory of the Go heap that each frame keeps alive.) Copy what
// must outlive the next read (ReadFrame copies). Do not write to frame.
// Read from one goroutine, or serialise the reads and the use of each
// frame.
//
// frame is cut to the length the filter returned: to capture only the first
// N bytes of each frame, have the filter return N instead of -1 (a snap
// length; the kernel then copies N bytes, not the whole frame), and
// info.Length keeps the original length. Apart from frame being in place,
// NextFrame is ReadFrame: the same info, the same blocking, deadlines and
// errors; it does not allocate.
func (c *Conn) NextFrame() (frame []byte, info packet.Info, err error) {
	// No defer: nextLocked does not panic, and this is the per-frame path.
	c.readMu.Lock()
	frame, err = c.nextLocked(&info)
	c.readMu.Unlock()
	if err != nil {
		return nil, packet.Info{}, err
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
func (c *Conn) NextFrames(frames [][]byte, infos []packet.Info) (int, error) {
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
		frames[0], infos[0] = nil, packet.Info{}
		return 0, err
	}
	frames[0] = frame
	n := 1
	if c.ring != nil {
		n += c.ring.More(frames[1:limit], infos[1:limit])
	}
	c.readMu.Unlock()
	return n, nil
}

// nextLocked returns the next frame in place. The caller holds readMu.
func (c *Conn) nextLocked(info *packet.Info) ([]byte, error) {
	if c.closed.Load() {
		return nil, errReadClosed
	}
	if c.ifDown {
		c.checkGone()
	}
	if c.ring == nil {
		frame, err := c.rec.Next(info)
		if err != nil {
			return nil, c.readError(err)
		}
		c.ifDown = false
		return frame, nil
	}
	frame, err := c.ring.Next(info, c.deadlineArmed())
	if err != nil {
		return nil, c.readError(err)
	}
	c.ifDown = false
	c.ring.Lend()
	return frame, nil
}

// errReadClosed is what a read on a closed Conn returns.
var errReadClosed = fmt.Errorf("read frame: %w", ErrClosed)

// readError wraps an error from the reader, and tells what became of the
// interface if the socket says it is down. The caller holds readMu.
func (c *Conn) readError(err error) error {
	switch {
	case c.closed.Load():
		return errReadClosed
	case c.gone != nil && err == c.gone:
		return err
	case errors.Is(err, unix.ENETDOWN):
		return c.interfaceError(err)
	}
	return fmt.Errorf("read frame: %w", err)
}

// aLongTimeAgo is a deadline in the past, which wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// ReadFrameContext is ReadFrame that also returns when ctx is done, with an
// error matching ctx.Err(). The read deadline still applies. A context that
// can be done costs the call a few small allocations; ReadFrame has none.
func (c *Conn) ReadFrameContext(ctx context.Context, buf []byte) (n int, info packet.Info, err error) {
	if ctx.Done() == nil {
		return c.ReadFrame(buf)
	}
	err = c.withContext(ctx, func() error {
		var rerr error
		n, rerr = c.readLocked(buf, &info)
		return rerr
	})
	if err != nil {
		return 0, packet.Info{}, err
	}
	return n, info, nil
}

// NextFrameContext is NextFrame that also returns when ctx is done, with
// an error matching ctx.Err(). The read deadline still applies. A context
// that can be done costs the call a few small allocations; NextFrame has
// none. The frame's validity is NextFrame's.
func (c *Conn) NextFrameContext(ctx context.Context) (frame []byte, info packet.Info, err error) {
	if ctx.Done() == nil {
		return c.NextFrame()
	}
	err = c.withContext(ctx, func() error {
		var rerr error
		frame, rerr = c.nextLocked(&info)
		return rerr
	})
	if err != nil {
		return nil, packet.Info{}, err
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
