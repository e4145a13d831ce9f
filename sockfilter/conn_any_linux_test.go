package sockfilter

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
	"golang.org/x/sys/unix"
)

func TestConnAny(t *testing.T) { testConnAny(t, connRing) }

// testConnAny listens on AnyInterface in a namespace with lo and a veth
// pair, and checks the frames of each Direction byte for byte: an SLL2
// header naming the interface, then the packet from its network header;
// a UDP datagram on lo once (its outgoing copy dropped), a frame sent from
// one veth end to the other twice (outgoing on one, incoming on the other).
func testConnAny(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	tests := []struct {
		name    string
		dir     Direction
		loopOut bool // Config.LoopbackOutgoing
		// want: for each kind of frame, the interface and packet type of
		// each copy seen.
		lo, veth []anyCopy
	}{
		{"inout", DirectionInOut, false, []anyCopy{{"lo", unix.PACKET_HOST}}, []anyCopy{{"pbveth0", unix.PACKET_BROADCAST}, {"pbveth1", unix.PACKET_OUTGOING}}},
		{"inout, loopback outgoing", DirectionInOut, true, []anyCopy{{"lo", unix.PACKET_HOST}, {"lo", unix.PACKET_OUTGOING}}, []anyCopy{{"pbveth0", unix.PACKET_BROADCAST}, {"pbveth1", unix.PACKET_OUTGOING}}},
		{"in", DirectionIn, false, []anyCopy{{"lo", unix.PACKET_HOST}}, []anyCopy{{"pbveth0", unix.PACKET_BROADCAST}}},
		{"out", DirectionOut, false, []anyCopy{{"lo", unix.PACKET_OUTGOING}}, []anyCopy{{"pbveth1", unix.PACKET_OUTGOING}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testutil.NewVeth(t)
			prog := connLoad(t, connAcceptAll)
			var c *Conn
			var sink, snd *net.UDPConn
			var raw int
			idx := map[string]int{}
			v.NS.Do(t, func() {
				c = m.listen(t, AnyInterface, prog, &Config{Direction: tt.dir, LoopbackOutgoing: tt.loopOut, RingBlockTimeout: time.Millisecond})
				var err error
				if sink, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sink.Close() })
				if snd, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { snd.Close() })
				if raw, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { unix.Close(raw) })
				for _, name := range []string{"lo", v.A, v.B} {
					ifi, err := net.InterfaceByName(name)
					if err != nil {
						t.Fatal(err)
					}
					idx[name] = ifi.Index
				}
			})
			if c.LinkType() != packet.LinkLinuxSLL2 || c.Ifindex() != 0 || c.Interface() != "any" {
				t.Fatalf("LinkType, Ifindex, Interface = %v, %d, %q; want LINUX_SLL2, 0, any", c.LinkType(), c.Ifindex(), c.Interface())
			}
			payload := []byte("any-capture-udp!")
			dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sink.LocalAddr().(*net.UDPAddr).Port))
			if _, err := snd.WriteToUDPAddrPort(payload, dst); err != nil {
				t.Fatal(err)
			}
			bMAC := []byte{0x02, 0, 0, 0, 0, 0x02}
			eth := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, bMAC...)
			eth = append(eth, 0x88, 0xb5)
			eth = append(eth, []byte("any-capture-raw!")...)
			eth = append(eth, make([]byte, 60-len(eth))...)
			if err := unix.Sendto(raw, eth, 0, &unix.SockaddrLinklayer{Ifindex: idx[v.B]}); err != nil {
				t.Fatal(err)
			}
			var lo, veth []anyCopy
			for _, f := range connReadAll(t, c, nil, 300*time.Millisecond) {
				h, ok := anyParse(t, f)
				switch {
				case !ok:
				case bytes.Contains(f.data, payload):
					// 127.0.0.1 -> 127.0.0.1: the IPv4 header, on lo.
					if h.protocol != 0x0800 || h.hatype != unix.ARPHRD_LOOPBACK || h.halen != 6 || f.data[20]>>4 != 4 {
						t.Errorf("UDP frame on lo: header %+v, packet %x", h, f.data[20:])
					}
					lo = append(lo, anyCopy{anyName(idx, h.ifindex), h.pkttype})
				case bytes.Contains(f.data, []byte("any-capture-raw!")):
					// The Ethernet payload alone, from the veth pair.
					if h.protocol != 0x88b5 || h.hatype != unix.ARPHRD_ETHER || !bytes.Equal(f.data[20:], eth[14:]) {
						t.Errorf("raw frame: header %+v, packet %x; want EtherType 88b5, ARPHRD_ETHER, %x", h, f.data[20:], eth[14:])
					}
					if h.pkttype == unix.PACKET_BROADCAST && (h.halen != 6 || !bytes.Equal(h.addr[:6], bMAC)) {
						t.Errorf("incoming raw frame: address %x (length %d); want the sender's %x", h.addr, h.halen, bMAC)
					}
					veth = append(veth, anyCopy{anyName(idx, h.ifindex), h.pkttype})
				}
			}
			anyWant(t, "UDP datagram on lo", lo, tt.lo)
			anyWant(t, "frame across the veth pair", veth, tt.veth)
		})
	}
}

