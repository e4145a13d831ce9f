package sockfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/purebpf/purebpf/sockfilter/internal/tpacket"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// listenPermHint is what a user lacking privileges needs to hear.
const listenPermHint = "needs CAP_BPF and CAP_NET_RAW (or root)"

// Conn is an AF_PACKET socket bound to one network interface, with an eBPF
// socket filter deciding which frames it receives and how much of each. See
// packet(7) and Documentation/networking/filter.rst.
//
// By default a TPACKET_V3 ring mapped into the process backs the Conn: the
// kernel copies frames into it in batches and NextFrame hands them out in
// place, with no system call while a batch lasts. Where the ring cannot be
// set up, or Config.NoRing asks, each read is a recvmsg(2); the methods
// behave the same either way.
//
// ReadFrame, ReadFrameContext, NextFrame, NextFrames and NextFrameContext
// may be called from several goroutines; they take turns. Every method may
// be called concurrently with Close; once the Conn is closed, all but Close
// and the accessors (Interface, Ifindex, LinkType, Ring) return an error
// matching ErrClosed.
type Conn struct {
	ifname  string
	ifindex int
	link    packet.LinkType

	f  *os.File // owns the socket's file descriptor
	rc syscall.RawConn

	// ring reads frames if a ring backs the Conn, rec otherwise, and
	// ringErr says why no ring does. ringCleanup unmaps the ring once the Conn is
	// unreachable, if Close has not.
	ring        *tpacket.Reader
	rec         *tpacket.RecvmsgReader
	ringErr     error
	ringCleanup runtime.Cleanup
	promisc     bool

	// closed is set, under dlMu, by Close.
	closed atomic.Bool

	// readMu serialises reads: the reader's buffers and its place in the
	// ring belong to the Conn, not to a call. Close takes it to wait for
	// reads to end.
	readMu sync.Mutex

	// dlMu guards deadline, the read deadline the caller set, ctxFired,
	// set while a Context read has forced the deadline into the past
	// because its context ended, and dlTimer. dlState's low bit is set
	// once either may fail a read — by SetReadDeadline for a deadline
	// already past, by dlTimer when a future one passes — so that a ring
	// read asks the poller about deadlines only then, not for every frame;
	// its other bits count the deadlines set, so that the timer of an
	// earlier one does nothing. It is allocated apart from the Conn: the
	// timer holds it and not the Conn, which stays collectable.
	dlMu     sync.Mutex
	deadline time.Time
	ctxFired bool
	dlTimer  *time.Timer
	dlState  *atomic.Uint64

	// statsMu guards stats, the running totals of the kernel's counters,
	// which reset whenever they are read.
	statsMu sync.Mutex
	stats   Stats
}

// Listen opens an AF_PACKET socket on the interface named ifname, attaches
// prog to it as its socket filter, and returns it ready to read frames. A
// nil cfg gives the defaults.
//
// No frame slips past the filter, and none is lost while the ring is set
// up: the socket is opened with protocol 0, so the kernel queues nothing
// for it; the filter is attached (SO_ATTACH_BPF, Linux 3.19); the
// TPACKET_V3 ring is made (PACKET_VERSION, PACKET_RX_RING) and mapped
// (mmap(2)); only then is the socket bound to the interface with ETH_P_ALL,
// from which moment every frame goes through prog into the ring. See
// packet(7), socket(7) and Documentation/networking/packet_mmap.rst. If
// the kernel refuses the ring or it cannot be mapped (for want of memory,
// say), Listen goes on without it, reading with recvmsg(2); Conn.Ring
// tells.
//
// The kernel holds its own reference to prog, so the caller may close prog
// once Listen returns. Listening needs CAP_NET_RAW (and loading prog
// needed CAP_BPF); without it the error matches unix.EPERM and says so. A
// missing interface gives an error naming it that matches unix.ENODEV. An
// interface whose link-layer type is neither Ethernet-like nor raw IP (see
// LinkType) is refused, as is one that is down, and so are ring sizes
// Config does not allow.
func Listen(ifname string, prog *Program, cfg *Config) (*Conn, error) {
	c, err := listen(ifname, prog, cfg)
	if err != nil {
		return nil, fmt.Errorf("listen on interface %q: %w", ifname, err)
	}
	return c, nil
}

