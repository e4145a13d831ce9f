package sockfilter

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/internal/tpacket"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// TestConnRecvmsg runs the Conn tests again with recvmsg(2) reads instead
// of a ring: a Conn falls back to them where no ring can be had, and must
// behave the same.
func TestConnRecvmsg(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, tt := range []struct {
		name string
		test func(*testing.T, connMode)
	}{
		{"AcceptAllSeesTraffic", testConnAcceptAllSeesTraffic},
		{"DropAllSeesNothing", testConnDropAllSeesNothing},
		{"UDPPortFilter", testConnUDPPortFilter},
		{"Truncation", testConnTruncation},
		{"Directions", testConnDirections},
		{"DirectionsVeth", testConnDirectionsVeth},
		{"Any", testConnAny},
		{"ReadDeadline", testConnReadDeadline},
		{"MissingInterface", testConnMissingInterface},
		{"NoUnfilteredWindow", testConnNoUnfilteredWindow},
		{"CloseUnblocksRead", testConnCloseUnblocksRead},
		{"AfterClose", testConnAfterClose},
		{"SetProgram", testConnSetProgram},
		{"Detach", testConnDetach},
		{"Lock", testConnLock},
		{"StatsCountDrops", testConnStatsCountDrops},
		{"TestMatchesLive", testConnTestMatchesLive},
		{"ReadFrameNoAllocs", testConnReadFrameNoAllocs},
		{"ReadFrameContext", testConnReadFrameContext},
		{"VLAN", testConnVLAN},
		{"RawIPLink", testConnRawIPLink},
		{"InterfaceDown", testConnInterfaceDown},
		{"InterfaceGone", testConnInterfaceGone},
		{"Promiscuous", testConnPromiscuous},
		{"NextFrame", testConnNextFrame},
		{"NextFrameNoAllocs", testConnNextFrameNoAllocs},
		{"DeadlineWithFramesWaiting", testConnDeadlineWithFramesWaiting},
		{"CloseHammer", testConnCloseHammer},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, connRecvmsg) })
	}
}

func TestConnRing(t *testing.T) {
	testutil.RequirePrivileged(t)
	prog := connLoad(t, connAcceptAll)
	c := connListen(t, "lo", prog, nil)
	if ring, why := c.Ring(); !ring || why != nil {
		t.Errorf("default Conn: Ring() = %v, %v; want true, nil", ring, why)
	}
	c = connListen(t, "lo", prog, &Config{NoRing: true})
	// No ring because none was asked for is not a failure.
	if ring, why := c.Ring(); ring || why != nil {
		t.Errorf("Config.NoRing: Ring() = %v, %v; want false, nil", ring, why)
	}
}

// TestRingFallback makes the ring's setup fail in the kernel and in mmap,
// and checks that the Conn reads with recvmsg(2) instead, frames, metadata
// and counters alike.
func TestRingFallback(t *testing.T) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	prog := connLoad(t, connUDPPortFilter(port, 20))
	tests := []struct {
		name  string
		set   func(int, int, int, *unix.TpacketReq3) error
		mmap  func(int, []byte) error
		errno error
	}{
		{"PACKET_RX_RING refused", func(int, int, int, *unix.TpacketReq3) error { return unix.EINVAL }, nil, unix.EINVAL},
		{"mmap fails", nil, func(int, []byte) error { return unix.ENOMEM }, unix.ENOMEM},
		{"mmap fails after mapping", nil, func(fd int, mem []byte) error {
			// As a MAP_FIXED that fails late may leave it: the heap
			// object's range mapped to the ring, or unmapped.
			if err := mmapRing(fd, mem); err != nil {
				return err
			}
			return unix.EAGAIN
		}, unix.EAGAIN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.set != nil {
				tpacket.SetRing = tt.set
				t.Cleanup(func() { tpacket.SetRing = unix.SetsockoptTpacketReq3 })
			}
			if tt.mmap != nil {
				tpacket.MmapRing = tt.mmap
				t.Cleanup(func() { tpacket.MmapRing = mmapRing })
			}
			c, err := Listen("lo", prog, nil)
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			t.Cleanup(func() { c.Close() })
			ring, why := c.Ring()
			t.Logf("Ring() = %v, %v", ring, why)
			if ring || !errors.Is(why, tt.errno) {
				t.Fatalf("Ring() = %v, %v; want false and an error matching %v", ring, why, tt.errno)
			}
			s := newConnSender(t, "udp4")
			s.send(t, port)
			s.send(t, port)
			if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, info, err := c.ReadFrame(buf)
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			// The filter keeps 20 bytes: the frame is cut before the marker.
			if n != 20 || info.Length != 54 || info.Direction != packet.DirectionHost || info.Ifindex != loIndex(t) || info.Time.IsZero() {
				t.Errorf("ReadFrame: %d bytes, %+v; want 20 of 54, incoming on lo, with a time", n, info)
			}
			frame, info, err := c.NextFrame()
			if err != nil || len(frame) != 20 || info.Length != 54 {
				t.Errorf("NextFrame: %d bytes, %+v, %v; want 20 of 54", len(frame), info, err)
			}
			if st, err := c.Stats(); err != nil || st.Received != 2 || st.Drops != 0 || st.Freezes != 0 {
				t.Errorf("Stats = %+v, %v; want 2 received", st, err)
			}
		})
	}
}

