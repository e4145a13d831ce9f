//go:build linux

// Package poller waits for a file descriptor to become readable through
// Go's runtime poller (epoll), with read deadlines, contexts and a Close
// that wakes a blocked wait: what sockfilter's ring buffer and perf buffer
// readers block on. The descriptor is made non-blocking and handed to
// os.NewFile, whose SyscallConn waits as net.Conn's reads do, so no
// goroutine or system call of its own is spent on waiting.
//
// The readers check their rings themselves; a Poller only tells them when
// to look again. A ready function, bound once at New so that waiting does
// not allocate, reports whether there is something to read.
package poller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrClosed is what Wait and CheckDeadline return once the Poller is
// closed: net.ErrClosed, as sockfilter.ErrClosed is.
var ErrClosed = net.ErrClosed

// aLongTimeAgo is a deadline in the past, which wakes a blocked wait.
var aLongTimeAgo = time.Unix(1, 0)

// Poller is a descriptor in the runtime poller. Wait and CheckDeadline
// must not be called concurrently with each other; SetReadDeadline,
// WithContext's wake-up and Close may be called from any goroutine.
type Poller struct {
	f      *os.File
	rc     syscall.RawConn
	ready  func(fd uintptr) bool
	always func(fd uintptr) bool
	closed atomic.Bool

	// dlMu guards deadline, the caller's read deadline; ctxFired, set
	// while WithContext has forced the deadline into the past; and timer.
	// state's low bit is set once a deadline may have passed, so that a
	// reader asks the runtime about deadlines only then; its other bits
	// count the deadlines set, so that the timer of an earlier one does
	// nothing. The timer holds state, not the Poller.
	dlMu     sync.Mutex
	deadline time.Time
	ctxFired bool
	timer    *time.Timer
	state    *atomic.Uint64
}

// New takes fd, makes it non-blocking and registers it with the runtime
// poller. The Poller owns fd from then on, also when New fails. Wait
// returns when ready reports true; ready is called with fd.
func New(fd int, name string, ready func() bool) (*Poller, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		return nil, fmt.Errorf("invalid descriptor %d", fd)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Poller{
		f:      f,
		rc:     rc,
		ready:  func(uintptr) bool { return ready() },
		always: func(uintptr) bool { return true },
		state:  new(atomic.Uint64),
	}, nil
}

// Wait blocks until ready reports true, the read deadline passes (the
// error matches os.ErrDeadlineExceeded) or the Poller is closed (ErrClosed).
// It calls ready first, and again each time the descriptor becomes
// readable. It does not allocate.
func (p *Poller) Wait() error {
	return p.err(p.rc.Read(p.ready))
}

// DeadlineArmed reports whether the read deadline may have passed, when a
// reader with something to read must still call CheckDeadline. It is one
// atomic load.
func (p *Poller) DeadlineArmed() bool { return p.state.Load()&1 != 0 }

// CheckDeadline returns an error matching os.ErrDeadlineExceeded if the
// read deadline has passed, ErrClosed if the Poller is closed, else nil.
func (p *Poller) CheckDeadline() error {
	return p.err(p.rc.Read(p.always))
}

func (p *Poller) err(err error) error {
	switch {
	case err == nil:
		return nil
	case p.closed.Load():
		return ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The runtime saw the deadline pass, perhaps before the timer
		// that arms state ran: arm it now, so that later reads with
		// something to read still fail. The bit is a hint, which
		// CheckDeadline confirms with the runtime; setting it in a newer
		// generation costs that read a look, no more.
		for {
			old := p.state.Load()
			if old&1 != 0 || p.state.CompareAndSwap(old, old|1) {
				break
			}
		}
	}
	return err
}

// Closed reports whether Close has been called.
func (p *Poller) Closed() bool { return p.closed.Load() }

// SetReadDeadline sets the time after which Wait and CheckDeadline fail
// with an error matching os.ErrDeadlineExceeded, and wakes a blocked Wait
// if it has passed. The zero time means no deadline.
func (p *Poller) SetReadDeadline(t time.Time) error {
	p.dlMu.Lock()
	defer p.dlMu.Unlock()
	if p.closed.Load() {
		return ErrClosed
	}
	p.deadline = t
	p.arm()
	if p.ctxFired {
		// WithContext is waking its read; it restores t after.
		return nil
	}
	return p.f.SetReadDeadline(t)
}

// arm sets state for p.deadline: armed now if it has passed (or a context
// has ended), else by a timer when it passes. The caller holds dlMu.
func (p *Poller) arm() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	gen := (p.state.Load()>>1 + 1) << 1 // a new generation, unarmed
	d := p.deadline
	switch {
	case p.ctxFired, !d.IsZero() && !time.Now().Before(d):
		p.state.Store(gen | 1)
	case d.IsZero():
		p.state.Store(gen)
	default:
		p.state.Store(gen)
		st := p.state
		p.timer = time.AfterFunc(time.Until(d), func() {
			st.CompareAndSwap(gen, gen|1) // only if no deadline was set since
		})
	}
}

// WithContext runs read, which waits with Wait, so that it returns when
// ctx is done, with an error matching ctx.Err(): it forces the read
// deadline into the past meanwhile, and puts the caller's back afterwards.
// The caller serialises reads.
func (p *Poller) WithContext(ctx context.Context, read func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		p.dlMu.Lock()
		defer p.dlMu.Unlock()
		p.ctxFired = true
		p.state.Store(p.state.Load() | 1)
		p.f.SetReadDeadline(aLongTimeAgo) // fails only once closed
	})
	err := read()
	if stop() {
		return err
	}
	<-fired
	p.dlMu.Lock()
	p.ctxFired = false
	if !p.closed.Load() {
		p.arm()
		p.f.SetReadDeadline(p.deadline) // fails only once closed
	}
	p.dlMu.Unlock()
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return ctx.Err()
	}
	return err
}

// Close closes the descriptor. A blocked Wait returns ErrClosed; Close
// waits for it to have left the descriptor. Close is idempotent.
func (p *Poller) Close() error {
	p.dlMu.Lock()
	if p.closed.Swap(true) {
		p.dlMu.Unlock()
		return nil
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	p.state.Store(p.state.Load() | 1)
	p.dlMu.Unlock()
	return p.f.Close()
}