func listen(ifname string, prog *Program, cfg *Config) (*Conn, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	geom, err := checkListen(ifname, prog, cfg)
	if err != nil {
		return nil, err
	}
	s := &listener{ifname: ifname, cfg: cfg, fd: -1}
	c, err := s.listen(prog, geom)
	if err != nil {
		s.cleanup()
		return nil, err
	}
	return c, nil
}

// checkListen checks Listen's arguments and returns the ring's shape.
func checkListen(ifname string, prog *Program, cfg *Config) (tpacket.Geometry, error) {
	switch {
	case prog == nil:
		return tpacket.Geometry{}, errors.New("program is nil")
	case ifname == "":
		return tpacket.Geometry{}, errors.New("interface name is empty")
	case len(ifname) >= unix.IFNAMSIZ:
		return tpacket.Geometry{}, fmt.Errorf("interface name is longer than %d bytes", unix.IFNAMSIZ-1)
	case cfg.ReceiveBuffer < 0:
		return tpacket.Geometry{}, fmt.Errorf("receive buffer size %d is negative", cfg.ReceiveBuffer)
	}
	blockSize, blockCount := cfg.RingBlockSize, cfg.RingBlockCount
	if blockSize == 0 {
		blockSize = DefaultRingBlockSize
	}
	if blockCount == 0 {
		blockCount = DefaultRingBlockCount
	}
	return tpacket.NewGeometry(blockSize, blockCount, cfg.RingBlockTimeout)
}

// listener is a Listen in progress: the socket and ring made so far, which
// cleanup releases if Listen fails.
type listener struct {
	ifname  string
	cfg     *Config
	fd      int // -1 once the Conn owns it
	ifindex int
	link    packet.LinkType
	ring    *tpacket.Mapping // nil without a ring, or once the Conn owns it
	ringErr error
}

// listen makes the Conn, in the order that lets no frame past the filter:
// open, attach, configure, ring, bind.
func (s *listener) listen(prog *Program, geom tpacket.Geometry) (*Conn, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	err := prog.use("attach program", func(progFD int) error {
		if err := attachProgram(s.fd, progFD); err != nil {
			return fmt.Errorf("attach program: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.configure(); err != nil {
		return nil, err
	}
	if err := s.setupRing(geom); err != nil {
		return nil, err
	}
	if err := s.bind(); err != nil {
		return nil, err
	}
	return s.conn(geom)
}

// open opens the socket with protocol 0, so that until bind names a
// protocol it receives nothing, and looks up the interface through it.
func (s *listener) open() error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		err = os.NewSyscallError("socket", err)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return fmt.Errorf("open AF_PACKET socket: %s: %w", listenPermHint, err)
		}
		return fmt.Errorf("open AF_PACKET socket: %w", err)
	}
	s.fd = fd
	s.ifindex, s.link, err = interfaceInfo(fd, s.ifname)
	return err
}

