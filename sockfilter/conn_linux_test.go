package sockfilter

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
	"golang.org/x/sys/unix"
)

// The programs the Conn tests attach.
var (
	connAcceptAll = asm.Instructions{
		asm.Mov.Imm(asm.R0, -1), // r0 = -1: keep the whole frame
		asm.Exit(),
	}
	connDropAll = asm.Instructions{
		asm.Mov.Imm(asm.R0, 0), // r0 = 0: drop the frame
		asm.Exit(),
	}
)

// connUDPPortFilter keeps keep bytes (-1: all) of the IPv4 UDP datagrams to
// port on Ethernet-like links and drops every other frame. Its packet loads
// are relative to the link-layer header (SKF_LL_OFF), so it gives the same
// verdict on a live socket, whose data starts at the Ethernet header, and
// under Program.Test, whose data starts at the IP header.
func connUDPPortFilter(port uint16, keep int32) asm.Instructions {
	ll := skb.LLOff
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),         // r6 = ctx, for the legacy loads
		asm.LoadAbs(ll+12, asm.Half),        // r0 = ethertype
		asm.JNE.Imm(asm.R0, 0x0800, "drop"), // not IPv4
		asm.LoadAbs(ll+14+9, asm.Byte),      // r0 = IP protocol
		asm.JNE.Imm(asm.R0, unix.IPPROTO_UDP, "drop"),
		asm.LoadAbs(ll+14+6, asm.Half),           // r0 = flags and fragment offset
		asm.JSet.Imm(asm.R0, 0x1fff, "drop"),     // a later fragment: no UDP header
		asm.LoadAbs(ll+14, asm.Byte),             // r0 = version and IHL
		asm.And.Imm(asm.R0, 0x0f),                // r0 = IHL, in 32-bit words
		asm.LSh.Imm(asm.R0, 2),                   // r0 = IP header length in bytes
		asm.Mov.Reg(asm.R7, asm.R0),              // r7 = IP header length
		asm.LoadInd(asm.R7, ll+14+2, asm.Half),   // r0 = UDP destination port
		asm.JNE.Imm(asm.R0, int32(port), "drop"), // another port
		asm.Mov.Imm(asm.R0, keep),                // keep the frame
		asm.Exit(),
		asm.Mov.Imm(asm.R0, 0).WithLabel("drop"), // drop it
		asm.Exit(),
	}
}

