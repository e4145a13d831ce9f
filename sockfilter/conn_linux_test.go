package sockfilter

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/internal/tpacket"
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

// connMode says how a Conn test reads: from a ring, or with recvmsg(2).
// The tests that TestConnRecvmsg runs again take it as their argument.
type connMode struct{ noRing bool }

var (
	connRing    = connMode{noRing: false}
	connRecvmsg = connMode{noRing: true}
)

// config returns cfg, made to ask for no ring in recvmsg mode.
func (m connMode) config(cfg *Config) *Config {
	if !m.noRing {
		return cfg
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.NoRing = true
	return &c
}

// listen listens with m.config(cfg) and checks that the Conn is backed as
// the mode wants.
func (m connMode) listen(t testing.TB, ifname string, p *Program, cfg *Config) *Conn {
	t.Helper()
	c, err := Listen(ifname, p, m.config(cfg))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	wantRing := !m.noRing && (cfg == nil || !cfg.NoRing)
	if ring, why := c.Ring(); ring != wantRing {
		t.Fatalf("Conn.Ring() = %v, %v; want %v", ring, why, wantRing)
	}
	return c
}

// connListen listens from a ring, as connRing.listen does.
func connListen(t testing.TB, ifname string, p *Program, cfg *Config) *Conn {
	t.Helper()
	return connRing.listen(t, ifname, p, cfg)
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

func TestConnAcceptAllSeesTraffic(t *testing.T) { testConnAcceptAllSeesTraffic(t, connRing) }

func testConnAcceptAllSeesTraffic(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	c := m.listen(t, "lo", connLoad(t, connAcceptAll), nil)
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

func TestConnDropAllSeesNothing(t *testing.T) { testConnDropAllSeesNothing(t, connRing) }

func testConnDropAllSeesNothing(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	c := m.listen(t, "lo", connLoad(t, connDropAll), nil)
	// A second socket on the same traffic proves it flowed.
	witness := m.listen(t, "lo", connLoad(t, connAcceptAll), nil)
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

func TestConnUDPPortFilter(t *testing.T) { testConnUDPPortFilter(t, connRing) }

func testConnUDPPortFilter(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	match, other1, other2 := connSink(t), connSink(t), connSink(t)
	c := m.listen(t, "lo", connLoad(t, connUDPPortFilter(match, -1)), nil)
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

func TestConnTruncation(t *testing.T) { testConnTruncation(t, connRing) }

func testConnTruncation(t *testing.T, m connMode) {
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
			c := m.listen(t, "lo", connLoad(t, connUDPPortFilter(port, tt.keep)), nil)
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

func TestConnDirections(t *testing.T) { testConnDirections(t, connRing) }

// testConnDirections checks what each Direction shows on lo, where each
// packet is both sent and received: once, as incoming, by default; twice
// with LoopbackOutgoing.
func testConnDirections(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	port := connSink(t)
	tests := []struct {
		name string
		cfg  *Config
		want []packet.Direction // each datagram's copies
	}{
		{"nil config: both, each packet once", nil, []packet.Direction{packet.DirectionHost}},
		{"inout", &Config{Direction: DirectionInOut}, []packet.Direction{packet.DirectionHost}},
		{"in", &Config{Direction: DirectionIn}, []packet.Direction{packet.DirectionHost}},
		{"out", &Config{Direction: DirectionOut}, []packet.Direction{packet.DirectionOutgoing}},
		{"inout, loopback outgoing", &Config{LoopbackOutgoing: true}, []packet.Direction{packet.DirectionHost, packet.DirectionOutgoing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := m.listen(t, "lo", connLoad(t, connUDPPortFilter(port, -1)), tt.cfg)
			s := newConnSender(t, "udp4")
			const n = 10
			for range n {
				s.send(t, port)
			}
			frames := connReadAll(t, c, s, 300*time.Millisecond)
			if len(frames) != n*len(tt.want) {
				t.Fatalf("read %d frames for %d datagrams; want %d", len(frames), n, n*len(tt.want))
			}
			seen := make(map[uint32][]packet.Direction)
			for _, f := range frames {
				id, _ := s.id(f.data)
				seen[id] = append(seen[id], f.info.Direction)
			}
			for id := uint32(1); id <= n; id++ {
				got := seen[id]
				slices.Sort(got)
				if !slices.Equal(got, tt.want) {
					t.Errorf("datagram %d seen as %v; want %v", id, got, tt.want)
				}
			}
		})
	}
}

func TestConnReadDeadline(t *testing.T) { testConnReadDeadline(t, connRing) }

func testConnReadDeadline(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	c := m.listen(t, "lo", connLoad(t, connDropAll), nil)
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

func TestConnMissingInterface(t *testing.T) { testConnMissingInterface(t, connRing) }

func testConnMissingInterface(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	_, err := Listen("nope0", connLoad(t, connAcceptAll), m.config(nil))
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
	memTotal, err := tpacket.MemTotal()
	if err != nil {
		t.Fatal(err)
	}
	// The fewest blocks of MaxRingBlockSize more than a quarter of the
	// machine's memory.
	overCount := int(memTotal/4/MaxRingBlockSize) + 1
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
		{"NUL in the name", "lo\x00xx", prog, nil, `listen on interface "lo\x00xx": interface name contains a NUL byte at 2`},
		{"negative buffer", "lo", prog, &Config{ReceiveBuffer: -1}, `listen on interface "lo": receive buffer size -1 is negative`},
		{"buffer past the kernel's maximum", "lo", prog, &Config{ReceiveBuffer: MaxReceiveBuffer + 1}, `listen on interface "lo": receive buffer size 1073741824 is more than the kernel takes, 1073741823 bytes (INT_MAX/2, which it doubles)`},
		{"block size not in pages", "lo", prog, &Config{RingBlockSize: 1000}, `listen on interface "lo": ring block size 1000 is not a multiple of the page size (4096 bytes)`},
		{"negative block size", "lo", prog, &Config{RingBlockSize: -4096}, `listen on interface "lo": ring block size -4096 is not a multiple of the page size (4096 bytes)`},
		{"block size past the maximum", "lo", prog, &Config{RingBlockSize: MaxRingBlockSize + 4096}, `listen on interface "lo": ring block size 67112960 is more than the maximum of 67108864 (64 MiB)`},
		{"negative block count", "lo", prog, &Config{RingBlockCount: -1}, `listen on interface "lo": ring block count -1 is not between 1 and 65535`},
		{"too many blocks", "lo", prog, &Config{RingBlockCount: 65536}, `listen on interface "lo": ring block count 65536 is not between 1 and 65535`},
		{"ring past a quarter of the memory", "lo", prog, &Config{RingBlockSize: MaxRingBlockSize, RingBlockCount: overCount},
			fmt.Sprintf(`listen on interface "lo": ring of %d blocks of 64 MiB`, overCount)},
		{"a TiB", "lo", prog, &Config{RingBlockSize: MaxRingBlockSize, RingBlockCount: 16384}, `listen on interface "lo": ring of 16384 blocks of 64 MiB (1 TiB) is more than a ring may take, `},
		{"negative timeout", "lo", prog, &Config{RingBlockTimeout: -time.Millisecond}, `listen on interface "lo": ring block timeout -1ms is negative`},
		{"huge timeout", "lo", prog, &Config{RingBlockTimeout: 50 * 24 * time.Hour}, `listen on interface "lo": ring block timeout 1200h0m0s is too long`},
		{"unknown direction", "lo", prog, &Config{Direction: 3}, `listen on interface "lo": unknown direction 3: want DirectionInOut, DirectionIn or DirectionOut`},
		{"loopback outgoing, in", "lo", prog, &Config{Direction: DirectionIn, LoopbackOutgoing: true}, `listen on interface "lo": Config.LoopbackOutgoing applies to DirectionInOut, not in`},
		{"promiscuous on any", AnyInterface, prog, &Config{Promiscuous: true}, `listen on interface "any": promiscuous mode needs an interface, not all of them; listen without Config.Promiscuous`},
	}
	if math.MaxInt > math.MaxInt32 { // 2^31 needs a 64-bit int
		twoGiB := uint64(1) << 31
		tests = append(tests, struct {
			name   string
			ifname string
			prog   *Program
			cfg    *Config
			want   string
		}{"2 GiB buffer", "lo", prog, &Config{ReceiveBuffer: int(twoGiB)}, `listen on interface "lo": receive buffer size 2147483648 is more than the kernel takes`})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Listen(tt.ifname, tt.prog, tt.cfg)
			if err == nil {
				c.Close()
				t.Fatal("Listen succeeded")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q; want one starting %q", err, tt.want)
			}
		})
	}
	t.Run("the limit says how to change the ring", func(t *testing.T) {
		_, err := Listen("lo", prog, &Config{RingBlockSize: MaxRingBlockSize, RingBlockCount: overCount})
		if err == nil || !strings.Contains(err.Error(), "ask for fewer or smaller blocks (Config.RingBlockCount, Config.RingBlockSize)") {
			t.Errorf("error %v; want the hint", err)
		}
	})
}

// TestMaxRingBlockSize pins MaxRingBlockSize, which builds on every system,
// to the limit the Linux ring code applies.
func TestMaxRingBlockSize(t *testing.T) {
	if MaxRingBlockSize != tpacket.MaxBlockSize || MaxReceiveBuffer != math.MaxInt32/2 {
		t.Errorf("MaxRingBlockSize %d, tpacket.MaxBlockSize %d; MaxReceiveBuffer %d, INT_MAX/2 %d", MaxRingBlockSize, tpacket.MaxBlockSize, MaxReceiveBuffer, math.MaxInt32/2)
	}
}

func TestInterfaceLinkType(t *testing.T) {
	tests := []struct {
		ifname string
		want   packet.LinkType
		err    string
	}{
		{"lo", packet.LinkEthernet, ""},
		{AnyInterface, packet.LinkLinuxSLL2, ""},
		{"lo\x00xx", 0, `interface "lo\x00xx": interface name contains a NUL byte at 2`},
		{"", 0, `interface "": interface name is empty`},
		{"nope0", 0, `interface "nope0": no such network interface`},
	}
	for _, tt := range tests {
		got, err := InterfaceLinkType(tt.ifname)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("InterfaceLinkType(%q) = %v, %v; want %v", tt.ifname, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf("InterfaceLinkType(%q) error %v; want %q", tt.ifname, err, tt.err)
		}
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