// mmapRing is tpacket.MmapRing as Listen uses it.
var mmapRing = tpacket.MmapRing

// connPattern fills p with the payload of datagram seq: the sender's
// marker, seq, then bytes that depend on seq and their position, so that
// a frame that is torn, shifted or overwritten shows.
func connPattern(p []byte, marker [8]byte, seq uint32) {
	copy(p, marker[:])
	binary.BigEndian.PutUint32(p[8:], seq)
	for i := 12; i < len(p); i++ {
		p[i] = byte(seq*7 + uint32(i))
	}
}

// connCheckFrame checks that frame is an Ethernet, IPv4, UDP frame to port
// whose payload is n bytes in connPattern, and returns its number.
func connCheckFrame(frame []byte, marker [8]byte, port uint16, n int) (uint32, error) {
	if len(frame) != 14+20+8+n {
		return 0, fmt.Errorf("frame of %d bytes; want %d", len(frame), 14+20+8+n)
	}
	if binary.BigEndian.Uint16(frame[12:]) != 0x0800 || frame[14] != 0x45 || frame[14+9] != unix.IPPROTO_UDP ||
		binary.BigEndian.Uint16(frame[14+20+2:]) != port || int(binary.BigEndian.Uint16(frame[14+20+4:])) != 8+n {
		return 0, fmt.Errorf("not a UDP datagram to port %d with %d bytes of payload: %x", port, n, frame)
	}
	payload := frame[14+20+8:]
	seq := binary.BigEndian.Uint32(payload[8:])
	want := make([]byte, n)
	connPattern(want, marker, seq)
	if !bytes.Equal(payload, want) {
		return 0, fmt.Errorf("payload of datagram %d is %x; want %x", seq, payload, want)
	}
	return seq, nil
}

// connFlood sends count datagrams of n bytes in connPattern to port as
// fast as it can, numbering them from *seq.
func connFlood(t testing.TB, s *connSender, port uint16, count, n int) {
	t.Helper()
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	p := make([]byte, n)
	for range count {
		s.seq++
		connPattern(p, s.marker, s.seq)
		if _, err := s.c.WriteToUDPAddrPort(p, dst); err != nil {
			t.Errorf("send: %v", err)
			return
		}
	}
}

func TestConnNextFrame(t *testing.T) { testConnNextFrame(t, connRing) }

func testConnNextFrame(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	tests := []struct {
		name string
		keep int32 // the filter's return value: a snap length, or -1
		want int
	}{
		{"whole", -1, 14 + 20 + 8 + 64},
		{"snap length 42", 42, 42},
		{"snap length 1", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &Config{RingBlockTimeout: time.Millisecond, ReceiveBuffer: 4 << 20}
			c := m.listen(t, "lo", connLoad(t, connUDPPortFilter(port, tt.keep)), cfg)
			s := newConnSender(t, "udp4")
			const n = 500
			before := time.Now()
			connFlood(t, s, port, n, 64)
			if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				frame, info, err := c.NextFrame()
				if err != nil {
					t.Fatalf("NextFrame #%d: %v", i, err)
				}
				if len(frame) != tt.want || cap(frame) != len(frame) || info.Length != 14+20+8+64 {
					t.Fatalf("NextFrame #%d: %d bytes (cap %d) of %d; want %d, capacity no more", i, len(frame), cap(frame), info.Length, tt.want)
				}
				if info.Ifindex != c.Ifindex() || info.Direction != packet.DirectionHost || info.HasVLAN ||
					info.Time.Before(before.Add(-time.Second)) || info.Time.After(time.Now()) {
					t.Fatalf("NextFrame #%d: %+v; want incoming on lo, now", i, info)
				}
				if tt.keep == -1 {
					seq, err := connCheckFrame(frame, s.marker, port, 64)
					if err != nil {
						t.Fatalf("NextFrame #%d: %v", i, err)
					}
					if seq != uint32(i+1) {
						t.Fatalf("NextFrame #%d: datagram %d; want them in order", i, seq)
					}
				}
			}
			if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if frame, _, err := c.NextFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("NextFrame after the last: %x, %v; want the deadline", frame, err)
			}
		})
	}
}