func connLoad(t testing.TB, insns asm.Instructions) *Program {
	t.Helper()
	p, err := Load(insns, nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// connNoRing makes the Conn tests read with recvmsg(2) instead of from a
// ring; TestConnRecvmsg sets it to run them again that way.
var connNoRing bool

// connConfig returns cfg, made to ask for no ring when connNoRing is set.
func connConfig(cfg *Config) *Config {
	if !connNoRing {
		return cfg
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.NoRing = true
	return &c
}

// connListen listens with connConfig(cfg) and checks that the Conn is
// backed as the test run wants.
func connListen(t testing.TB, ifname string, p *Program, cfg *Config) *Conn {
	t.Helper()
	c, err := Listen(ifname, p, connConfig(cfg))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	wantRing := !connNoRing && (cfg == nil || !cfg.NoRing)
	if ring, why := c.Ring(); ring != wantRing {
		t.Fatalf("Conn.Ring() = %v, %v; want %v", ring, why, wantRing)
	}
	return c
}

// connSink opens a UDP socket on 127.0.0.1 to receive datagrams (so that
// none of them draws an ICMP port unreachable) and returns its port.
func connSink(t testing.TB) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// connSender sends numbered datagrams whose payload starts with a marker
// unique to the test, so that frames can be told from other traffic on lo.
type connSender struct {
	c      *net.UDPConn
	marker [8]byte
	seq    uint32
	buf    []byte
}

func newConnSender(t testing.TB, network string) *connSender {
	t.Helper()
	laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if network == "udp6" {
		laddr = &net.UDPAddr{IP: net.IPv6loopback}
	}
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		t.Fatalf("listen %s: %v", network, err)
	}
	t.Cleanup(func() { c.Close() })
	s := &connSender{c: c}
	rand.Read(s.marker[:])
	return s
}

// send sends a datagram to port on the sender's loopback address and
// returns its number.
func (s *connSender) send(t testing.TB, port uint16) uint32 {
	t.Helper()
	s.seq++
	s.buf = append(append(s.buf[:0], s.marker[:]...), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(s.buf[8:], s.seq)
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	if s.c.LocalAddr().(*net.UDPAddr).IP.To4() == nil {
		addr = netip.AddrPortFrom(netip.IPv6Loopback(), port)
	}
	if _, err := s.c.WriteToUDPAddrPort(s.buf, addr); err != nil {
		t.Fatalf("send to %v: %v", addr, err)
	}
	return s.seq
}

// id returns the number of the sender's datagram in frame, if it holds one.
func (s *connSender) id(frame []byte) (uint32, bool) {
	i := bytes.Index(frame, s.marker[:])
	if i < 0 || i+12 > len(frame) {
		return 0, false
	}
	return binary.BigEndian.Uint32(frame[i+8:]), true
}

// connFrame is a frame a test read.
type connFrame struct {
	data []byte
	info packet.Info
}

// connReadAll reads frames from c until none has come for quiet, and
// returns those that carry one of s's datagrams (all of them if s is nil).
func connReadAll(t testing.TB, c *Conn, s *connSender, quiet time.Duration) []connFrame {
	t.Helper()
	var frames []connFrame
	buf := make([]byte, 1<<16)
	for {
		if err := c.SetReadDeadline(time.Now().Add(quiet)); err != nil {
			t.Fatalf("SetReadDeadline: %v", err)
		}
		n, info, err := c.ReadFrame(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return frames
		}
		if err != nil {
			t.Fatalf("ReadFrame: %v", err)
		}
		if s != nil {
			if _, ok := s.id(buf[:n]); !ok {
				continue
			}
		}
		frames = append(frames, connFrame{data: bytes.Clone(buf[:n]), info: info})
		if len(frames) > 10000 {
			t.Fatalf("more than 10000 frames: the filter lets too much through")
		}
	}
}

// connIDs counts how many frames carry each of s's datagrams.
func connIDs(s *connSender, frames []connFrame) map[uint32]int {
	ids := make(map[uint32]int)
	for _, f := range frames {
		if id, ok := s.id(f.data); ok {
			ids[id]++
		}
	}
	return ids
}

func loIndex(t testing.TB) int {
	t.Helper()
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	return ifi.Index
}

func TestConnAcceptAllSeesTraffic(t *testing.T) {
	testutil.RequirePrivileged(t)
	c := connListen(t, "lo", connLoad(t, connAcceptAll), nil)
	if c.Interface() != "lo" || c.Ifindex() != loIndex(t) || c.LinkType() != packet.LinkEthernet {
		t.Fatalf("Interface, Ifindex, LinkType = %q, %d, %v; want lo, %d, EN10MB", c.Interface(), c.Ifindex(), c.LinkType(), loIndex(t))
	}
	s := newConnSender(t, "udp4")
	port := connSink(t)
	before := time.Now()
	const n = 5
	for range n {
		s.send(t, port)
	}
	frames := connReadAll(t, c, s, 300*time.Millisecond)
	after := time.Now()
	ids := connIDs(s, frames)
	for id := uint32(1); id <= n; id++ {
		if ids[id] != 1 {
			t.Errorf("datagram %d seen %d times, want 1", id, ids[id])
		}
	}
	for _, f := range frames {
		// 14 Ethernet + 20 IPv4 + 8 UDP + 12 payload.
		if len(f.data) != 54 || f.info.Length != 54 {
			t.Errorf("frame of %d bytes, info.Length %d; want 54 and 54", len(f.data), f.info.Length)
		}
		if f.info.Ifindex != c.Ifindex() || f.info.Direction != packet.DirectionHost || f.info.HasVLAN {
			t.Errorf("info = %+v; want ifindex %d, direction host, no VLAN", f.info, c.Ifindex())
		}
		if f.info.Time.Before(before.Add(-time.Second)) || f.info.Time.After(after) {
			t.Errorf("timestamp %v not within [%v, %v]", f.info.Time, before, after)
		}
	}
}

func TestConnDropAllSeesNothing(t *testing.T) {
	testutil.RequirePrivileged(t)
	c := connListen(t, "lo", connLoad(t, connDropAll), nil)
	// A second socket on the same traffic proves it flowed.
	witness := connListen(t, "lo", connLoad(t, connAcceptAll), nil)
	s := newConnSender(t, "udp4")
	port := connSink(t)
	for range 20 {
		s.send(t, port)
	}
	if got := len(connReadAll(t, witness, s, 300*time.Millisecond)); got != 20 {
		t.Fatalf("the accept-all witness saw %d of 20 datagrams", got)
	}
	if frames := connReadAll(t, c, nil, 100*time.Millisecond); len(frames) != 0 {
		t.Fatalf("drop-all read %d frames, first %x", len(frames), frames[0].data)
	}
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stats{}) {
		t.Errorf("Stats = %+v; want zero: rejected frames are not counted", st)
	}
}

func TestConnUDPPortFilter(t *testing.T) {
	testutil.RequirePrivileged(t)
	match, other1, other2 := connSink(t), connSink(t), connSink(t)
	c := connListen(t, "lo", connLoad(t, connUDPPortFilter(match, -1)), nil)
	s := newConnSender(t, "udp4")
	want := make(map[uint32]int)
	for i := range 30 {
		switch i % 3 {
		case 0:
			want[s.send(t, match)] = 1
		case 1:
			s.send(t, other1)
		case 2:
			s.send(t, other2)
		}
	}
	// Frames not from s (there should be none) fail the test too.
	frames := connReadAll(t, c, nil, 300*time.Millisecond)
	if len(frames) != len(want) {
		t.Errorf("read %d frames; want %d", len(frames), len(want))
	}
	got := connIDs(s, frames)
	for id, n := range want {
		if got[id] != n {
			t.Errorf("datagram %d to the matching port seen %d times; want 1", id, got[id])
		}
	}
	for id := range got {
		if want[id] == 0 {
			t.Errorf("datagram %d to another port was seen", id)
		}
	}
}

func TestConnTruncation(t *testing.T) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	tests := []struct {
		name   string
		keep   int32 // the filter's return value
		bufLen int
		wantN  int
	}{
		{"whole", -1, 2048, 54},
		{"cut by filter", 20, 2048, 20},
		{"cut by buffer", -1, 10, 10},
		{"filter and buffer", 30, 16, 16},
		{"filter keeps more than there is", 1000, 2048, 54},
		{"empty buffer", -1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connListen(t, "lo", connLoad(t, connUDPPortFilter(port, tt.keep)), nil)
			s := newConnSender(t, "udp4")
			s.send(t, port)
			buf := make([]byte, tt.bufLen)
			if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
				t.Fatal(err)
			}
			n, info, err := c.ReadFrame(buf)
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if n != tt.wantN || info.Length != 54 {
				t.Errorf("n, info.Length = %d, %d; want %d, 54", n, info.Length, tt.wantN)
			}
		})
	}
}