// configure sets the socket options Config asks for.
func (s *listener) configure() error {
	fd, cfg := s.fd, s.cfg
	if !cfg.Outgoing {
		// Two ways keep outgoing frames away: PACKET_IGNORE_OUTGOING, or a
		// filter that tests skb->pkt_type. The socket option wins. With it,
		// dev_queue_xmit_nit skips this socket before cloning the frame or
		// running any filter, so an outgoing frame costs nothing; a pkt_type
		// test would clone and run a program on each one just to drop it.
		// It also leaves the caller's program untouched: we hold only its
		// fd, so a pkt_type test would mean loading a second, rewritten
		// program per Listen and per SetProgram, and Program.Test would no
		// longer predict what the Conn sees.
		err := setsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING")
		if errors.Is(err, unix.ENOPROTOOPT) {
			return fmt.Errorf("%w: incoming-only capture needs Linux 4.20; set Config.Outgoing to see both directions", err)
		}
		if err != nil {
			return err
		}
	}
	if cfg.ReceiveBuffer > 0 {
		if err := setReceiveBuffer(fd, cfg.ReceiveBuffer); err != nil {
			return err
		}
	}
	if cfg.Promiscuous {
		mreq := unix.PacketMreq{Ifindex: int32(s.ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fmt.Errorf("enter promiscuous mode: %w", os.NewSyscallError("setsockopt PACKET_ADD_MEMBERSHIP", err))
		}
	}
	return nil
}

// setupRing makes the ring before bind, so that no frame is lost to its
// setup (as libpcap does since libpcap#843), or readies the socket for
// recvmsg(2) where there is to be none.
func (s *listener) setupRing(geom tpacket.Geometry) error {
	if !s.cfg.NoRing {
		var err error
		s.ring, err = tpacket.Setup(s.fd, geom)
		if errors.Is(err, tpacket.ErrTeardown) {
			return fmt.Errorf("set up ring: %w", err)
		}
		s.ringErr = err
	}
	if s.ring != nil {
		return nil
	}
	// recvmsg(2) gets the timestamp and the VLAN tag as control messages;
	// a ring has them in each frame's header.
	if err := setsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS"); err != nil {
		return err
	}
	return setsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1, "PACKET_AUXDATA")
}

// bind binds the socket to the interface with ETH_P_ALL: from here on
// frames arrive, each through the filter.
func (s *listener) bind() error {
	sa := unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: s.ifindex}
	if err := unix.Bind(s.fd, &sa); err != nil {
		return fmt.Errorf("bind: %w", os.NewSyscallError("bind", err))
	}
	// Binding to a device that is down succeeds but leaves ENETDOWN as the
	// socket's pending error, which the first read would return.
	soErr, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		return os.NewSyscallError("getsockopt SO_ERROR", err)
	case syscall.Errno(soErr) == unix.ENETDOWN:
		return fmt.Errorf("bind: %w; bring it up with `ip link set %s up`", syscall.Errno(soErr), s.ifname)
	case soErr != 0:
		return fmt.Errorf("bind: %w", syscall.Errno(soErr))
	}
	return nil
}

// conn hands the socket and ring over to a new Conn.
func (s *listener) conn(geom tpacket.Geometry) (*Conn, error) {
	f := os.NewFile(uintptr(s.fd), "packet:"+s.ifname)
	if f == nil {
		return nil, fmt.Errorf("invalid socket descriptor %d", s.fd)
	}
	s.fd = -1 // f owns it now
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("raw conn: %w", err)
	}
	c := &Conn{
		ifname:  s.ifname,
		ifindex: s.ifindex,
		link:    s.link,
		f:       f,
		rc:      rc,
		ringErr: s.ringErr,
		promisc: s.cfg.Promiscuous,
		dlState: new(atomic.Uint64),
	}
	if s.ring != nil {
		c.ring = tpacket.NewReader(rc, s.ring, geom)
		c.ringCleanup = runtime.AddCleanup(c, (*tpacket.Mapping).Unmap, s.ring)
		s.ring = nil
	} else {
		c.rec = tpacket.NewRecvmsgReader(rc)
	}
	return c, nil
}

// cleanup releases what a failed Listen made.
func (s *listener) cleanup() {
	if s.ring != nil {
		s.ring.Unmap()
	}
	if s.fd >= 0 {
		unix.Close(s.fd)
	}
}

// attachProgram attaches the socket filter progFD to the socket fd,
// replacing any filter already there (SO_ATTACH_BPF, socket(7)).
func attachProgram(fd, progFD int) error {
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, progFD)
	if err != nil {
		err = os.NewSyscallError("setsockopt SO_ATTACH_BPF", err)
		switch {
		case errors.Is(err, unix.EPERM):
			return fmt.Errorf("%w: the filter is locked (SO_LOCK_FILTER)", err)
		case errors.Is(err, unix.EINVAL):
			return fmt.Errorf("%w: not a socket filter program", err)
		}
		return err
	}
	return nil
}

