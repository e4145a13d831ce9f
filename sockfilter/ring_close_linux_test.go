package sockfilter

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// connSocketProto returns the Proto column (the protocol the socket is
// bound to, in hex) of the line of /proc/net/packet for the socket with
// inode ino, and whether there is one.
func connSocketProto(t testing.TB, ino uint64) (proto string, ok bool) {
	t.Helper()
	for _, fields := range connPacketSockets(t) {
		if fields[8] == strconv.FormatUint(ino, 10) {
			return fields[3], true
		}
	}
	return "", false
}

// connPacketSockets returns the lines of /proc/net/packet, the packet
// sockets of the network namespace, split into their 9 fields: sk RefCnt
// Type Proto Iface R Rmem User Inode.
func connPacketSockets(t testing.TB) [][]string {
	t.Helper()
	f, err := os.Open("/proc/net/packet")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 9 && fields[0] != "sk" {
			out = append(out, fields)
		}
	}
	return out
}

// connSocketMappings counts the mappings of sockets in the process
// (/proc/self/maps names a packet ring's mapping socket:[inode]).
func connSocketMappings(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "socket:[")
}

// connFDs counts the process's open file descriptors.
func connFDs(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// connMemAvailable returns MemAvailable from /proc/meminfo, in bytes.
func connMemAvailable(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no MemAvailable in /proc/meminfo")
	return 0
}

// connRSS returns the process's resident set size in bytes
// (/proc/self/statm).
func connRSS(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		t.Fatalf("/proc/self/statm: %q", b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// connInode returns the inode of c's socket, as /proc/net/packet lists it.
func connInode(t testing.TB, c *Conn) uint64 {
	t.Helper()
	var ino uint64
	if err := c.rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if err := unix.Fstat(int(fd), &st); err != nil {
			t.Error(err)
		}
		ino = st.Ino
	}); err != nil {
		t.Fatal(err)
	}
	return ino
}

// TestRingCloseWithFrameLent checks what Close documents: with a frame from
// NextFrame possibly in use, Close releases the socket and its ring at
// once, and the frame stays readable and unchanged, after Close, after the
// Conn is collected, and while other Conns capture.
func TestRingCloseWithFrameLent(t *testing.T) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	prog := connLoad(t, connUDPPortFilter(port, -1))
	c, err := Listen("lo", prog, &Config{RingBlockTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ino := connInode(t, c)
	if p, ok := connSocketProto(t, ino); !ok || p != "0003" {
		t.Fatalf("socket %d in /proc/net/packet: protocol %q, %v; want 0003 (ETH_P_ALL)", ino, p, ok)
	}
	s := newConnSender(t, "udp4")
	connFlood(t, s, port, 10, 64)
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	frame, _, err := c.NextFrame()
	if err != nil {
		t.Fatal(err)
	}
	saved := bytes.Clone(frame)
	maps := connSocketMappings(t)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if p, ok := connSocketProto(t, ino); ok {
		t.Errorf("socket %d still in /proc/net/packet after Close (protocol %s): the ring holds it", ino, p)
	}
	if got := connSocketMappings(t); got != maps-1 {
		t.Errorf("%d socket mappings after Close, %d before; want one fewer", got, maps)
	}
	if _, _, err := c.NextFrame(); err == nil {
		t.Error("NextFrame after Close succeeded")
	}
	c = nil
	runtime.GC()
	runtime.GC()
	other := connListen(t, "lo", prog, &Config{RingBlockTimeout: time.Millisecond})
	connFlood(t, s, port, 1000, 64)
	if err := other.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.NextFrame(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(frame, saved) {
		t.Errorf("frame changed after Close: %x; was %x", frame, saved)
	}
}

// ringLifetimeChild is set in the environment of the test binary that
// TestRingFrameLifetime runs.
const ringLifetimeChild = "PUREBPF_RING_LIFETIME_CHILD"

// TestRingFrameLifetime runs TestRingFrameLifetimeChild in a child process
// under each garbage collector setting, so that a frame that faults (a
// fatal error no test can recover from) fails this test instead of killing
// the test binary: with GOGC=off (no collection but the ones the child
// forces), with the default, and with GOGC=1 (one at every turn).
func TestRingFrameLifetime(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, gogc := range []string{"off", "100", "1"} {
		t.Run("GOGC="+gogc, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestRingFrameLifetimeChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), ringLifetimeChild+"=1", "GOGC="+gogc)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestRingFrameLifetimeChild") {
				t.Fatalf("child with GOGC=%s: %v\n%s", gogc, err, out)
			}
			t.Logf("child with GOGC=%s:\n%s", gogc, out)
		})
	}
}

