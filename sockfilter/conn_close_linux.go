package sockfilter

import (
	"fmt"
	"os"

	"github.com/purebpf/purebpf/sockfilter/internal/tpacket"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// Interface returns the name of the interface the Conn is bound to, or
// AnyInterface.
func (c *Conn) Interface() string { return c.ifname }

// Ifindex returns the index of the interface the Conn is bound to, or 0
// for AnyInterface.
func (c *Conn) Ifindex() int { return c.ifindex }

// LinkType returns the kind of link-layer header the Conn's frames start
// with, from the interface's device type; packet.LinkLinuxSLL2 for
// AnyInterface.
func (c *Conn) LinkType() packet.LinkType { return c.link }

// Ring reports whether a TPACKET_V3 ring backs the Conn, and if not
// because Listen failed to set one up (rather than because Config.NoRing
// asked for none), the error that kept it from doing so.
func (c *Conn) Ring() (bool, error) {
	return c.ring != nil, c.ringErr
}

// Close closes the socket and gives the kernel back the ring's memory
// before it returns. A read blocked on the Conn returns an error matching
// ErrClosed (and net.ErrClosed). Close waits for reads in progress to
// return, so that none touches the ring as it goes. Close is idempotent:
// later calls return nil.
//
// Frames the Conn handed out stay readable: see NextFrame for how long
// and with what bytes. Close replaces the ring's pages with private memory
// (mremap(2), or mmap(2) MAP_FIXED), copying in the blocks it lent frames
// from, before it closes the socket; a Conn dropped without Close is
// released the same way once the garbage collector finds it unreachable.
//
// Closing a packet socket with a ring takes the kernel two RCU grace
// periods, about 10 ms each on an idle machine: it waits for frames still
// on their way to the socket before freeing the ring and again before
// freeing the socket (packet_release, synchronize_net).
func (c *Conn) Close() error {
	c.dlMu.Lock()
	if c.closed.Load() {
		c.dlMu.Unlock()
		return nil
	}
	c.closed.Store(true)
	// Wake a blocked read; no deadline can be set from now on.
	c.f.SetReadDeadline(aLongTimeAgo)
	c.armNow()
	if c.dlTimer != nil {
		c.dlTimer.Stop()
	}
	c.dlMu.Unlock()

	// Reads in progress return; later ones see closed and touch nothing.
	c.readMu.Lock()
	defer c.readMu.Unlock()
	var rerr error
	if c.ring != nil {
		c.cleanup.Stop()
		rerr = c.ring.Retire()
	}
	if err := c.f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("close: %w", rerr)
	}
	return nil
}

// connRelease is what the cleanup of an unreachable Conn with a ring
// releases, as Close would: the ring, then the socket. The os.File would
// close the socket on its own once unreachable, but the socket could not
// release its ring while the ring is mapped.
type connRelease struct {
	ring *tpacket.Reader
	f    *os.File
}

func (r *connRelease) release() {
	r.ring.Retire() // an error leaves the ring's memory quarantined; nothing to tell
	r.f.Close()
}

// control runs fn on the socket's descriptor, holding it open meanwhile, and
// wraps what it returns with op. On a closed Conn it returns ErrClosed.
func (c *Conn) control(op string, fn func(fd int) error) error {
	var ferr error
	err := c.rc.Control(func(fd uintptr) { ferr = fn(int(fd)) })
	switch {
	case err != nil && c.closed.Load():
		return fmt.Errorf("%s: %w", op, ErrClosed)
	case err != nil:
		return fmt.Errorf("%s: %w", op, err)
	case ferr != nil:
		return fmt.Errorf("%s: %w", op, ferr)
	}
	return nil
}

// interfaceError turns the ENETDOWN a read met into an error saying what
// became of the interface: down, from which reads resume once it is up
// again (packet_notifier hooks the socket back in on NETDEV_UP), or gone,
// from which they cannot (the socket is bound to an interface index no
// device will have again), so that every later read returns the error
// once the frames already queued are read. The caller holds readMu.
func (c *Conn) interfaceError(err error) error {
	if c.ifindex == 0 {
		return fmt.Errorf("read frame: %w", err) // AnyInterface: no one interface to blame
	}
	if !c.interfaceGone(true) {
		c.ifDown = true
		return fmt.Errorf("read frame: interface %q went down (reads resume once it is up again): %w", c.ifname, err)
	}
	c.stopReads()
	return c.gone
}

// checkGone, for a Conn whose interface went down, finds out before a read
// waits whether it has been deleted since: the kernel tells a socket whose
// interface is already down nothing when it goes. The caller holds readMu.
func (c *Conn) checkGone() {
	if c.gone == nil && c.interfaceGone(false) {
		c.stopReads()
	}
}

// stopReads makes reads return c.gone, once the frames queued are read,
// instead of waiting.
func (c *Conn) stopReads() {
	c.gone = fmt.Errorf("read frame: interface %q went away (reads cannot resume; listen again once it is back): %w", c.ifname, unix.ENODEV)
	if c.ring != nil {
		c.ring.Stop(c.gone)
	} else {
		c.rec.Stop(c.gone)
	}
}

// interfaceGone reports whether the Conn's interface has been deleted:
// packet_notifier sets the socket's interface index to -1 when its device
// is unregistered, which getsockname(2) shows. A deletion takes the device
// down first and unregisters it later in the same RTNL critical section;
// with settle, interfaceGone first waits for that section to end, with an
// ethtool request (SIOCETHTOOL ETHTOOL_GDRVINFO, netdevice(7)) that takes
// the RTNL lock.
func (c *Conn) interfaceGone(settle bool) bool {
	ifindex := c.ifindex
	c.rc.Control(func(fd uintptr) {
		if settle {
			unix.IoctlGetEthtoolDrvinfo(int(fd), c.ifname) // only to wait: any answer will do
		}
		sa, err := unix.Getsockname(int(fd))
		if ll, ok := sa.(*unix.SockaddrLinklayer); ok && err == nil {
			ifindex = ll.Ifindex
		}
	})
	return ifindex != c.ifindex
}