// TestConnNextFrames reads a flood in batches: every datagram once and in
// order, batches of more than one frame from a ring (one without), every
// frame of a batch still intact once the batch is read, and the deadline
// after the last.
func TestConnNextFrames(t *testing.T) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	for _, noRing := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoRing=%v", noRing), func(t *testing.T) {
			cfg := &Config{RingBlockTimeout: time.Millisecond, ReceiveBuffer: 4 << 20, NoRing: noRing}
			c := connListen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), cfg)
			if n, err := c.NextFrames(nil, make([]packet.Info, 4)); n != 0 || err != nil {
				t.Fatalf("NextFrames with no room: %d, %v; want 0, nil", n, err)
			}
			s := newConnSender(t, "udp4")
			const total = 500
			connFlood(t, s, port, total, 64)
			if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
				t.Fatal(err)
			}
			frames := make([][]byte, 16)
			infos := make([]packet.Info, 20) // longer than frames: frames bounds the batch
			read, batches, biggest := 0, 0, 0
			for read < total {
				n, err := c.NextFrames(frames, infos)
				if err != nil {
					t.Fatalf("NextFrames after %d frames: %v", read, err)
				}
				if n < 1 || n > len(frames) {
					t.Fatalf("NextFrames: %d frames; want 1 to %d", n, len(frames))
				}
				for i, f := range frames[:n] {
					seq, err := connCheckFrame(f, s.marker, port, 64)
					if err != nil {
						t.Fatalf("frame %d of a batch of %d: %v", i, n, err)
					}
					if seq != uint32(read+1) {
						t.Fatalf("frame %d of a batch of %d: datagram %d; want %d", i, n, seq, read+1)
					}
					if infos[i].Length != len(f) || infos[i].Ifindex != c.Ifindex() || infos[i].Direction != packet.DirectionHost {
						t.Fatalf("frame %d of a batch of %d: %+v", i, n, infos[i])
					}
					read++
				}
				batches++
				biggest = max(biggest, n)
			}
			switch {
			case noRing && biggest != 1:
				t.Errorf("without a ring, a batch of %d frames; want 1", biggest)
			case !noRing && biggest < 2:
				t.Errorf("from a ring, %d batches for %d waiting frames, none of more than one", batches, total)
			}
			if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if n, err := c.NextFrames(frames, infos); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("NextFrames after the last: %d, %v; want the deadline", n, err)
			}
			c.Close()
			if n, err := c.NextFrames(frames, infos); n != 0 || !errors.Is(err, ErrClosed) {
				t.Errorf("NextFrames after Close: %d, %v; want ErrClosed", n, err)
			}
		})
	}
}

// TestConnNextFramesHoldsItsBlock checks that a batch never reaches past
// the block it started in: the ring's first two blocks are full when the
// batch is read, so a batch that went on into the second would hand the
// first back to the kernel, and the flood that follows, more than the ring
// holds, would overwrite the batch's frames.
func TestConnNextFramesHoldsItsBlock(t *testing.T) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	// 3 blocks of 4 KiB, each 21 of these frames (192 bytes each), handed
	// over only when full.
	const perBlock = 21
	cfg := &Config{RingBlockSize: 4096, RingBlockCount: 3, RingBlockTimeout: time.Minute}
	c := connListen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), cfg)
	s := newConnSender(t, "udp4")
	connFlood(t, s, port, 2*perBlock+5, 64)
	connWaitStats(t, c, 2*perBlock+5)
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	frames, infos := make([][]byte, 64), make([]packet.Info, 64)
	n, err := c.NextFrames(frames, infos)
	if err != nil {
		t.Fatal(err)
	}
	if n != perBlock {
		t.Fatalf("NextFrames: %d frames; want the first block's %d", n, perBlock)
	}
	connFlood(t, s, port, 10*perBlock, 64)
	connWaitStats(t, c, 12*perBlock+5)
	for i, f := range frames[:n] {
		seq, err := connCheckFrame(f, s.marker, port, 64)
		if err != nil || seq != uint32(i+1) {
			t.Fatalf("frame %d of the batch after the ring overflowed: datagram %d, %v; want %d intact", i, seq, err, i+1)
		}
	}
	// The next batch is the second block, whole and in order.
	n, err = c.NextFrames(frames, infos)
	if err != nil {
		t.Fatal(err)
	}
	if n != perBlock {
		t.Fatalf("second batch: %d frames; want the second block's %d", n, perBlock)
	}
	for i, f := range frames[:n] {
		if seq, err := connCheckFrame(f, s.marker, port, 64); err != nil || seq != uint32(perBlock+1+i) {
			t.Fatalf("frame %d of the second batch: datagram %d, %v; want %d", i, seq, err, perBlock+1+i)
		}
	}
}