// anyCopy is one copy of a packet a Conn on AnyInterface saw: on which
// interface, as which packet type.
type anyCopy struct {
	ifname  string
	pkttype uint8
}

// anySLL2 is an SLL2 header, decoded.
type anySLL2 struct {
	protocol uint16
	ifindex  int
	hatype   uint16
	pkttype  uint8
	halen    uint8
	addr     [8]byte
}

// anyParse decodes the SLL2 header of f, checking it against f.info.
func anyParse(t *testing.T, f connFrame) (anySLL2, bool) {
	t.Helper()
	b := f.data
	if len(b) < 20 {
		t.Errorf("frame of %d bytes: shorter than its SLL2 header", len(b))
		return anySLL2{}, false
	}
	h := anySLL2{
		protocol: binary.BigEndian.Uint16(b[0:]),
		ifindex:  int(binary.BigEndian.Uint32(b[4:])),
		hatype:   binary.BigEndian.Uint16(b[8:]),
		pkttype:  b[10],
		halen:    b[11],
	}
	copy(h.addr[:], b[12:20])
	if binary.BigEndian.Uint16(b[2:]) != 0 {
		t.Errorf("SLL2 reserved field %x; want 0", b[2:4])
	}
	if f.info.Ifindex != h.ifindex || f.info.Direction != packet.Direction(h.pkttype+1) || f.info.Length != len(b) {
		t.Errorf("info %+v; header %+v, %d bytes", f.info, h, len(b))
	}
	return h, true
}

func anyName(idx map[string]int, ifindex int) string {
	for name, i := range idx {
		if i == ifindex {
			return name
		}
	}
	return "ifindex " + strconv.Itoa(ifindex)
}

func anyWant(t *testing.T, what string, got, want []anyCopy) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: copies %v; want %v", what, got, want)
		return
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("%s: copies %v; want %v", what, got, want)
		}
	}
}

// TestConnAnySnapLength checks that on AnyInterface the filter's return
// value cuts the packet from its network header, and the SLL2 header comes
// on top: a filter keeping 10 bytes gives frames of 30.
func TestConnAnySnapLength(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	keep10 := connLoad(t, asm.Instructions{asm.Mov.Imm(asm.R0, 10), asm.Exit()})
	var c *Conn
	var sink, snd *net.UDPConn
	ns.Do(t, func() {
		c = connListen(t, AnyInterface, keep10, &Config{RingBlockTimeout: time.Millisecond})
		var err error
		if sink, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sink.Close() })
		if snd, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { snd.Close() })
	})
	if _, err := snd.WriteToUDPAddrPort(make([]byte, 100), sink.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	frame, info, err := c.NextFrame()
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) != 30 || info.Length != 20+20+8+100 || frame[20] != 0x45 {
		t.Errorf("frame %x (%d bytes), length %d; want 30 bytes (SLL2 and 10 of the IPv4 packet) of %d", frame, len(frame), info.Length, 20+20+8+100)
	}
	// ReadFrame into a buffer shorter than the header cuts it too.
	if _, err := snd.WriteToUDPAddrPort(make([]byte, 100), sink.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	n, info, err := c.ReadFrame(buf)
	if err != nil || n != 8 || info.Length != 148 || binary.BigEndian.Uint16(buf) != 0x0800 {
		t.Errorf("ReadFrame into 8 bytes: %d, %x, %+v, %v; want the first 8 bytes of the SLL2 header", n, buf, info, err)
	}
}

