package sockfilter

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// TestConnNoUnfilteredWindow floods lo while it opens socket after socket
// with a drop-all filter: none may ever read a frame. It also measures the
// naive order (bind, then attach) on the same traffic, to show the flood is
// dense enough to catch a window; that figure is logged, not asserted, as
// it depends on timing.
func TestConnNoUnfilteredWindow(t *testing.T) { testConnNoUnfilteredWindow(t, connRing) }

func testConnNoUnfilteredWindow(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	drop := connLoad(t, connDropAll)
	port := connSink(t)
	witness := m.listen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), &Config{ReceiveBuffer: 1})

	flood, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flood.Close() })
	var stop atomic.Bool
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
		payload := make([]byte, 32)
		// Bounded: at most a million datagrams, and it stops with the test.
		for !stop.Load() && sent.Load() < 1_000_000 {
			if _, err := flood.WriteToUDPAddrPort(payload, dst); err == nil {
				sent.Add(1)
			}
		}
	}()
	defer func() {
		stop.Store(true)
		<-done
	}()
	for sent.Load() < 1000 {
		time.Sleep(time.Millisecond)
	}

	buf := make([]byte, 2048)
	// Each try takes about 12 ms, nearly all of it in close(2), where the
	// kernel waits for an RCU grace period (packet_release).
	const tries = 100
	for i := range tries {
		c, err := Listen("lo", drop, m.config(nil))
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		if err := c.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, info, err := c.ReadFrame(buf)
		c.Close()
		if err == nil {
			t.Fatalf("try %d: a drop-all socket read a frame of %d bytes (%+v): %x", i, n, info, buf[:n])
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("try %d: ReadFrame: %v", i, err)
		}
	}

	// The naive order, for comparison.
	lo := loIndex(t)
	naiveLeaks := 0
	for range tries {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: lo}); err != nil {
			unix.Close(fd)
			t.Fatal(err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, drop.FD()); err != nil {
			unix.Close(fd)
			t.Fatal(err)
		}
		if _, _, err := unix.Recvfrom(fd, buf, 0); err == nil {
			naiveLeaks++
		}
		unix.Close(fd)
	}
	stop.Store(true)
	<-done
	st, err := witness.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Received+st.Drops == 0 {
		t.Fatal("the witness saw no flood traffic")
	}
	t.Logf("flood: %d datagrams; Listen with drop-all: 0 frames in %d tries; naive bind-then-attach: a frame in %d of %d tries",
		sent.Load(), tries, naiveLeaks, tries)
}

func TestConnCloseUnblocksRead(t *testing.T) { testConnCloseUnblocksRead(t, connRing) }

