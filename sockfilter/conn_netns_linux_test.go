package sockfilter

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// connVethPair listens with prog on v's end A, inside v's namespace, and
// opens a packet socket to send raw frames out of end B: it returns the
// Conn, the sending socket and B's interface index.
func connVethPair(t *testing.T, m connMode, v *testutil.Veth, prog *Program, cfg *Config) (c *Conn, sender, senderIndex int) {
	t.Helper()
	v.NS.Do(t, func() {
		c = m.listen(t, v.A, prog, cfg)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		ifi, err := net.InterfaceByName(v.B)
		if err != nil {
			t.Fatal(err)
		}
		sender, senderIndex = fd, ifi.Index
	})
	return c, sender, senderIndex
}

// TestConnVLAN sends VLAN-tagged frames into one end of a veth pair and
// reads them on the other, where the receive path takes the tag out of the
// frame into the skb's metadata (skb_vlan_untag) before packet sockets see
// it; the reader gets it back through PACKET_AUXDATA.
func TestConnVLAN(t *testing.T) { testConnVLAN(t, connRing) }

func testConnVLAN(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	v := testutil.NewVeth(t)
	prog := connLoad(t, connAcceptAll)
	c, sender, senderIndex := connVethPair(t, m, v, prog, nil)

	tests := []struct {
		name string
		tpid uint16
		tci  uint16 // priority 3, and the VLAN id
	}{
		{"802.1Q", 0x8100, 3<<13 | 100},
		{"802.1ad", 0x88a8, 3<<13 | 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := make([]byte, 64)
			copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // broadcast
			copy(frame[6:], []byte{0x02, 0, 0, 0, 0, 0x01})         // a local source address
			binary.BigEndian.PutUint16(frame[12:], tt.tpid)
			binary.BigEndian.PutUint16(frame[14:], tt.tci)
			binary.BigEndian.PutUint16(frame[16:], 0x88b5) // local experimental ethertype
			copy(frame[18:], "tagged")
			if err := unix.Sendto(sender, frame, 0, &unix.SockaddrLinklayer{Ifindex: senderIndex}); err != nil {
				t.Fatalf("send tagged frame: %v", err)
			}
			buf := make([]byte, 1500)
			if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
				t.Fatal(err)
			}
			n, info, err := c.ReadFrame(buf)
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if !info.HasVLAN || info.VLANTCI != tt.tci || info.VLANID() != tt.tci&0xfff || info.VLANTPID != tt.tpid {
				t.Errorf("info = %+v; want VLAN TCI %#x, TPID %#x", info, tt.tci, tt.tpid)
			}
			if info.Ifindex != c.Ifindex() || info.Direction != packet.DirectionBroadcast {
				t.Errorf("info = %+v; want ifindex %d, broadcast", info, c.Ifindex())
			}
			// The frame comes without its tag: 4 bytes shorter.
			want := append(append([]byte(nil), frame[:12]...), frame[16:]...)
			if string(buf[:n]) != string(want) || info.Length != len(want) {
				t.Errorf("frame %x (length %d); want %x", buf[:n], info.Length, want)
			}
		})
	}
}

// TestConnRawIPLink reads from a tun device, whose frames have no
// link-layer header.
func TestConnRawIPLink(t *testing.T) { testConnRawIPLink(t, connRing) }

func testConnRawIPLink(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	const name = "pbtun0"
	var tun *os.File
	ns.Do(t, func() {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("open /dev/net/tun: %v", err)
		}
		tun = os.NewFile(uintptr(fd), "/dev/net/tun")
		t.Cleanup(func() { tun.Close() })
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			t.Fatal(err)
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			t.Fatalf("TUNSETIFF: %v", err)
		}
	})
	ns.IP(t, "link", "set", name, "up")
	var c *Conn
	ns.Do(t, func() { c = m.listen(t, name, connLoad(t, connAcceptAll), nil) })
	if c.LinkType() != packet.LinkRawIP {
		t.Fatalf("LinkType = %v; want RAW", c.LinkType())
	}

	// An IPv4 UDP datagram, 10.199.9.2:1234 -> 10.199.9.1:5678, written
	// into the tun device so that the kernel receives it.
	ipPacket := []byte{
		0x45, 0x00, 0x00, 0x20, // version 4, IHL 5; total length 32
		0x00, 0x01, 0x00, 0x00, // id 1; no fragmentation
		0x40, 0x11, 0x00, 0x00, // TTL 64, UDP; checksum below
		10, 199, 9, 2, // source
		10, 199, 9, 1, // destination
		0x04, 0xd2, 0x16, 0x2e, // ports 1234 -> 5678
		0x00, 0x0c, 0x00, 0x00, // length 12, no checksum
		'r', 'a', 'w', '!',
	}
	binary.BigEndian.PutUint16(ipPacket[10:], connIPChecksum(ipPacket[:20]))
	if _, err := tun.Write(ipPacket); err != nil {
		t.Fatalf("write to tun: %v", err)
	}
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, info, err := c.ReadFrame(buf)
	if err != nil {
		t.Fatalf("ReadFrame: %v", err)
	}
	if string(buf[:n]) != string(ipPacket) || info.Length != len(ipPacket) || info.Direction != packet.DirectionHost {
		t.Errorf("read %x, %+v; want %x, whole, incoming", buf[:n], info, ipPacket)
	}
}