func TestConnDirections(t *testing.T) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	tests := []struct {
		name string
		cfg  *Config
		want []packet.Direction
	}{
		{"nil config: incoming only", nil, []packet.Direction{packet.DirectionHost}},
		{"incoming only", &Config{}, []packet.Direction{packet.DirectionHost}},
		{"both", &Config{Outgoing: true}, []packet.Direction{packet.DirectionOutgoing, packet.DirectionHost}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connListen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), tt.cfg)
			s := newConnSender(t, "udp4")
			const n = 10
			for range n {
				s.send(t, port)
			}
			frames := connReadAll(t, c, s, 300*time.Millisecond)
			if len(frames) != n*len(tt.want) {
				t.Fatalf("read %d frames for %d datagrams; want %d", len(frames), n, n*len(tt.want))
			}
			// Each datagram is seen once in each wanted direction.
			seen := make(map[uint32]map[packet.Direction]int)
			for _, f := range frames {
				id, _ := s.id(f.data)
				if seen[id] == nil {
					seen[id] = make(map[packet.Direction]int)
				}
				seen[id][f.info.Direction]++
			}
			for id := uint32(1); id <= n; id++ {
				for _, d := range tt.want {
					if seen[id][d] != 1 {
						t.Errorf("datagram %d seen %d times as %v; want once (all: %v)", id, seen[id][d], d, seen[id])
					}
				}
			}
		})
	}
}

func TestConnReadDeadline(t *testing.T) {
	testutil.RequirePrivileged(t)
	c := connListen(t, "lo", connLoad(t, connDropAll), nil)
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err := c.ReadFrame(make([]byte, 100))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrame past the deadline: %v; want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v is not a net.Error with Timeout", err)
	}
	if elapsed := time.Since(start); elapsed < 40*time.Millisecond {
		t.Errorf("ReadFrame returned after %v, before its deadline", elapsed)
	}
}