func testConnCloseUnblocksRead(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	tests := []struct {
		name string
		read func(c *Conn, buf []byte) error
	}{
		{"ReadFrame", func(c *Conn, buf []byte) error {
			_, _, err := c.ReadFrame(buf)
			return err
		}},
		{"ReadFrameContext", func(c *Conn, buf []byte) error {
			_, _, err := c.ReadFrameContext(t.Context(), buf)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := m.listen(t, "lo", connLoad(t, connDropAll), nil)
			errc := make(chan error, 1)
			go func() { errc <- tt.read(c, make([]byte, 1500)) }()
			select {
			case err := <-errc:
				t.Fatalf("read returned before Close: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) || !errors.Is(err, ErrClosed) {
					t.Errorf("blocked read after Close: %v; want net.ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not unblock the read")
			}
		})
	}
}

func TestConnAfterClose(t *testing.T) { testConnAfterClose(t, connRing) }

func testConnAfterClose(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	prog := connLoad(t, connAcceptAll)
	c := m.listen(t, "lo", prog, nil)
	for i := range 3 {
		if err := c.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	ops := map[string]func() error{
		"ReadFrame": func() error { _, _, err := c.ReadFrame(make([]byte, 10)); return err },
		"ReadFrameContext": func() error {
			_, _, err := c.ReadFrameContext(t.Context(), make([]byte, 10))
			return err
		},
		"SetReadDeadline": func() error { return c.SetReadDeadline(time.Now()) },
		"SetProgram":      func() error { return c.SetProgram(prog) },
		"Detach":          c.Detach,
		"LockFilter":      c.LockFilter,
		"Stats":           func() error { _, err := c.Stats(); return err },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s on a closed Conn: %v; want ErrClosed", name, err)
		}
	}
}

func TestConnSetProgram(t *testing.T) { testConnSetProgram(t, connRing) }

func testConnSetProgram(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	c := m.listen(t, "lo", connLoad(t, connDropAll), nil)
	s := newConnSender(t, "udp4")
	for range 5 {
		s.send(t, port)
	}
	if frames := connReadAll(t, c, nil, 200*time.Millisecond); len(frames) != 0 {
		t.Fatalf("drop-all read %d frames", len(frames))
	}
	filter := connLoad(t, connUDPPortFilter(port, -1))
	if err := c.SetProgram(filter); err != nil {
		t.Fatalf("SetProgram: %v", err)
	}
	// The kernel holds its own reference: closing ours changes nothing.
	filter.Close()
	for range 5 {
		s.send(t, port)
	}
	got := connIDs(s, connReadAll(t, c, nil, 300*time.Millisecond))
	if len(got) != 5 {
		t.Errorf("after SetProgram read datagrams %v; want 6 to 10", got)
	}
	for id := uint32(6); id <= 10; id++ {
		if got[id] != 1 {
			t.Errorf("datagram %d seen %d times; want 1", id, got[id])
		}
	}

	if err := c.SetProgram(nil); err == nil {
		t.Error("SetProgram(nil) succeeded")
	}
	if err := c.SetProgram(filter); !errors.Is(err, ErrClosed) {
		t.Errorf("SetProgram with a closed program: %v; want an error matching ErrClosed", err)
	}
}

func TestConnDetach(t *testing.T) { testConnDetach(t, connRing) }

func testConnDetach(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	c := m.listen(t, "lo", connLoad(t, connDropAll), nil)
	if err := c.Detach(); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	s := newConnSender(t, "udp4")
	for range 3 {
		s.send(t, port)
	}
	if got := connIDs(s, connReadAll(t, c, s, 300*time.Millisecond)); len(got) != 3 {
		t.Errorf("without a filter read datagrams %v; want 1 to 3", got)
	}
	if err := c.Detach(); !errors.Is(err, unix.ENOENT) {
		t.Errorf("second Detach: %v; want ENOENT", err)
	}
}

func TestConnLock(t *testing.T) { testConnLock(t, connRing) }

func testConnLock(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	match, other := connSink(t), connSink(t)
	c := m.listen(t, "lo", connLoad(t, connUDPPortFilter(match, -1)), nil)
	if err := c.LockFilter(); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	err := c.SetProgram(connLoad(t, connAcceptAll))
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("SetProgram after Lock: %v; want EPERM saying the filter is locked", err)
	}
	if err := c.Detach(); !errors.Is(err, unix.EPERM) {
		t.Errorf("Detach after Lock: %v; want EPERM", err)
	}
	// The locked filter still filters.
	s := newConnSender(t, "udp4")
	want := s.send(t, match)
	s.send(t, other)
	frames := connReadAll(t, c, nil, 300*time.Millisecond)
	if got := connIDs(s, frames); len(frames) != 1 || got[want] != 1 {
		t.Errorf("after a refused SetProgram read %d frames, datagrams %v; want only %d", len(frames), got, want)
	}
}