// TestConnAnyMatchesTcpdump captures the same packets with tcpdump -i any
// (libpcap's any device, which writes LINKTYPE_LINUX_SLL2) and with a Conn
// on AnyInterface, and checks that every record of tcpdump's is one of the
// Conn's frames byte for byte, cooked header included, and the other way
// round.
func TestConnAnyMatchesTcpdump(t *testing.T) {
	testutil.RequirePrivileged(t)
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is needed for the comparison")
	}
	v := testutil.NewVeth(t)
	file := filepath.Join(t.TempDir(), "any.pcap")
	// Immediate mode makes libpcap use TPACKET_V2, whose frames are as
	// long as the snap length: a short one lets its ring hold the burst.
	cmd := exec.Command("ip", "netns", "exec", v.NS.Name, tcpdump, "-i", "any", "--immediate-mode", "-s", "256", "-c", "9", "-U", "-n", "-w", file, "ether proto 0x88b5 or udp")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "listening on any") {
	}
	var tail bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&tail, stderr); close(copied) }()

	var c *Conn
	var sink, snd *net.UDPConn
	var raw, bIndex int
	v.NS.Do(t, func() {
		c = connListen(t, AnyInterface, connLoad(t, connAcceptAll), &Config{RingBlockTimeout: time.Millisecond})
		sink, _ = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		snd, _ = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		raw, _ = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		ifi, err := net.InterfaceByName(v.B)
		if err != nil {
			t.Fatal(err)
		}
		bIndex = ifi.Index
	})
	if sink == nil || snd == nil || raw <= 0 {
		t.Fatal("cannot open the sending sockets")
	}
	t.Cleanup(func() { sink.Close(); snd.Close(); unix.Close(raw) })
	for i := range 3 {
		if _, err := snd.WriteToUDPAddrPort([]byte("udp-"+strconv.Itoa(i)), sink.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
		eth := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x02, 0x88, 0xb5, 'r', 'a', 'w', byte('0' + i)}
		eth = append(eth, make([]byte, 60-len(eth))...)
		if err := unix.Sendto(raw, eth, 0, &unix.SockaddrLinklayer{Ifindex: bIndex}); err != nil {
			t.Fatal(err)
		}
	}
	var ours []string
	for _, f := range connReadAll(t, c, nil, 300*time.Millisecond) {
		if len(f.data) > 20 && (binary.BigEndian.Uint16(f.data) == 0x88b5 || f.data[20+9] == unix.IPPROTO_UDP) {
			ours = append(ours, hex.EncodeToString(f.data))
		}
	}
	// tcpdump exits after its 9th record (-c 9), or is stopped.
	stop := time.AfterFunc(10*time.Second, func() { cmd.Process.Signal(os.Interrupt) })
	<-copied
	cmd.Wait()
	stop.Stop()
	pf, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	r, err := pcapfile.NewReader(pf)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != packet.LinkLinuxSLL2 {
		t.Fatalf("tcpdump wrote link type %v; want LINUX_SLL2", r.LinkType())
	}
	var theirs []string
	buf := make([]byte, 1<<16)
	for {
		var info packet.Info
		rec, err := r.ReadPacket(buf, &info)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read tcpdump's file: %v", err)
		}
		theirs = append(theirs, hex.EncodeToString(rec))
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	if len(theirs) != 9 || !slices.Equal(ours, theirs) {
		t.Errorf("frames differ (3 UDP datagrams on lo, once each; 3 frames across the veth pair, twice each)\nours:\n%s\ntcpdump's:\n%s\ntcpdump said: %s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"), tail.String())
	}
}

// TestConnAnyNoAllocs checks that the cooked header costs a read no
// allocation, from a ring and with recvmsg(2), in place and copied.
func TestConnAnyNoAllocs(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, m := range []connMode{connRing, connRecvmsg} {
		t.Run(fmt.Sprintf("NoRing=%v", m.noRing), func(t *testing.T) {
			ns := testutil.NewNetNS(t)
			var c *Conn
			var sink, snd *net.UDPConn
			ns.Do(t, func() {
				c = m.listen(t, AnyInterface, connLoad(t, connAcceptAll), &Config{RingBlockTimeout: time.Millisecond, ReceiveBuffer: 4 << 20})
				sink, _ = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				snd, _ = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			})
			if sink == nil || snd == nil {
				t.Fatal("cannot open the UDP sockets")
			}
			t.Cleanup(func() { sink.Close(); snd.Close() })
			const runs = 50
			for range 2*runs + 10 {
				if _, err := snd.WriteToUDPAddrPort(make([]byte, 64), sink.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
					t.Fatal(err)
				}
			}
			connWaitStats(t, c, 2*runs+10)
			if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			var bad error
			buf := make([]byte, 2048)
			for name, read := range map[string]func(){
				"NextFrame": func() {
					if f, _, err := c.NextFrame(); err != nil || len(f) != 20+20+8+64 {
						bad = fmt.Errorf("NextFrame: %d bytes, %v", len(f), err)
					}
				},
				"ReadFrame": func() {
					if n, _, err := c.ReadFrame(buf); err != nil || n != 20+20+8+64 {
						bad = fmt.Errorf("ReadFrame: %d bytes, %v", n, err)
					}
				},
			} {
				if allocs := testing.AllocsPerRun(runs, read); allocs != 0 || bad != nil {
					t.Errorf("%s allocates %v times per frame (%v); want 0", name, allocs, bad)
				}
			}
		})
	}
}
