package sockfilter

import (
	"os"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"golang.org/x/sys/unix"
)

// BenchmarkListenClose measures a Listen and a Close of a Conn on lo with
// the default ring, beside the floor: the same socket set up and torn down
// with raw system calls (socket, SO_ATTACH_BPF, PACKET_IGNORE_OUTGOING,
// PACKET_VERSION, PACKET_RX_RING, mmap, bind, munmap, close), in the same
// run. Both are dominated by the kernel: zeroing the 32 MiB ring, and the
// two RCU grace periods close(2) waits for.
func BenchmarkListenClose(b *testing.B) {
	testutil.RequirePrivileged(b)
	prog := connLoad(b, connAcceptAll)
	ifindex := loIndex(b)
	b.Run("Listen", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := Listen("lo", prog, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// With a frame read in place before Close: Close then copies the
	// block it lent into the ring's replacement (the raw floor reads none;
	// reading one costs microseconds).
	b.Run("Listen+NextFrame", func(b *testing.B) {
		port := connSink(b)
		s := newConnSender(b, "udp4")
		cfg := &Config{RingBlockTimeout: time.Millisecond}
		b.ReportAllocs()
		for b.Loop() {
			c, err := Listen("lo", prog, cfg)
			if err != nil {
				b.Fatal(err)
			}
			s.send(b, port)
			if _, _, err := c.NextFrame(); err != nil {
				b.Fatal(err)
			}
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := rawListenClose(prog.FD(), ifindex); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// rawListenClose does with raw system calls what Listen and Close do on lo
// with the default ring.
func rawListenClose(progFD, ifindex int) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	for _, o := range []struct{ level, opt, val int }{
		{unix.SOL_SOCKET, unix.SO_ATTACH_BPF, progFD},
		{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1},
		{unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	req := unix.TpacketReq3{
		Block_size: DefaultRingBlockSize,
		Block_nr:   DefaultRingBlockCount,
		Frame_size: 1 << 11,
		Frame_nr:   DefaultRingBlockSize / (1 << 11) * DefaultRingBlockCount,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return os.NewSyscallError("setsockopt PACKET_RX_RING", err)
	}
	mem, err := unix.Mmap(fd, 0, DefaultRingBlockSize*DefaultRingBlockCount, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap", err)
	}
	defer unix.Munmap(mem)
	return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex})
}