// TestRingFrameLifetimeChild holds frames across each way a Conn can end
// and checks them byte for byte: a Conn dropped without Close and
// collected, a Conn closed, a Conn closed and then collected; each while
// the heap is churned and new Conns capture other traffic, which must not
// show in the old frames, and must be read from other memory. Run directly,
// it skips.
func TestRingFrameLifetimeChild(t *testing.T) {
	if os.Getenv(ringLifetimeChild) != "1" {
		t.Skip("run by TestRingFrameLifetime")
	}
	testutil.RequirePrivileged(t)
	port := connSink(t)
	prog := connLoad(t, connUDPPortFilter(port, -1))
	cfg := &Config{RingBlockSize: 64 << 10, RingBlockCount: 16, RingBlockTimeout: time.Millisecond}
	for _, end := range []string{"dropped", "closed", "closed then dropped"} {
		t.Run(end, func(t *testing.T) {
			s := newConnSender(t, "udp4")
			frames, saved, ino := ringHeldFrames(t, prog, cfg, s, port, end)
			check := func(when string) {
				t.Helper()
				for i := range frames {
					if !bytes.Equal(frames[i], saved[i]) {
						t.Fatalf("%s: held frame %d is %x; was %x", when, i, frames[i], saved[i])
					}
				}
			}
			check("once the Conn ended")
			// The socket goes at Close, or once the Conn is collected.
			for i := 0; ; i++ {
				if _, ok := connSocketProto(t, ino); !ok {
					break
				}
				if end == "closed" || i == 100 {
					t.Fatalf("socket %d still in /proc/net/packet (%s, %d collections)", ino, end, i)
				}
				runtime.GC()
				time.Sleep(10 * time.Millisecond)
			}
			ringChurn(t)
			check("after collections and a churned heap")
			// New Conns capture new traffic into other memory.
			for range 3 {
				s2 := newConnSender(t, "udp4")
				c := connListen(t, "lo", prog, cfg)
				connFlood(t, s2, port, 100, 64)
				if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
					t.Fatal(err)
				}
				f, _, err := c.NextFrame()
				if err != nil {
					st, serr := c.Stats()
					t.Fatalf("%v (stats %+v %v, ring %v)", err, st, serr, c.ring != nil)
				}
				for i := range frames {
					if ringOverlap(f, frames[i]) {
						t.Fatalf("a new Conn's frame is at %p, in the memory of old frame %d", unsafe.SliceData(f), i)
					}
				}
				c.Close()
				ringChurn(t)
			}
			check("after new Conns captured")
			runtime.KeepAlive(frames)
		})
	}
}