// connWaitStats polls c.Stats until it accounts for n frames or a second
// passes; polling is harmless because Stats accumulates.
func connWaitStats(t testing.TB, c *Conn, n uint64) Stats {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		st, err := c.Stats()
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if st.Received+st.Drops >= n || time.Now().After(deadline) {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnStatsCountDrops(t *testing.T) { testConnStatsCountDrops(t, connRing) }

func testConnStatsCountDrops(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	// The smallest ring, two blocks of a page, holds 58 of these frames;
	// the smallest receive buffer the kernel allows, a few.
	cfg := &Config{RingBlockSize: os.Getpagesize(), RingBlockCount: 2, ReceiveBuffer: 1}
	c := m.listen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), cfg)
	ring, _ := c.Ring()
	s := newConnSender(t, "udp4")
	const n = 200
	for range n {
		s.send(t, port)
	}
	st1 := connWaitStats(t, c, n)
	t.Logf("after %d datagrams, unread: %+v", n, st1)
	if st1.Received == 0 || st1.Drops == 0 || st1.Received+st1.Drops != n {
		t.Fatalf("Stats = %+v; want Received > 0, Drops > 0, Received+Drops = %d", st1, n)
	}
	if ring && st1.Freezes == 0 || !ring && st1.Freezes != 0 {
		t.Errorf("Stats = %+v with ring %v; a full ring freezes its queue, and without a ring nothing does", st1, ring)
	}
	// The kernel's counters are zero again now; Stats must not be.
	for range n {
		s.send(t, port)
	}
	st2 := connWaitStats(t, c, 2*n)
	t.Logf("after %d more: %+v", n, st2)
	if st2.Received < st1.Received || st2.Drops < st1.Drops || st2.Freezes < st1.Freezes || st2.Received+st2.Drops != 2*n {
		t.Fatalf("Stats = %+v after %+v; want running totals adding up to %d", st2, st1, 2*n)
	}
	if got := len(connReadAll(t, c, nil, 200*time.Millisecond)); uint64(got) != st2.Received {
		t.Errorf("read %d frames; Stats says %d were queued", got, st2.Received)
	}
}

// TestConnTestMatchesLive captures real frames with an accept-all socket
// and checks, for each, that Program.Test's verdict on it is what a socket
// with that program attached actually delivered: the frame cut to the
// verdict's length, or nothing.
func TestConnTestMatchesLive(t *testing.T) { testConnTestMatchesLive(t, connRing) }

func testConnTestMatchesLive(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	match, other := connSink(t), connSink(t)
	sink6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback, Port: int(match)})
	if err != nil {
		t.Fatalf("listen on [::1]:%d: %v", match, err)
	}
	t.Cleanup(func() { sink6.Close() })

	tests := []struct {
		name string
		keep int32
	}{
		{"whole frames", -1},
		{"headers only", 14 + 20 + 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog := connLoad(t, connUDPPortFilter(match, tt.keep))
			all := m.listen(t, "lo", connLoad(t, connAcceptAll), nil)
			live := m.listen(t, "lo", prog, nil)
			s4, s6 := newConnSender(t, "udp4"), newConnSender(t, "udp6")
			for range 10 {
				s4.send(t, match)
				s4.send(t, other)
				s6.send(t, match) // the same port, but IPv6: dropped
			}
			liveFrames := make(map[string]int)
			for _, f := range connReadAll(t, live, nil, 300*time.Millisecond) {
				liveFrames[string(f.data)]++
			}
			var accepted, rejected int
			for _, f := range connReadAll(t, all, nil, 300*time.Millisecond) {
				_, ok4 := s4.id(f.data)
				_, ok6 := s6.id(f.data)
				if !ok4 && !ok6 {
					continue // another's traffic on lo
				}
				verdict, err := prog.Test(f.data, packet.LinkEthernet)
				if err != nil {
					t.Fatalf("Test: %v", err)
				}
				switch verdict {
				case 0:
					rejected++
				case uint32(tt.keep):
					accepted++
					key := string(f.data[:min(int(verdict), len(f.data))])
					if liveFrames[key] == 0 {
						t.Errorf("Test accepted a frame the live socket did not deliver: %x", f.data)
						continue
					}
					liveFrames[key]--
				default:
					t.Errorf("Test verdict %#x; want 0 or %#x", verdict, uint32(tt.keep))
				}
			}
			for frame, n := range liveFrames {
				if n != 0 {
					t.Errorf("the live socket delivered %d frames that Test rejected or that were not captured: %x", n, frame)
				}
			}
			if accepted != 10 || rejected != 20 {
				t.Errorf("Test accepted %d and rejected %d frames; want 10 and 20", accepted, rejected)
			}
		})
	}
}

