package sockfilter

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/sockfilter/internal/kparse"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// ksocket is the packet socket of a RecordConn or a FlowConn: bound to an
// interface with a program attached that returns 0 for every frame, so it
// queues nothing and needs no ring. It is made in Listen's order, so that
// no frame passes the program unseen: opened with protocol 0, the program
// attached, options set, then bound with ETH_P_ALL.
type ksocket struct {
	ifname  string
	ifindex int
	hatype  uint16 // the device type, ARPHRD_*
	link    packet.LinkType
	f       *os.File
	rc      syscall.RawConn
}

// openKSocket opens the socket and looks up the interface, whose link
// type the program must be made for.
func openKSocket(ifname string) (*ksocket, int, error) {
	if err := checkInterfaceName(ifname); err != nil {
		return nil, -1, err
	}
	if ifname == AnyInterface {
		// The any interface gives each frame from its network header, of
		// whatever link it came from: the parser reads link-layer headers.
		return nil, -1, fmt.Errorf("the %q interface is not supported: records and flows are built from frames with their link-layer headers; listen on each interface", AnyInterface)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		err = os.NewSyscallError("socket", err)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, -1, fmt.Errorf("open AF_PACKET socket: %s: %w", listenPermHint(), err)
		}
		return nil, -1, fmt.Errorf("open AF_PACKET socket: %w", err)
	}
	s := &ksocket{ifname: ifname}
	if s.ifindex, s.hatype, err = interfaceInfo(fd, ifname); err == nil {
		s.link, err = linkTypeFromARPHRD(s.hatype)
	}
	if err != nil {
		unix.Close(fd)
		return nil, -1, err
	}
	return s, fd, nil
}

// direction checks a direction and says how the socket keeps away the
// frames it is not to see, as Listen does (see Direction): with
// PACKET_IGNORE_OUTGOING where Listen uses it, and otherwise, where
// Listen's reader skips frames, by the program, which the skip bits say.
func (s *ksocket) direction(d Direction, loopbackOutgoing bool) (ignoreOutgoing bool, skip kparse.Skip, err error) {
	switch {
	case d > DirectionOut:
		return false, 0, fmt.Errorf("unknown direction %d: want DirectionInOut, DirectionIn or DirectionOut", d)
	case loopbackOutgoing && d != DirectionInOut:
		return false, 0, fmt.Errorf("LoopbackOutgoing applies to DirectionInOut, not %v", d)
	}
	switch d {
	case DirectionIn:
		return true, 0, nil
	case DirectionOut:
		return false, kparse.SkipIncoming, nil
	}
	return s.hatype == unix.ARPHRD_LOOPBACK && !loopbackOutgoing, 0, nil
}

// configureDirection keeps away from the socket fd the frames d does not
// ask for, and returns what the program must drop itself: the frames this
// host sends with PACKET_IGNORE_OUTGOING (Linux 4.20), or with the program
// where the kernel lacks the option, and the frames it receives with the
// program.
func (s *ksocket) configureDirection(fd int, d Direction, loopbackOutgoing bool) (kparse.Skip, error) {
	ignore, skip, err := s.direction(d, loopbackOutgoing)
	if err != nil || !ignore {
		return skip, err
	}
	err = setsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING")
	if errors.Is(err, unix.ENOPROTOOPT) {
		return skip | kparse.SkipOutgoing, nil
	}
	return skip, err
}

// start attaches prog to fd, sets the options, binds, and hands fd to s.
// fd is closed if start fails.
func (s *ksocket) start(fd int, prog *Program, promisc bool) error {
	err := func() error {
		err := prog.use("attach program", func(progFD int) error {
			if err := attachProgram(fd, progFD); err != nil {
				return fmt.Errorf("attach program: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if promisc {
			mreq := unix.PacketMreq{Ifindex: int32(s.ifindex), Type: unix.PACKET_MR_PROMISC}
			if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
				return fmt.Errorf("enter promiscuous mode: %w", os.NewSyscallError("setsockopt PACKET_ADD_MEMBERSHIP", err))
			}
		}
		sa := unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: s.ifindex}
		if err := unix.Bind(fd, &sa); err != nil {
			return fmt.Errorf("bind: %w", os.NewSyscallError("bind", err))
		}
		soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			return os.NewSyscallError("getsockopt SO_ERROR", err)
		case syscall.Errno(soErr) == unix.ENETDOWN:
			return fmt.Errorf("bind: %w; bring it up with `ip link set %s up`", syscall.Errno(soErr), s.ifname)
		case soErr != 0:
			return fmt.Errorf("bind: %w", syscall.Errno(soErr))
		}
		return nil
	}()
	if err != nil {
		unix.Close(fd)
		return err
	}
	s.f = os.NewFile(uintptr(fd), "packet:"+s.ifname)
	if s.rc, err = s.f.SyscallConn(); err != nil {
		s.f.Close()
		return fmt.Errorf("raw conn: %w", err)
	}
	return nil
}

// stats reads the socket's PACKET_STATISTICS (struct tpacket_stats, as a
// socket without a ring has), which reset on read, into st.
func (s *ksocket) stats(st *Stats) error {
	var ferr error
	err := s.rc.Control(func(fd uintptr) {
		ts, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			ferr = os.NewSyscallError("getsockopt PACKET_STATISTICS", err)
			return
		}
		received := uint64(ts.Packets) - min(uint64(ts.Packets), uint64(ts.Drops))
		st.Received += received
		st.Drops += uint64(ts.Drops)
	})
	if err != nil {
		return err
	}
	return ferr
}

// close closes the socket (packet_release waits for an RCU grace period,
// about 10 ms, so that no frame is still on its way to it).
func (s *ksocket) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