// ringHeldFrames listens, reads frames in place with NextFrame and
// NextFrames from two blocks, and ends the Conn as end says, keeping only
// the frames; it returns them, copies of them, and the socket's inode.
func ringHeldFrames(t *testing.T, prog *Program, cfg *Config, s *connSender, port uint16, end string) (frames, saved [][]byte, ino uint64) {
	c, err := Listen("lo", prog, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ino = connInode(t, c)
	// 64 KiB blocks hold 341 of these frames: 400 take at least two.
	connFlood(t, s, port, 400, 64)
	if st := connWaitStats(t, c, 400); st.Drops != 0 {
		t.Fatalf("Stats = %+v: the ring overflowed", st)
	}
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		f, _, err := c.NextFrame()
		if err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 { // every 50th: from the first block and the second
			frames = append(frames, f)
		}
	}
	batch := make([][]byte, 8)
	connFlood(t, s, port, 8, 64)
	connWaitStats(t, c, 408)
	n, err := c.NextFrames(batch, make([]packet.Info, len(batch)))
	if err != nil {
		t.Fatal(err)
	}
	frames = append(frames, batch[:n]...)
	for _, f := range frames {
		if _, err := connCheckFrame(f, s.marker, port, 64); err != nil {
			t.Fatalf("frame before the end: %v", err)
		}
		saved = append(saved, bytes.Clone(f))
	}
	switch end {
	case "closed", "closed then dropped":
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if end != "closed" {
		c = nil
	}
	runtime.GC()
	runtime.KeepAlive(c)
	return frames, saved, ino
}

// ringChurn collects garbage, returns what it can to the system, and fills
// the heap with new objects, so that memory a frame wrongly lost would be
// reused and overwritten.
func ringChurn(t *testing.T) {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	var junk [][]byte
	for range 64 {
		b := make([]byte, 64<<10)
		for i := range b {
			b[i] = 0xaa
		}
		junk = append(junk, b)
	}
	runtime.KeepAlive(junk)
	runtime.GC()
}

// ringOverlap reports whether a and b share memory.
func ringOverlap(a, b []byte) bool {
	a0, b0 := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return a0 < b0+uintptr(len(b)) && b0 < a0+uintptr(len(a))
}

// TestRingClosePromiscuousLent checks that Close takes the interface out of
// promiscuous mode at once, a frame lent or not.
func TestRingClosePromiscuousLent(t *testing.T) {
	testutil.RequirePrivileged(t)
	v := testutil.NewVeth(t)
	prog := connLoad(t, connAcceptAll)
	c, sender, senderIndex := connVethPair(t, connRing, v, prog, &Config{Promiscuous: true, RingBlockTimeout: time.Millisecond})
	promiscuity := func() string {
		out := v.NS.IP(t, "-d", "link", "show", "dev", v.A)
		return strings.Fields(out[strings.Index(out, "promiscuity"):])[1]
	}
	frame := make([]byte, 60)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5})
	if err := unix.Sendto(sender, frame, 0, &unix.SockaddrLinklayer{Ifindex: senderIndex}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.NextFrame(); err != nil {
		t.Fatalf("NextFrame: %v", err)
	}
	if got := promiscuity(); got != "1" {
		t.Errorf("promiscuity with the Conn open: %s; want 1", got)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := promiscuity(); got != "0" {
		t.Errorf("promiscuity after Close with a frame lent: %s; want 0", got)
	}
}

// TestRingCloseReleasesDefaultRing checks that Close gives back a ring of
// the default size at once, with the garbage collector off: the socket
// leaves /proc/net/packet, its mapping leaves the process, and the
// kernel's memory comes back.
func TestRingCloseReleasesDefaultRing(t *testing.T) {
	testutil.RequirePrivileged(t)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	port := connSink(t)
	prog := connLoad(t, connUDPPortFilter(port, -1))
	s := newConnSender(t, "udp4")
	maps, fds := connSocketMappings(t), connFDs(t)
	c, err := Listen("lo", prog, &Config{RingBlockTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ino := connInode(t, c)
	s.send(t, port)
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	frame, _, err := c.NextFrame()
	if err != nil {
		t.Fatal(err)
	}
	if got := connSocketMappings(t); got != maps+1 {
		t.Fatalf("%d socket mappings with the Conn open, %d before; want one more", got, maps)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := connSocketProto(t, ino); ok {
		t.Errorf("socket %d in /proc/net/packet after Close", ino)
	}
	if got := connSocketMappings(t); got != maps {
		t.Errorf("%d socket mappings after Close, %d before Listen", got, maps)
	}
	if got := connFDs(t); got != fds {
		t.Errorf("%d fds after Close, %d before Listen", got, fds)
	}
	if _, err := connCheckFrame(frame, s.marker, port, 12); err != nil {
		t.Errorf("frame after Close: %v", err)
	}
	runtime.KeepAlive(c)
}

// TestRingCloseUnmaps checks that a Conn whose frames were only copied out
// releases its socket at Close.
func TestRingCloseUnmaps(t *testing.T) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	c := connListen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), &Config{RingBlockTimeout: time.Millisecond})
	ino := connInode(t, c)
	s := newConnSender(t, "udp4")
	s.send(t, port)
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadFrame(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, ok := connSocketProto(t, ino); ok {
		t.Errorf("socket %d still in /proc/net/packet after Close", ino)
	}
}

// TestConnCloseReleases runs 10,000 Listen → NextFrame → Close cycles and
// checks that they leave what the kernel holds as it was: the packet
// sockets of the namespace, the process's file descriptors and socket
// mappings, a count of the process's mappings that levels off over the
// cycles, and the kernel's memory: the fall of MemAvailable less the
// growth of the process's own resident memory, bounded well below what the
// rings would take if they stayed (10,000 rings of 256 KiB, 2.4 GiB). The
// process's memory is the garbage collector's: the copies of the blocks
// lent are heap memory, which GOGC=off, say, keeps. Workers run cycles in
// parallel to share the RCU grace periods each close(2) waits for.
func TestConnCloseReleases(t *testing.T) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	prog := connLoad(t, connUDPPortFilter(port, -1))
	cfg := &Config{RingBlockSize: 256 << 10, RingBlockCount: 1, RingBlockTimeout: time.Millisecond}
	const cycles, workers = 10000, 16
	ringSize := int64(cfg.RingBlockSize * cfg.RingBlockCount)
	// Each worker sends with its own socket: a send is not safe for
	// concurrent use, and an error must not call t.Fatal off the test's
	// goroutine.
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	var seen addrRange // where the rings were
	cycle := func(s *net.UDPConn) error {
		c, err := Listen("lo", prog, cfg)
		if err != nil {
			return err
		}
		if _, err := s.WriteToUDPAddrPort([]byte("cycle"), dst); err != nil {
			return err
		}
		if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
			return err
		}
		f, _, err := c.NextFrame()
		if err != nil {
			return fmt.Errorf("NextFrame: %w", err)
		}
		seen.add(f)
		return c.Close()
	}
	senders := make([]*net.UDPConn, workers)
	for i := range senders {
		senders[i] = newConnSender(t, "udp4").c
	}
	if err := cycle(senders[0]); err != nil { // what the runtime opens once (the poller)
		t.Fatal(err)
	}
	sockets, fds, maps := len(connPacketSockets(t)), connFDs(t), connSocketMappings(t)
	avail, rss := connMemAvailable(t), connRSS(t)
	run := func(n int) {
		errc := make(chan error, workers)
		for w := range workers {
			go func() {
				for range n / workers {
					if err := cycle(senders[w]); err != nil {
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
	}
	// The copy of a block a frame was lent from is a mapping of its own,
	// which splits the heap's, until the frame is garbage: where the
	// rings were, the heap must be back to a few mappings, and the
	// process's count must level off. (The process also maps the stacks
	// of the threads the workers run on.)
	run(cycles / 2)
	heap := settled(t, func() int { return seen.mappings(t) }, 8)
	total := countMappings(t)
	run(cycles / 2)
	heap2 := settled(t, func() int { return seen.mappings(t) }, 8)
	total2 := countMappings(t)
	t.Logf("mappings where the rings were: %d after %d cycles, %d after %d; in the process: %d, then %d", heap, cycles/2, heap2, cycles, total, total2)
	if heap > 8 || heap2 > 8 {
		t.Errorf("mappings where the rings were: %d after %d cycles, %d after %d; want at most 8: the copies of blocks lent did not merge back", heap, cycles/2, heap2, cycles)
	}
	if total2 > total+32 {
		t.Errorf("%d mappings in the process after %d cycles, %d after %d: want them levelled off", total2, cycles, total, cycles/2)
	}
	if got := len(connPacketSockets(t)); got != sockets {
		t.Errorf("%d packet sockets after %d cycles, %d before", got, cycles, sockets)
	}
	if got := connFDs(t); got != fds {
		t.Errorf("%d fds after %d cycles, %d before", got, cycles, fds)
	}
	if got := connSocketMappings(t); got != maps {
		t.Errorf("%d socket mappings after %d cycles, %d before", got, cycles, maps)
	}
	// Other processes change MemAvailable too: the bound is a sixth of
	// what the rings would hold, well above that noise, far below a leak.
	leak := int64(cycles) * ringSize
	drop, grown := avail-connMemAvailable(t), connRSS(t)-rss
	if kernel := drop - max(grown, 0); kernel > leak/6 {
		t.Errorf("MemAvailable fell by %d MiB over %d cycles, %d MiB more than the process grew; rings that stayed would take %d MiB", drop>>20, cycles, kernel>>20, leak>>20)
	} else {
		t.Logf("MemAvailable fell by %d MiB over %d cycles, the process's resident memory grew by %d MiB (rings that stayed: %d MiB)", drop>>20, cycles, grown>>20, leak>>20)
	}
}