func TestConnNextFrameContext(t *testing.T) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	c := connListen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), &Config{RingBlockTimeout: time.Millisecond})
	s := newConnSender(t, "udp4")
	id := s.send(t, port)
	frame, _, err := c.NextFrameContext(t.Context())
	if err != nil {
		t.Fatalf("NextFrameContext: %v", err)
	}
	if got, _ := s.id(frame); got != id {
		t.Errorf("read datagram %d; want %d", got, id)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if _, _, err := c.NextFrameContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("NextFrameContext past the context's deadline: %v; want context.DeadlineExceeded", err)
	}
	// The Conn's own (absent) deadline is back: a frame sent now is read.
	id = s.send(t, port)
	if frame, _, err := c.NextFrame(); err != nil {
		t.Errorf("NextFrame after a timed-out read: %v", err)
	} else if got, _ := s.id(frame); got != id {
		t.Errorf("read datagram %d; want %d", got, id)
	}
	c.Close()
	if _, _, err := c.NextFrameContext(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("NextFrameContext after Close: %v; want ErrClosed", err)
	}
}

// TestConnDeadlineWithFramesWaiting checks that a deadline in the past
// fails a read even when frames are waiting, with a ring as with recvmsg,
// and so does a future deadline once it has passed: frames are read before
// it, none after.
func TestConnDeadlineWithFramesWaiting(t *testing.T) { testConnDeadlineWithFramesWaiting(t, connRing) }

func testConnDeadlineWithFramesWaiting(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	c := m.listen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), &Config{RingBlockTimeout: time.Millisecond})
	s := newConnSender(t, "udp4")
	for range 4 {
		s.send(t, port)
	}
	connWaitStats(t, c, 4)
	if _, _, err := c.NextFrame(); err != nil { // the ring's block is now in hand
		t.Fatalf("NextFrame: %v", err)
	}
	if err := c.SetReadDeadline(aLongTimeAgo); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.NextFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("NextFrame past the deadline with frames waiting: %v; want os.ErrDeadlineExceeded", err)
	}
	if _, _, err := c.ReadFrame(make([]byte, 100)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrame past the deadline with frames waiting: %v; want os.ErrDeadlineExceeded", err)
	}

	// A deadline ahead lets waiting frames through until it passes.
	const ahead = 50 * time.Millisecond
	if err := c.SetReadDeadline(time.Now().Add(ahead)); err != nil {
		t.Fatal(err)
	}
	frame, _, err := c.NextFrame()
	if id, _ := s.id(frame); err != nil || id != 2 {
		t.Errorf("NextFrame before the deadline: datagram %d, %v; want 2", id, err)
	}
	time.Sleep(2 * ahead)
	if _, _, err := c.NextFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("NextFrame once the deadline has passed, frames waiting: %v; want os.ErrDeadlineExceeded", err)
	}

	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	for i := 3; i <= 4; i++ {
		frame, _, err := c.NextFrame()
		if id, _ := s.id(frame); err != nil || id != uint32(i) {
			t.Errorf("NextFrame without a deadline: datagram %d, %v; want %d", id, err, i)
		}
	}
}

// TestRingBlockTimeout checks that the kernel holds a frame in a block
// that is not full until the block timeout passes.
func TestRingBlockTimeout(t *testing.T) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	prog := connLoad(t, connUDPPortFilter(port, -1))
	slow := connListen(t, "lo", prog, &Config{RingBlockTimeout: time.Minute})
	quick := connListen(t, "lo", prog, &Config{RingBlockTimeout: time.Millisecond})
	s := newConnSender(t, "udp4")
	id := s.send(t, port)
	if err := quick.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	frame, _, err := quick.NextFrame()
	if got, _ := s.id(frame); err != nil || got != id {
		t.Fatalf("NextFrame with a 1 ms block timeout: datagram %d, %v; want %d", got, err, id)
	}
	if err := slow.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := slow.NextFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("NextFrame with a 1 minute block timeout: %v; want the frame held back, the deadline passing", err)
	}
	if st, err := slow.Stats(); err != nil || st.Received != 1 {
		t.Errorf("Stats = %+v, %v; want the frame received into the ring", st, err)
	}
}