// setReceiveBuffer sets SO_RCVBUFFORCE, which may exceed net.core.rmem_max
// but needs CAP_NET_ADMIN, and falls back to SO_RCVBUF without it.
func setReceiveBuffer(fd, size int) error {
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
	if errors.Is(err, unix.EPERM) {
		return setsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size, "SO_RCVBUF")
	}
	if err != nil {
		return os.NewSyscallError("setsockopt SO_RCVBUFFORCE", err)
	}
	return nil
}

// setsockoptInt wraps setsockopt(2) for an int option named name.
func setsockoptInt(fd, level, opt, value int, name string) error {
	if err := unix.SetsockoptInt(fd, level, opt, value); err != nil {
		return os.NewSyscallError("setsockopt "+name, err)
	}
	return nil
}

// quiescentProto is the ethertype Close binds a socket to so that it
// receives nothing more; see quiesce.
const quiescentProto = 0x05ff

// htons converts v to network byte order, as sll_protocol wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// Interface returns the name of the interface the Conn is bound to.
func (c *Conn) Interface() string { return c.ifname }

// Ifindex returns the index of the interface the Conn is bound to.
func (c *Conn) Ifindex() int { return c.ifindex }

// LinkType returns the kind of link-layer header the Conn's frames start
// with, from the interface's device type.
func (c *Conn) LinkType() packet.LinkType { return c.link }

// Ring reports whether a TPACKET_V3 ring backs the Conn, and if not
// because Listen failed to set one up (rather than because Config.NoRing
// asked for none), the error that kept it from doing so.
func (c *Conn) Ring() (bool, error) {
	return c.ring != nil, c.ringErr
}

// Close closes the socket. A read blocked on the Conn returns an error
// matching ErrClosed (and net.ErrClosed). Close waits for reads in progress
// to return, so that none touches the ring after it is gone. Close is
// idempotent: later calls return nil.
//
// A frame that NextFrame returned must not be used after Close. Close
// unmaps the ring at once if NextFrame never handed out a frame from it;
// otherwise a frame may still be in a caller's hands (another goroutine's,
// say), so Close unbinds the socket, after which the kernel writes nothing
// more into the ring, and leaves the ring mapped, its bytes as they were,
// until the Conn is garbage collected: a frame used after Close is then
// wrong but never faults, as long as the Conn is reachable.
//
// Closing a packet socket takes the kernel about 10 ms: it waits for an RCU
// grace period so that no frame is still on its way to the socket
// (packet_release, synchronize_net).
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
	var qerr error
	if c.ring != nil {
		if !c.ring.Lent() {
			c.ringCleanup.Stop()
			c.ring.Mapping().Unmap()
		} else {
			qerr = c.quiesce()
		}
	}
	if err := c.f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if qerr != nil {
		return fmt.Errorf("close: %w", qerr)
	}
	return nil
}

// quiesce stops the socket from receiving, though its ring stays mapped,
// and drops promiscuous mode. bind(2) with protocol 0 would keep the
// current protocol (packet_bind), so the socket is bound instead to
// ethertype 0x05ff, the top of the 802.3 length range, which the kernel
// never gives a frame as its protocol (eth_type_trans maps lengths to
// ETH_P_802_3 or ETH_P_802_2). That takes it off the ETH_P_ALL list, which
// also sees outgoing frames; packet_do_bind waits for frames on their way.
func (c *Conn) quiesce() error {
	var ferr error
	err := c.rc.Control(func(fd uintptr) {
		sa := unix.SockaddrLinklayer{Protocol: htons(quiescentProto), Ifindex: c.ifindex}
		if err := unix.Bind(int(fd), &sa); err != nil {
			ferr = os.NewSyscallError("bind", err)
			return
		}
		if c.promisc {
			mreq := unix.PacketMreq{Ifindex: int32(c.ifindex), Type: unix.PACKET_MR_PROMISC}
			if err := unix.SetsockoptPacketMreq(int(fd), unix.SOL_PACKET, unix.PACKET_DROP_MEMBERSHIP, &mreq); err != nil {
				ferr = os.NewSyscallError("setsockopt PACKET_DROP_MEMBERSHIP", err)
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
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
