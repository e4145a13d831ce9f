package sockfilter

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// everyFrame is a filter that keeps every frame whole.
var everyFrame = asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Exit()}

// liveFrames listens on ifname with a Conn that copies every frame, for
// packet.Parse to decode, beside a RecordConn with cfg, for the kernel to
// decode: the two see the same frames.
func liveFrames(t *testing.T, ifname string, cfg *RecordConfig) (*Conn, *RecordConn) {
	t.Helper()
	p, err := Load(everyFrame, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var ccfg *Config
	if cfg != nil {
		ccfg = &Config{Direction: cfg.Direction, LoopbackOutgoing: cfg.LoopbackOutgoing}
	}
	c, err := Listen(ifname, p, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc, err := ListenRecords(ifname, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return c, rc
}

// parsedFrames reads frames from c until none comes for quiet, and
// returns Parse's records of them.
func parsedFrames(t *testing.T, c *Conn, quiet time.Duration) []packet.Record {
	t.Helper()
	var recs []packet.Record
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		frame, info, err := c.NextFrame()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return recs
		}
		if err != nil {
			t.Fatal(err)
		}
		var r packet.Record
		packet.Parse(frame, c.LinkType(), &info, &r)
		recs = append(recs, r)
	}
}

// kernelRecords reads records from rc until none comes for quiet.
func kernelRecords(t *testing.T, rc *RecordConn, quiet time.Duration) []packet.Record {
	t.Helper()
	var recs []packet.Record
	buf := make([]packet.Record, 64)
	infos := make([]packet.Info, 64)
	for {
		rc.SetReadDeadline(time.Now().Add(quiet))
		n, err := rc.NextRecords(buf, infos)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return recs
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range buf[:n] {
			if infos[i].Time != r.Time || infos[i].Ifindex != r.Ifindex || infos[i].Direction != r.Direction || infos[i].Length != r.Length {
				t.Errorf("info %+v does not agree with its record %+v", infos[i], r)
			}
		}
		recs = append(recs, buf[:n]...)
	}
}

// compareLive matches the kernel's records with Parse's, which must be
// the same frames (in an order that may differ), and compares them field
// by field, the time within maxSkew of the socket's time stamp.
func compareLive(t *testing.T, kernel, parsed []packet.Record, maxSkew time.Duration) {
	t.Helper()
	if len(kernel) != len(parsed) {
		t.Errorf("%d records from the kernel, %d frames parsed", len(kernel), len(parsed))
	}
	pending := map[packet.Record][]time.Time{}
	for _, r := range parsed {
		k := r
		k.Time = time.Time{}
		pending[k] = append(pending[k], r.Time)
	}
	var skews []time.Duration
	diffs := 0
	for _, r := range kernel {
		k := r
		k.Time = time.Time{}
		times := pending[k]
		if len(times) == 0 {
			diffs++
			if diffs <= 10 {
				t.Errorf("kernel record %+v: no frame Parse decoded so", r)
			}
			continue
		}
		skews = append(skews, r.Time.Sub(times[0]))
		pending[k] = times[1:]
	}
	for k, times := range pending {
		if len(times) > 0 {
			diffs++
			if diffs <= 20 {
				t.Errorf("Parse's record %+v: no kernel record like it", k)
			}
		}
	}
	if diffs != 0 {
		t.Errorf("%d records differ", diffs)
	}
	if len(skews) == 0 {
		return
	}
	slices.Sort(skews)
	t.Logf("%d records equal; kernel time less the socket's: min %v, median %v, max %v", len(skews), skews[0], skews[len(skews)/2], skews[len(skews)-1])
	if skews[0] < -maxSkew || skews[len(skews)-1] > maxSkew {
		t.Errorf("kernel time stamps from %v to %v off the socket's; want within %v", skews[0], skews[len(skews)-1], maxSkew)
	}
}

// pinned runs fn on a thread bound to one CPU, so that the frames it
// sends are received on that CPU, in order.
func pinned(t *testing.T, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	for cpu := range 1024 {
		if old.IsSet(cpu) {
			one.Set(cpu)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &old)
	fn()
}

// frameSender returns a function that sends a frame out of the interface
// ifname, of the caller's network namespace, with a packet socket.
func frameSender(t *testing.T, ifname string) func([]byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return func(frame []byte) {
		t.Helper()
		if err := unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
			t.Fatalf("send frame (% x): %v", frame, err)
		}
	}
}

// TestRecordsLiveVeth sends every Ethernet frame of the corpus and
// generated ones out of one end of a veth pair, and compares the kernel's
// records of them with Parse's of the frames a Conn reads: on the other
// end, where the frames arrive (host, broadcast, multicast or otherhost,
// and their outer VLAN tags taken out by the receive path, which the
// records count as Parse does from the Info), and on the sending end,
// where they are outgoing; and through perf buffers instead of the ring
// buffer. The records' time stamps must be within 50 ms of the socket's.
func TestRecordsLiveVeth(t *testing.T) {
	testutil.RequirePrivileged(t)
	frames := [][]byte{}
	for _, f := range testutil.FramesOf(t, testutil.LinkEthernet) {
		frames = append(frames, f.Data)
	}
	frames = append(frames, testutil.GenFrames(15, 2000)...)
	for _, side := range []string{"receiving", "sending", "receiving with perf buffers"} {
		t.Run(side, func(t *testing.T) {
			v := testutil.NewVeth(t)
			var c *Conn
			var rc *RecordConn
			var send func([]byte)
			v.NS.Do(t, func() {
				switch side {
				case "receiving":
					c, rc = liveFrames(t, v.A, nil)
				case "sending":
					c, rc = liveFrames(t, v.B, &RecordConfig{Direction: DirectionOut})
				default:
					c, rc = liveFrames(t, v.A, &RecordConfig{Perf: true, PerfBufferSize: 1 << 20})
				}
				send = frameSender(t, v.B)
			})
			pinned(t, func() {
				for _, f := range frames {
					send(f)
				}
			})
			kernel := kernelRecords(t, rc, 300*time.Millisecond)
			parsed := parsedFrames(t, c, 100*time.Millisecond)
			if len(parsed) < len(frames)*9/10 {
				t.Fatalf("the Conn read %d of the %d frames sent", len(parsed), len(frames))
			}
			compareLive(t, kernel, parsed, 50*time.Millisecond)
			for _, r := range kernel {
				if r.Ifindex != rc.Ifindex() {
					t.Fatalf("record of interface %d; want %d", r.Ifindex, rc.Ifindex())
				}
			}
			st, err := rc.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.Records != uint64(len(kernel)) || st.Lost != 0 || st.Unreadable != 0 || st.Socket != (Stats{}) {
				t.Errorf("Stats = %+v; want %d records, none lost, nothing queued on the socket", st, len(kernel))
			}
		})
	}
}

// TestRecordsLiveLoopback compares the records of the traffic of UDP and
// TCP over IPv4 and IPv6 on lo with Parse's of the same frames.
func TestRecordsLiveLoopback(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	ns.Exec(t, "sysctl", "-q", "-w", "net.ipv6.conf.lo.disable_ipv6=0")
	var c *Conn
	var rc *RecordConn
	ns.Do(t, func() {
		c, rc = liveFrames(t, "lo", nil)
		pinned(t, func() { loopbackTraffic(t) })
	})
	kernel := kernelRecords(t, rc, 300*time.Millisecond)
	parsed := parsedFrames(t, c, 100*time.Millisecond)
	compareLive(t, kernel, parsed, 50*time.Millisecond)
	protos := map[packet.Proto]int{}
	for _, r := range kernel {
		protos[r.Proto]++
	}
	if protos[packet.ProtoUDP] < 20 || protos[packet.ProtoTCP] < 10 {
		t.Errorf("records by protocol %v; want at least 20 UDP and 10 TCP", protos)
	}
}

// loopbackTraffic sends UDP datagrams and makes TCP connections over
// 127.0.0.1 and ::1.
func loopbackTraffic(t *testing.T) {
	t.Helper()
	for _, network := range []string{"udp4", "udp6"} {
		addr := "127.0.0.1:0"
		if network == "udp6" {
			addr = "[::1]:0"
		}
		sink, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial(network, sink.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			fmt.Fprintf(c, "datagram %d", i)
		}
		c.Close()
		sink.Close()
	}
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			s, err := l.Accept()
			if err == nil {
				buf := make([]byte, 64)
				s.Read(buf)
				s.Write([]byte("reply"))
				s.Close()
			}
			done <- err
		}()
		c, err := net.Dial(network, l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("hello"))
		buf := make([]byte, 64)
		c.Read(buf)
		c.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
}
