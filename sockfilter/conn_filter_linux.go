package sockfilter

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SetProgram replaces the Conn's socket filter with prog (SO_ATTACH_BPF on
// the live socket; socket(7)). The swap is atomic: each frame meets either
// the old filter or the new one, never none. As with Listen, the kernel
// keeps its own reference to prog.
//
// After LockFilter, SetProgram fails with an error matching unix.EPERM.
// While the interface is down it succeeds, and the program filters once it
// is up again; once the interface is gone, SetProgram fails with an error
// matching unix.ENODEV.
func (c *Conn) SetProgram(prog *Program) error {
	if prog == nil {
		return errors.New("set program: program is nil")
	}
	if c.ifindex != 0 && !c.closed.Load() && c.interfaceGone(false) {
		return fmt.Errorf("set program: interface %q went away: %w", c.ifname, unix.ENODEV)
	}
	return prog.use("set program", func(progFD int) error {
		return c.control("set program", func(fd int) error {
			return attachProgram(fd, progFD)
		})
	})
}

// Detach removes the Conn's socket filter (SO_DETACH_BPF; socket(7)), after
// which the Conn receives every frame on the interface, whole. Without a
// filter attached it fails with an error matching unix.ENOENT; after LockFilter,
// with one matching unix.EPERM.
func (c *Conn) Detach() error {
	return c.control("detach program", func(fd int) error {
		// The option value is ignored, but the kernel wants an int.
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_BPF, 0)
		if err == nil {
			return nil
		}
		err = os.NewSyscallError("setsockopt SO_DETACH_BPF", err)
		switch {
		case errors.Is(err, unix.EPERM):
			return fmt.Errorf("%w: the filter is locked (SO_LOCK_FILTER)", err)
		case errors.Is(err, unix.ENOENT):
			return fmt.Errorf("%w: no filter attached", err)
		}
		return err
	})
}

// LockFilter locks the Conn's socket filter (SO_LOCK_FILTER, Linux 3.9;
// socket(7)): from then on neither SetProgram nor Detach can change it, and
// both fail with an error matching unix.EPERM. A locked filter cannot be
// unlocked. Locking before handing the Conn to less trusted code keeps that
// code from widening what the socket sees.
func (c *Conn) LockFilter() error {
	return c.control("lock filter", func(fd int) error {
		return setsockoptInt(fd, unix.SOL_SOCKET, unix.SO_LOCK_FILTER, 1, "SO_LOCK_FILTER")
	})
}

// Stats returns the Conn's frame counters: totals since Listen, not since
// the last call.
//
// It wraps getsockopt(2) PACKET_STATISTICS (packet(7)), which gives a
// struct tpacket_stats_v3 with a TPACKET_V3 ring and a struct
// tpacket_stats without. The kernel resets its counters to zero each time
// they are read, and counts in tp_packets the accepted frames, queued or
// dropped; Stats adds each reading into running totals kept in the Conn,
// and splits tp_packets into Received and Drops, so that Received+Drops is
// the number of frames the filter accepted. Frames the filter rejected are
// not counted at all. With DirectionOut, Received also counts the
// incoming frames the filter accepted, which the Conn reads and skips (see
// Direction). Stats works on a Conn whose interface went down or away,
// with the counts up to then.
func (c *Conn) Stats() (Stats, error) {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	var packets, drops, freezes uint32
	err := c.control("read statistics", func(fd int) error {
		if c.ring != nil {
			ts, err := unix.GetsockoptTpacketStatsV3(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
			if err != nil {
				return os.NewSyscallError("getsockopt PACKET_STATISTICS", err)
			}
			packets, drops, freezes = ts.Packets, ts.Drops, ts.Freeze_q_cnt
			return nil
		}
		ts, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			return os.NewSyscallError("getsockopt PACKET_STATISTICS", err)
		}
		packets, drops = ts.Packets, ts.Drops
		return nil
	})
	if err != nil {
		return Stats{}, err
	}
	// tp_packets includes the drops (af_packet.c adds them when read).
	received := uint64(packets)
	if received >= uint64(drops) {
		received -= uint64(drops)
	} else {
		received = 0
	}
	c.stats.Received += received
	c.stats.Drops += uint64(drops)
	c.stats.Freezes += uint64(freezes)
	return c.stats, nil
}