// connIPChecksum returns the Internet checksum (RFC 1071) of an IPv4
// header whose checksum field is zero.
func connIPChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func TestConnInterfaceDown(t *testing.T) { testConnInterfaceDown(t, connRing) }

func testConnInterfaceDown(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	ns.IP(t, "link", "add", "pbdown0", "type", "veth", "peer", "name", "pbdown1")
	prog := connLoad(t, connAcceptAll)
	var err error
	ns.Do(t, func() {
		var c *Conn
		if c, err = Listen("pbdown0", prog, m.config(nil)); err == nil {
			c.Close()
		}
	})
	t.Log(err)
	if !errors.Is(err, unix.ENETDOWN) || !strings.Contains(err.Error(), "ip link set pbdown0 up") {
		t.Errorf("Listen on a down interface: %v; want ENETDOWN saying how to bring it up", err)
	}
}

func TestConnPromiscuous(t *testing.T) { testConnPromiscuous(t, connRing) }

func testConnPromiscuous(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	v := testutil.NewVeth(t)
	prog := connLoad(t, connAcceptAll)
	promiscuity := func() string {
		out := v.NS.IP(t, "-d", "link", "show", "dev", v.A)
		f := strings.Fields(out[strings.Index(out, "promiscuity"):])
		return f[1]
	}
	var plain, promisc *Conn
	v.NS.Do(t, func() {
		plain = m.listen(t, v.A, prog, nil)
		promisc = m.listen(t, v.A, prog, &Config{Promiscuous: true})
	})
	if got := promiscuity(); got != "1" {
		t.Errorf("promiscuity with a promiscuous Conn open: %s; want 1", got)
	}
	promisc.Close()
	if got := promiscuity(); got != "0" {
		t.Errorf("promiscuity after Close: %s; want 0", got)
	}
	plain.Close()
}

func TestConnInterfaceGone(t *testing.T) { testConnInterfaceGone(t, connRing) }

// testConnInterfaceGone takes the interface of a Conn away under a read:
// down (the read fails saying so, with ENETDOWN; reads resume once it is
// up), deleted (the read fails saying it went away, with ENODEV, and every
// later read does too, without waiting), and down, then deleted (of which
// the kernel tells the socket nothing: the next read finds out). Stats
// works throughout; SetProgram works while the interface is down and fails
// once it is gone.
func testConnInterfaceGone(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	for _, tt := range []string{"down then up", "deleted", "down then deleted"} {
		t.Run(tt, func(t *testing.T) {
			v := testutil.NewVeth(t)
			prog := connLoad(t, connAcceptAll)
			c, sender, senderIndex := connVethPair(t, m, v, prog, &Config{RingBlockTimeout: time.Millisecond})
			send := func(tag byte) {
				t.Helper()
				frame := make([]byte, 60)
				copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5, tag})
				if err := unix.Sendto(sender, frame, 0, &unix.SockaddrLinklayer{Ifindex: senderIndex}); err != nil {
					t.Fatal(err)
				}
			}
			// readTag reads until the frame tagged tag, or an error.
			readTag := func(tag byte) error {
				t.Helper()
				for {
					frame, _, err := c.NextFrame()
					if err != nil {
						return err
					}
					if len(frame) > 14 && frame[12] == 0x88 && frame[13] == 0xb5 && frame[14] == tag {
						return nil
					}
				}
			}
			if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			send(1)
			if err := readTag(1); err != nil {
				t.Fatalf("read before: %v", err)
			}
			// A read blocks; the interface goes from under it.
			errc := make(chan error, 1)
			go func() { errc <- readTag(0xff) }()
			time.Sleep(50 * time.Millisecond)
			if tt == "deleted" {
				v.NS.IP(t, "link", "del", v.A)
			} else {
				v.NS.IP(t, "link", "set", v.A, "down")
			}
			err := <-errc
			t.Logf("read as the interface went: %v", err)
			if tt == "deleted" {
				connWantGone(t, err)
			} else if !errors.Is(err, unix.ENETDOWN) || !strings.Contains(err.Error(), `interface "pbveth0" went down`) {
				t.Fatalf("read as the interface went down: %v; want ENETDOWN saying so", err)
			}
			if _, err := c.Stats(); err != nil {
				t.Errorf("Stats: %v", err)
			}
			switch tt {
			case "down then up":
				if err := c.SetProgram(prog); err != nil {
					t.Errorf("SetProgram while down: %v", err)
				}
				v.NS.IP(t, "link", "set", v.A, "up")
				// Bringing A up brings B's carrier back; B transmits
				// only once the kernel has attached its qdisc again.
				v.NS.WaitTransmit(t, v.A, v.B)
				send(2)
				if err := readTag(2); err != nil {
					t.Fatalf("read once up again: %v", err)
				}
				return
			case "down then deleted":
				v.NS.IP(t, "link", "del", v.A)
				connWantGone(t, readTag(0xff))
			}
			// Gone: every read says so at once, and SetProgram fails.
			connWantGone(t, readTag(0xff))
			if _, _, err := c.ReadFrame(make([]byte, 100)); !errors.Is(err, unix.ENODEV) {
				t.Errorf("ReadFrame once gone: %v; want ENODEV", err)
			}
			if err := c.SetProgram(prog); !errors.Is(err, unix.ENODEV) {
				t.Errorf("SetProgram once gone: %v; want ENODEV", err)
			}
			if _, err := c.Stats(); err != nil {
				t.Errorf("Stats once gone: %v", err)
			}
		})
	}
}