func TestConnMissingInterface(t *testing.T) {
	testutil.RequirePrivileged(t)
	_, err := Listen("nope0", connLoad(t, connAcceptAll), connConfig(nil))
	if err == nil {
		t.Fatal("Listen on a missing interface succeeded")
	}
	t.Log(err)
	if !errors.Is(err, unix.ENODEV) || !strings.Contains(err.Error(), `"nope0"`) || !strings.Contains(err.Error(), "no such network interface") {
		t.Errorf("error %q: want one naming \"nope0\", saying no such network interface, matching ENODEV", err)
	}
}

// TestListenBadArguments needs no privileges: the arguments are checked
// before a socket is opened.
func TestListenBadArguments(t *testing.T) {
	prog := new(Program) // never used: each call fails before
	tests := []struct {
		name   string
		ifname string
		prog   *Program
		cfg    *Config
		want   string
	}{
		{"nil program", "lo", nil, nil, `listen on interface "lo": program is nil`},
		{"empty name", "", prog, nil, `listen on interface "": interface name is empty`},
		{"long name", "abcdefghijklmnopq", prog, nil, `listen on interface "abcdefghijklmnopq": interface name is longer than 15 bytes`},
		{"negative buffer", "lo", prog, &Config{ReceiveBuffer: -1}, `listen on interface "lo": receive buffer size -1 is negative`},
		{"block size not in pages", "lo", prog, &Config{RingBlockSize: 1000}, `listen on interface "lo": ring block size 1000 is not a multiple of the page size (4096 bytes) below 2 GiB`},
		{"negative block size", "lo", prog, &Config{RingBlockSize: -4096}, `listen on interface "lo": ring block size -4096 is not a multiple of the page size (4096 bytes) below 2 GiB`},
		{"negative block count", "lo", prog, &Config{RingBlockCount: -1}, `listen on interface "lo": ring block count -1 is not between 1 and 65535`},
		{"too many frames", "lo", prog, &Config{RingBlockSize: 1<<31 - 4096, RingBlockCount: 65535}, `listen on interface "lo": ring of 65535 blocks of 2147479552 bytes is too large`},
		{"too many blocks", "lo", prog, &Config{RingBlockCount: 65536}, `listen on interface "lo": ring block count 65536 is not between 1 and 65535`},
		{"negative timeout", "lo", prog, &Config{RingBlockTimeout: -time.Millisecond}, `listen on interface "lo": ring block timeout -1ms is negative`},
		{"huge timeout", "lo", prog, &Config{RingBlockTimeout: 50 * 24 * time.Hour}, `listen on interface "lo": ring block timeout 1200h0m0s is too long`},
	}
	if math.MaxInt > math.MaxInt32 { // a 2 GiB int needs 64 bits
		twoGiB := uint64(1) << 31
		tests = append(tests, struct {
			name   string
			ifname string
			prog   *Program
			cfg    *Config
			want   string
		}{"2 GiB block size", "lo", prog, &Config{RingBlockSize: int(twoGiB)}, `listen on interface "lo": ring block size 2147483648 is not a multiple of the page size (4096 bytes) below 2 GiB`})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Listen(tt.ifname, tt.prog, tt.cfg)
			if err == nil {
				c.Close()
				t.Fatal("Listen succeeded")
			}
			if err.Error() != tt.want {
				t.Errorf("error %q; want %q", err, tt.want)
			}
		})
	}
}

func TestLinkTypeFromARPHRD(t *testing.T) {
	tests := []struct {
		hatype  uint16
		want    packet.LinkType
		wantErr string
	}{
		{unix.ARPHRD_ETHER, packet.LinkEthernet, ""},
		{unix.ARPHRD_LOOPBACK, packet.LinkEthernet, ""},
		{unix.ARPHRD_NONE, packet.LinkRawIP, ""},
		{unix.ARPHRD_RAWIP, packet.LinkRawIP, ""},
		{unix.ARPHRD_SIT, 0, "unsupported link type ARPHRD_SIT"},
		{unix.ARPHRD_IEEE80211_RADIOTAP, 0, "unsupported link type ARPHRD_IEEE80211_RADIOTAP"},
		{9999, 0, "unsupported link type ARPHRD 9999"},
	}
	for _, tt := range tests {
		got, err := linkTypeFromARPHRD(tt.hatype)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("linkTypeFromARPHRD(%d) error %v; want %q", tt.hatype, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("linkTypeFromARPHRD(%d) = %v, %v; want %v", tt.hatype, got, err, tt.want)
		}
	}
}