// TestConnCloseHammer closes Conns, round after round, while goroutines
// read from them under traffic: with NextFrame, ReadFrame, or both at once,
// blocked or in the middle of a batch. Every frame read is checked byte for
// byte, during and after Close; a read may only end with ErrClosed. Run it
// with -race. (gopacket's afpacket faults here: google/gopacket#743.)
//
// Each round sends fewer datagrams than the ring holds, so the kernel
// writes each block at most once per round: a frame that a concurrent
// ReadFrame has formally invalidated is still not overwritten, and the
// byte-for-byte check holds for every reader.
func TestConnCloseHammer(t *testing.T) { testConnCloseHammer(t, connRing) }

func testConnCloseHammer(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	prog := connLoad(t, connUDPPortFilter(port, -1))
	s := newConnSender(t, "udp4")
	// 8 blocks of 64 KiB hold 2,700 of these frames (192 bytes each).
	cfg := &Config{RingBlockSize: 64 << 10, RingBlockCount: 8, RingBlockTimeout: time.Millisecond}
	const payload = 64
	perRound := 1500
	rounds := 300
	if testing.Short() || m.noRing {
		// Without a ring, Close has no memory to take away.
		rounds = 50
	}
	modes := []struct {
		name         string
		next, copies int  // goroutines reading with NextFrame and ReadFrame
		batch        bool // the NextFrame readers read with NextFrames
	}{
		{"NextFrame", 1, 0, false},
		{"ReadFrame", 0, 3, false},
		{"both", 1, 2, false},
		{"NextFrames", 1, 0, true},
		{"NextFrames and ReadFrame", 1, 2, true},
	}
	var frames, sentTotal atomic.Int64
	for round := range rounds {
		mode := modes[round%len(modes)]
		c := m.listen(t, "lo", prog, cfg)
		var wg sync.WaitGroup
		errc := make(chan error, mode.next+mode.copies)
		reader := func(zeroCopy bool) {
			defer wg.Done()
			buf := make([]byte, 2048)
			batch := make([][]byte, 8)
			infos := make([]packet.Info, len(batch))
			for {
				got := batch[:1]
				var err error
				switch {
				case zeroCopy && mode.batch:
					var n int
					n, err = c.NextFrames(batch, infos)
					got = batch[:n]
				case zeroCopy:
					got[0], _, err = c.NextFrame()
				default:
					var n int
					n, _, err = c.ReadFrame(buf)
					got[0] = buf[:n]
				}
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						errc <- fmt.Errorf("read: %v", err)
					}
					return
				}
				for _, frame := range got {
					if _, err := connCheckFrame(frame, s.marker, port, payload); err != nil {
						errc <- err
						return
					}
					frames.Add(1)
				}
				if zeroCopy && rand.IntN(8) == 0 {
					// Hold the frames across a likely Close, and check them
					// again: they must not have moved.
					time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
					for _, frame := range got {
						if _, err := connCheckFrame(frame, s.marker, port, payload); err != nil {
							errc <- fmt.Errorf("frame held across Close: %v", err)
							return
						}
					}
				}
			}
		}
		for range mode.next {
			wg.Add(1)
			go reader(true)
		}
		for range mode.copies {
			wg.Add(1)
			go reader(false)
		}
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			connFlood(t, s, port, perRound, payload)
		}()
		// Close while blocked (early), while iterating, or after the flood.
		time.Sleep(time.Duration(rand.IntN(6000)) * time.Microsecond)
		if err := c.Close(); err != nil {
			t.Fatalf("round %d (%s): Close: %v", round, mode.name, err)
		}
		wg.Wait()
		<-sent
		sentTotal.Add(int64(perRound))
		close(errc)
		for err := range errc {
			t.Fatalf("round %d (%s): %v", round, mode.name, err)
		}
		if round%50 == 49 {
			runtime.GC() // let lent rings go
		}
	}
	t.Logf("%d rounds: %d datagrams sent, %d frames read and checked", rounds, sentTotal.Load(), frames.Load())
	if frames.Load() < int64(rounds) {
		t.Errorf("only %d frames read in %d rounds: the readers hardly ran", frames.Load(), rounds)
	}
}