// connWantGone checks that err says the interface pbveth0 went away.
func connWantGone(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, unix.ENODEV) || errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), `interface "pbveth0" went away`) {
		t.Fatalf("read once the interface is gone: %v; want ENODEV saying it went away", err)
	}
}

func TestConnDirectionsVeth(t *testing.T) { testConnDirectionsVeth(t, connRing) }

// testConnDirectionsVeth checks each Direction on an interface that is not
// a loopback device: a frame sent into it from the other end of the veth
// pair is incoming, one sent out of it outgoing; by default a Conn sees
// both, as tcpdump does.
func testConnDirectionsVeth(t *testing.T, m connMode) {
	testutil.RequirePrivileged(t)
	tests := []struct {
		name string
		cfg  *Config
		want []packet.Direction // by tag: 1 sent in, 2 sent out
	}{
		{"default", nil, []packet.Direction{packet.DirectionBroadcast, packet.DirectionOutgoing}},
		{"inout", &Config{Direction: DirectionInOut}, []packet.Direction{packet.DirectionBroadcast, packet.DirectionOutgoing}},
		{"in", &Config{Direction: DirectionIn}, []packet.Direction{packet.DirectionBroadcast}},
		{"out", &Config{Direction: DirectionOut}, []packet.Direction{packet.DirectionOutgoing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testutil.NewVeth(t)
			c, sender, senderIndex := connVethPair(t, m, v, connLoad(t, connAcceptAll), tt.cfg)
			var out int
			v.NS.Do(t, func() {
				fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { unix.Close(fd) })
				out = fd
			})
			for tag, send := range map[byte]struct{ fd, ifindex int }{1: {sender, senderIndex}, 2: {out, c.Ifindex()}} {
				frame := make([]byte, 60)
				copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, tag, 0x88, 0xb5, tag})
				if err := unix.Sendto(send.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: send.ifindex}); err != nil {
					t.Fatal(err)
				}
			}
			got := connReadTagged(t, c, len(tt.want))
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("directions of the tagged frames seen: %v; want %v", got, tt.want)
			}
		})
	}
}

// connReadTagged reads the frames testConnDirectionsVeth tags (ethertype
// 0x88b5, tag 1 or 2) and returns their directions: until want of them
// have come, however long the machine takes (up to 5 seconds), then on
// for 100ms more to catch any the Conn should not have let through.
func connReadTagged(t *testing.T, c *Conn, want int) []packet.Direction {
	t.Helper()
	var got []packet.Direction
	buf := make([]byte, 1<<16)
	deadline, draining := time.Now().Add(5*time.Second), false
	for {
		if !draining && len(got) >= want {
			deadline, draining = time.Now().Add(100*time.Millisecond), true
		}
		if err := c.SetReadDeadline(deadline); err != nil {
			t.Fatalf("SetReadDeadline: %v", err)
		}
		n, info, err := c.ReadFrame(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got
		}
		if err != nil {
			t.Fatalf("ReadFrame: %v", err)
		}
		if f := buf[:n]; len(f) > 14 && f[12] == 0x88 && f[13] == 0xb5 && (f[14] == 1 || f[14] == 2) {
			got = append(got, info.Direction)
		}
	}
}
