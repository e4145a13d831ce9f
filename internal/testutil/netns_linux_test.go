package testutil

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLinkTransmits(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{`3: pbveth0@pbveth1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\    link/ether 3a:9e:5c:75:dc:8d brd ff:ff:ff:ff:ff:ff`, true},
		// Up with a carrier, but the link-watch work has not attached
		// the qdisc yet.
		{`3: pbveth0@pbveth1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noop state UP mode DEFAULT group default qlen 1000\    link/ether 3a:9e:5c:75:dc:8d brd ff:ff:ff:ff:ff:ff`, false},
		// Up, the peer down: no carrier.
		{`3: pbveth0@pbveth1: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state LOWERLAYERDOWN mode DEFAULT group default qlen 1000\    link/ether 3a:9e:5c:75:dc:8d brd ff:ff:ff:ff:ff:ff`, false},
		{`3: pbveth0@pbveth1: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 qdisc noop state DOWN mode DEFAULT group default qlen 1000\    link/ether 96:81:73:0a:da:83 brd ff:ff:ff:ff:ff:ff`, false},
		{`5: pbfa.100@pbfa: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\    link/ether 3a:9e:5c:75:dc:8d brd ff:ff:ff:ff:ff:ff`, true},
		{``, false},
		{`garbage`, false},
	}
	for _, tt := range tests {
		if got := linkTransmits(tt.line); got != tt.want {
			t.Errorf("linkTransmits(%q) = %v; want %v", tt.line, got, tt.want)
		}
	}
}

// TestNewVethTransmits sends a frame out of each end of a new veth pair at
// once: neither may be dropped for want of a qdisc (see WaitTransmit).
func TestNewVethTransmits(t *testing.T) {
	RequirePrivileged(t)
	for range 3 {
		v := NewVeth(t)
		v.NS.Do(t, func() {
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			for _, name := range []string{v.A, v.B} {
				ifi, err := net.InterfaceByName(name)
				if err != nil {
					t.Fatal(err)
				}
				frame := make([]byte, 60)
				copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5})
				if err := unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
					t.Fatal(err)
				}
			}
		})
		for _, name := range []string{v.A, v.B} {
			stat := func(s string) int {
				out := strings.TrimSpace(v.NS.Exec(t, "cat", "/sys/class/net/"+name+"/statistics/"+s))
				n, err := strconv.Atoi(out)
				if err != nil {
					t.Fatalf("%s of %s: %q", s, name, out)
				}
				return n
			}
			if dropped, sent := stat("tx_dropped"), stat("tx_packets"); dropped != 0 || sent < 1 {
				t.Errorf("%s: %d frames sent, %d dropped; want the frame sent", name, sent, dropped)
			}
		}
	}
}