func TestConnFDsDoNotLeak(t *testing.T) {
	testutil.RequirePrivileged(t)
	countFDs := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	cycle := func(i int) error {
		p, err := Load(connAcceptAll, nil)
		if err != nil {
			return err
		}
		defer p.Close()
		// A ring of one page: a ring holds no descriptor of its own, and
		// the default's 32 MiB would be zeroed 2,000 times.
		c, err := Listen("lo", p, &Config{RingBlockSize: os.Getpagesize(), RingBlockCount: 1})
		if err != nil {
			return err
		}
		if i%10 == 0 {
			// A failing Listen must not leak either.
			if _, err := Listen("nope0", p, nil); err == nil {
				return errors.New("Listen on a missing interface succeeded")
			}
		}
		if err := c.Close(); err != nil {
			return err
		}
		return p.Close()
	}
	if err := cycle(0); err != nil { // let the runtime open what it opens once (the poller)
		t.Fatal(err)
	}
	before := countFDs()
	// close(2) of a packet socket waits about 12 ms for an RCU grace
	// period; workers in parallel share grace periods.
	const cycles, workers = 2000, 8
	errc := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range cycles / workers {
				if err := cycle(w + i*workers); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if after := countFDs(); after != before {
		t.Errorf("%d open fds before %d Load/Listen/Close cycles, %d after", before, cycles, after)
	}
}

func TestConnReadFrameNoAllocs(t *testing.T) { testConnReadFrameNoAllocs(t, connRing) }

func testConnReadFrameNoAllocs(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	c := m.listen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), &Config{ReceiveBuffer: 4 << 20})
	s := newConnSender(t, "udp4")
	const runs = 100
	for range runs + 10 {
		s.send(t, port)
	}
	if st := connWaitStats(t, c, runs+10); st.Received != runs+10 {
		t.Fatalf("Stats = %+v; want %d queued", st, runs+10)
	}
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	var reads int
	var readErr error
	allocs := testing.AllocsPerRun(runs, func() {
		n, info, err := c.ReadFrame(buf)
		if err != nil {
			readErr = err
			return
		}
		if n == 54 && info.Length == 54 && !info.Time.IsZero() {
			reads++
		}
	})
	if readErr != nil {
		t.Fatalf("ReadFrame: %v", readErr)
	}
	if reads != runs+1 { // AllocsPerRun runs once more to warm up
		t.Fatalf("%d good reads; want %d", reads, runs+1)
	}
	if allocs != 0 {
		t.Errorf("ReadFrame allocates %v times per frame; want 0", allocs)
	}
}

func TestConnReadFrameContext(t *testing.T) { testConnReadFrameContext(t, connRing) }

func testConnReadFrameContext(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	c := m.listen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), nil)
	s := newConnSender(t, "udp4")
	buf := make([]byte, 1500)

	// readAfter checks that the Conn's own deadline is in force again after
	// a cancelled read: a frame sent now must be read.
	readAfter := func(t *testing.T) {
		t.Helper()
		id := s.send(t, port)
		n, _, err := c.ReadFrame(buf)
		if err != nil {
			t.Fatalf("ReadFrame after a cancelled read: %v", err)
		}
		if got, _ := s.id(buf[:n]); got != id {
			t.Fatalf("read datagram %d; want %d", got, id)
		}
	}

	t.Run("frame", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		id := s.send(t, port)
		n, info, err := c.ReadFrameContext(ctx, buf)
		if err != nil {
			t.Fatalf("ReadFrameContext: %v", err)
		}
		if got, _ := s.id(buf[:n]); got != id || info.Length != n {
			t.Errorf("read datagram %d, %d of %d bytes; want %d, whole", got, n, info.Length, id)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, _, err := c.ReadFrameContext(ctx, make([]byte, 1500))
			errc <- err
		}()
		time.Sleep(30 * time.Millisecond)
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled read: %v; want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("cancel did not unblock the read")
		}
		readAfter(t)
	})
	t.Run("timeout", func(t *testing.T) {
		if err := c.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		defer cancel()
		_, _, err := c.ReadFrameContext(ctx, buf)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("read past the context's deadline: %v; want context.DeadlineExceeded", err)
		}
		readAfter(t)
	})
	t.Run("already done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		s.send(t, port) // a frame is waiting, but the context wins
		if _, _, err := c.ReadFrameContext(ctx, buf); !errors.Is(err, context.Canceled) {
			t.Errorf("read with a cancelled context: %v; want context.Canceled", err)
		}
		if _, _, err := c.ReadFrame(buf); err != nil {
			t.Errorf("the waiting frame: %v", err)
		}
	})
	t.Run("conn deadline first", func(t *testing.T) {
		if err := c.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		_, _, err := c.ReadFrameContext(t.Context(), buf)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read past the Conn's deadline: %v; want os.ErrDeadlineExceeded", err)
		}
	})
}
