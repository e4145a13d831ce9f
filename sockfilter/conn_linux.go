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

// Conn is an AF_PACKET socket bound to one network interface, or to all of
// them (see AnyInterface), with an eBPF socket filter deciding which frames
// it receives and how much of each. See packet(7) and
// Documentation/networking/filter.rst.
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
	// ringErr says why no ring does. cleanup releases the ring and the
	// socket once the Conn is unreachable, if Close has not.
	ring    *tpacket.Reader
	rec     *tpacket.RecvmsgReader
	ringErr error
	cleanup runtime.Cleanup

	// ifDown is set, under readMu, once a read has found the interface
	// down, and cleared by the next frame; gone is the error reads return
	// once it is gone.
	ifDown bool
	gone   error

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

// Listen opens an AF_PACKET socket on the interface named ifname (or on all,
// for AnyInterface), attaches prog to it as its socket filter, and returns
// it ready to read frames. A nil cfg gives the defaults.
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
// once Listen returns. Listening needs CAP_NET_RAW; without it the error
// matches unix.EPERM and says so. A missing interface gives an error naming
// it that matches unix.ENODEV. An interface whose link-layer type is
// neither Ethernet-like nor raw IP (see LinkType) is refused, as is one
// that is down, a name with a NUL byte, and ring and buffer sizes Config
// does not allow.
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
	s := &listener{ifname: ifname, cfg: cfg, fd: -1, any: ifname == AnyInterface}
	c, err := s.listen(prog, geom)
	if err != nil {
		s.cleanup()
		return nil, err
	}
	return c, nil
}

// checkListen checks Listen's arguments and returns the ring's shape.
func checkListen(ifname string, prog *Program, cfg *Config) (tpacket.Geometry, error) {
	var g tpacket.Geometry
	if err := checkInterfaceName(ifname); err != nil {
		return g, err
	}
	switch {
	case prog == nil:
		return g, errors.New("program is nil")
	case cfg.ReceiveBuffer < 0:
		return g, fmt.Errorf("receive buffer size %d is negative", cfg.ReceiveBuffer)
	case cfg.ReceiveBuffer > MaxReceiveBuffer:
		return g, fmt.Errorf("receive buffer size %d is more than the kernel takes, %d bytes (INT_MAX/2, which it doubles)", cfg.ReceiveBuffer, MaxReceiveBuffer)
	case cfg.Direction > DirectionOut:
		return g, fmt.Errorf("unknown direction %d: want DirectionInOut, DirectionIn or DirectionOut", cfg.Direction)
	case cfg.LoopbackOutgoing && cfg.Direction != DirectionInOut:
		return g, fmt.Errorf("Config.LoopbackOutgoing applies to DirectionInOut, not %v", cfg.Direction)
	case cfg.Promiscuous && ifname == AnyInterface:
		return g, errors.New("promiscuous mode needs an interface, not all of them; listen without Config.Promiscuous")
	}
	memTotal, err := tpacket.MemTotal()
	if err != nil {
		return g, err
	}
	return tpacket.NewGeometry(cfg.RingBlockSize, cfg.RingBlockCount, cfg.RingBlockTimeout, memTotal)
}

// listener is a Listen in progress: the socket and ring made so far, which
// cleanup releases if Listen fails.
type listener struct {
	ifname  string
	cfg     *Config
	any     bool // ifname is AnyInterface
	fd      int  // -1 once the Conn owns it
	ifindex int
	hatype  uint16 // the device type (ARPHRD_*); 0 for AnyInterface
	link    packet.LinkType
	skip    tpacket.Skip     // the frames the reader drops
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
// protocol it receives nothing, and looks up the interface through it. For
// AnyInterface the socket is SOCK_DGRAM, as libpcap's "any" device is: the
// devices' link-layer headers differ, and the Conn's cooked header stands
// in for them.
func (s *listener) open() error {
	typ := unix.SOCK_RAW
	if s.any {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_PACKET, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		err = os.NewSyscallError("socket", err)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return fmt.Errorf("open AF_PACKET socket: %s: %w", listenPermHint(), err)
		}
		return fmt.Errorf("open AF_PACKET socket: %w", err)
	}
	s.fd = fd
	if s.any {
		s.link = packet.LinkLinuxSLL2
		return nil
	}
	s.ifindex, s.hatype, err = interfaceInfo(fd, s.ifname)
	if err != nil {
		return err
	}
	s.link, err = linkTypeFromARPHRD(s.hatype)
	return err
}

// configure sets the socket options Config asks for.
func (s *listener) configure() error {
	fd, cfg := s.fd, s.cfg
	if err := s.configureDirection(); err != nil {
		return err
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

// configureDirection keeps away the frames Config.Direction does not ask
// for: in the kernel where a socket option can (see Direction), otherwise
// by having the reader skip them.
//
// For outgoing frames there are two ways to do it in the kernel:
// PACKET_IGNORE_OUTGOING, or a filter that tests skb->pkt_type. The socket
// option wins. With it, dev_queue_xmit_nit skips this socket before cloning
// the frame or running any filter, so an outgoing frame costs nothing; a
// pkt_type test would clone and run a program on each one just to drop it.
// It also leaves the caller's program untouched: we hold only its fd, so a
// pkt_type test would mean loading a second, rewritten program per Listen
// and per SetProgram (which needs CAP_BPF where Listen needs only
// CAP_NET_RAW, and the program's license and maps again), and Program.Test
// would no longer predict what the Conn sees. For incoming frames, which no
// socket option keeps away, the same reasons make the reader skip them
// rather than rewrite the program: a caller who wants them dropped in the
// kernel can test pkt_type in the filter.
func (s *listener) configureDirection() error {
	loopback := s.hatype == unix.ARPHRD_LOOPBACK
	var ignoreOutgoing bool
	switch s.cfg.Direction {
	case DirectionIn:
		ignoreOutgoing = true
	case DirectionOut:
		s.skip = tpacket.SkipIncoming
	case DirectionInOut:
		switch {
		case s.cfg.LoopbackOutgoing:
			// Every copy, as the kernel gives them.
		case s.any:
			// The option would drop every device's sent frames, not just
			// the loopback devices' copies.
			s.skip = tpacket.SkipLoopbackOutgoing
		case loopback:
			ignoreOutgoing = true
		}
	}
	if !ignoreOutgoing {
		return nil
	}
	err := setsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING")
	if errors.Is(err, unix.ENOPROTOOPT) {
		// Before Linux 4.20: read the sent frames and skip them.
		s.skip |= tpacket.SkipOutgoing
		return nil
	}
	return err
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

// bind binds the socket to the interface (to none, for AnyInterface) with
// ETH_P_ALL: from here on frames arrive, each through the filter.
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
		dlState: new(atomic.Uint64),
	}
	opts := tpacket.Options{Skip: s.skip, Cooked: s.any}
	if s.ring == nil {
		c.rec = tpacket.NewRecvmsgReader(rc, opts)
		return c, nil
	}
	c.ring = tpacket.NewReader(rc, s.ring, geom, opts)
	s.ring = nil
	// rel, not c: the cleanup must not keep the Conn reachable.
	rel := &connRelease{ring: c.ring, f: f}
	c.cleanup = runtime.AddCleanup(c, (*connRelease).release, rel)
	return c, nil
}

// cleanup releases what a failed Listen made.
func (s *listener) cleanup() {
	if s.ring != nil {
		s.ring.Retire(0, nil)
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

// htons converts v to network byte order, as sll_protocol wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
