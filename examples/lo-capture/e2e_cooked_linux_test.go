package main

import (
	"net"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
)

// TestAnyInterfaceLinkLevel captures on "any" with link-level filters
// beside tcpdump -i any with the same filter: on a veth pair between two
// namespaces (IPv6 off, so that nothing else is sent), three datagrams
// sent from one end to a socket at the other give an ARP request out, an
// ARP reply in and the datagrams out. `arp`, `not ip`, `arp and inbound` and `outbound and
// udp` pass the same frames to both, as do `ifindex N` (all five, on
// the veth's end) and `not ifindex N` (none: lo carries nothing), and both
// files read back the same.
func TestAnyInterfaceLinkLevel(t *testing.T) {
	testutil.RequirePrivileged(t)
	testutil.RequireTool(t, "tcpdump")
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{"arp", 2}, {"not ip", 2}, {"arp and inbound", 1}, {"outbound and udp", 3}, {"ether proto 0x0806 and outbound", 1},
		{"ifindex IDX", 5}, {"not ifindex IDX", 0},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			a, b := testutil.NewNetNS(t), testutil.NewNetNS(t)
			for _, ns := range []*testutil.NetNS{a, b} {
				ns.Exec(t, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
			}
			a.IP(t, "link", "add", "pbk0", "type", "veth", "peer", "name", "pbk1", "netns", b.Name)
			a.IP(t, "addr", "add", "10.201.0.1/24", "dev", "pbk0")
			b.IP(t, "addr", "add", "10.201.0.2/24", "dev", "pbk1")
			a.IP(t, "link", "set", "pbk0", "up")
			b.IP(t, "link", "set", "pbk1", "up")
			// pbk0's interface index, for `ifindex`.
			idx := strings.TrimSpace(a.Exec(t, "cat", "/sys/class/net/pbk0/ifindex"))
			filter := strings.ReplaceAll(tc.filter, "IDX", idx)
			dir := t.TempDir()
			ours, theirs := filepath.Join(dir, "ours"), filepath.Join(dir, "theirs")
			lc := startNS(t, a, nil, "lo-capture", "-i", "any", "-w", ours, filter)
			td := startNS(t, a, nil, "tcpdump", "-i", "any", "-w", theirs, filter)
			var sink net.PacketConn
			b.Do(t, func() {
				var err error
				if sink, err = net.ListenPacket("udp4", "10.201.0.2:9"); err != nil {
					t.Fatal(err)
				}
			})
			defer sink.Close()
			var c net.Conn
			a.Do(t, func() {
				var err error
				if c, err = net.Dial("udp4", "10.201.0.2:9"); err != nil {
					t.Fatal(err)
				}
			})
			defer c.Close()
			for range 3 {
				c.Write([]byte("to the other side"))
				time.Sleep(50 * time.Millisecond)
			}
			if tc.want == 0 {
				time.Sleep(200 * time.Millisecond) // let anything that would pass arrive
			}
			lc.waitCaptured(t, tc.want)
			td.waitCaptured(t, tc.want)
			for _, p := range []*nsProc{lc, td} {
				p.signal(t, syscall.SIGINT)
				if code := p.wait(t, 10*time.Second); code != 0 {
					t.Errorf("%s: status %d: %s", p.name, code, p.stderr.String())
				}
			}
			x, y := tcpdumpRead(t, ours, "-t"), tcpdumpRead(t, theirs, "-t")
			if len(y) != tc.want || !slices.Equal(x, y) {
				t.Errorf("lo-capture's file:\n%s\ntcpdump's:\n%s", strings.Join(x, "\n"), strings.Join(y, "\n"))
			}
		})
	}
}