func TestConnNextFrameNoAllocs(t *testing.T) { testConnNextFrameNoAllocs(t, connRing) }

func testConnNextFrameNoAllocs(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	c := m.listen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), &Config{ReceiveBuffer: 4 << 20, RingBlockTimeout: time.Millisecond})
	s := newConnSender(t, "udp4")
	const runs = 100
	connFlood(t, s, port, runs+10, 64)
	if st := connWaitStats(t, c, runs+10); st.Received != runs+10 {
		t.Fatalf("Stats = %+v; want %d queued", st, runs+10)
	}
	// A deadline ahead, which a timer watches, must not make reads
	// allocate either.
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var reads int
	var readErr error
	allocs := testing.AllocsPerRun(runs, func() {
		frame, info, err := c.NextFrame()
		if err != nil {
			readErr = err
			return
		}
		if len(frame) == 106 && info.Length == 106 && !info.Time.IsZero() {
			reads++
		}
	})
	if readErr != nil {
		t.Fatalf("NextFrame: %v", readErr)
	}
	if reads != runs+1 {
		t.Fatalf("%d good reads; want %d", reads, runs+1)
	}
	if allocs != 0 {
		t.Errorf("NextFrame allocates %v times per frame; want 0", allocs)
	}

	// The 9 frames left, in batches of up to 4.
	frames, infos := make([][]byte, 4), make([]packet.Info, 4)
	got := 0
	allocs = testing.AllocsPerRun(2, func() {
		n, err := c.NextFrames(frames, infos)
		if err != nil {
			readErr = err
		}
		got += n
	})
	if readErr != nil {
		t.Fatalf("NextFrames: %v", readErr)
	}
	if got < 3 || got > 9 {
		t.Fatalf("NextFrames read %d frames in 3 calls; want 3 to 9", got)
	}
	if allocs != 0 {
		t.Errorf("NextFrames allocates %v times per batch; want 0", allocs)
	}
}

// BenchmarkConnRead measures reading frames already captured: a batch of
// datagrams is sent and captured with the timer stopped, then read. The
// figure is the cost of a read alone, per frame.
func BenchmarkConnRead(b *testing.B) {
	testutil.RequirePrivileged(b)
	port := connSink(b)
	prog := connLoad(b, connUDPPortFilter(port, -1))
	benchmarks := []struct {
		name     string
		noRing   bool
		zeroCopy bool
	}{
		{"ring/NextFrame", false, true},
		{"ring/ReadFrame", false, false},
		{"recvmsg/NextFrame", true, true},
		{"recvmsg/ReadFrame", true, false},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			// The default block timeout: a short one retires blocks nearly
			// empty while the flood runs and the reader waits, and the
			// ring runs out of blocks.
			c := connListen(b, "lo", prog, &Config{NoRing: bm.noRing, ReceiveBuffer: 16 << 20})
			s := newConnSender(b, "udp4")
			buf := make([]byte, 2048)
			const batch = 20000
			var want uint64
			left := 0
			b.ReportAllocs()
			for b.Loop() {
				if left == 0 {
					b.StopTimer()
					connFlood(b, s, port, batch, 64)
					want += batch
					if st := connWaitStats(b, c, want); st.Received+st.Drops < want || st.Drops != 0 {
						b.Fatalf("Stats = %+v; want %d received, none dropped", st, want)
					}
					time.Sleep(20 * time.Millisecond) // the last block retires

					left = batch
					b.StartTimer()
				}
				var err error
				if bm.zeroCopy {
					_, _, err = c.NextFrame()
				} else {
					_, _, err = c.ReadFrame(buf)
				}
				if err != nil {
					b.Fatal(err)
				}
				left--
			}
		})
	}
}

// TestConnDroppedWithDeadlineIsCollected checks that a Conn dropped without
// Close while a deadline an hour ahead is pending is still collected, its
// socket closed: the deadline's timer must not hold the Conn.
func TestConnDroppedWithDeadlineIsCollected(t *testing.T) {
	testutil.RequirePrivileged(t)
	prog := connLoad(t, connAcceptAll)
	socketFDs := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
				n++
			}
		}
		return n
	}
	before := socketFDs()
	func() {
		c, err := Listen("lo", prog, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}()
	for range 50 {
		if socketFDs() <= before {
			return
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("%d sockets open after the Conn was dropped, %d before: the Conn was not collected", socketFDs(), before)
}
