package sockfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

// flowsAndFrames listens on ifname with a FlowConn and, beside it, a Conn
// whose frames Parse and KeyOf count in Go, both with the filter expr:
// the two see the same frames.
func flowsAndFrames(t *testing.T, ifname, expr string, cfg *FlowConfig) (*FlowConn, *Conn) {
	t.Helper()
	filter, err := pcapfilter.Compile(expr, packet.LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(filter, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := Listen(ifname, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fc, err := ListenFlows(ifname, filter, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close() })
	return fc, c
}

// countFrames counts the frames c has read, until none comes for quiet, in
// flows as the kernel's table does.
func countFrames(t *testing.T, c *Conn, quiet time.Duration) (map[flow.Key]flow.Counters, int) {
	t.Helper()
	table := map[flow.Key]flow.Counters{}
	recs := parsedFrames(t, c, quiet)
	for i := range recs {
		k := flow.KeyOf(&recs[i])
		cnt := table[k]
		cnt.Add(recs[i].Length, recs[i].Time, recs[i].TCPFlags)
		table[k] = cnt
	}
	return table, len(recs)
}

// compareFlows compares the kernel's table with the one counted in Go.
func compareFlows(t *testing.T, entries []FlowEntry, want map[flow.Key]flow.Counters) {
	t.Helper()
	got := map[flow.Key]flow.Counters{}
	for _, e := range entries {
		if _, dup := got[e.Key]; dup {
			t.Errorf("flow %v twice in the table", e.Key)
		}
		got[e.Key] = e.Counters
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("flow %v (%d packets) not in the kernel's table", k, w.Packets)
		case g.Packets != w.Packets || g.Bytes != w.Bytes || g.TCPFlags != w.TCPFlags:
			t.Errorf("flow %v: kernel %d packets, %d bytes, %v; frames %d, %d, %v", k, g.Packets, g.Bytes, g.TCPFlags, w.Packets, w.Bytes, w.TCPFlags)
		case g.First.After(g.Last) || g.First.Sub(w.First).Abs() > 50*time.Millisecond || g.Last.Sub(w.Last).Abs() > 50*time.Millisecond:
			t.Errorf("flow %v: kernel first %v last %v; frames %v, %v", k, g.First, g.Last, w.First, w.Last)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("kernel flow %v (%d packets) of no frame the Conn read", k, g.Packets)
		}
	}
}

// expectFlow checks that the table has key with packets and bytes.
func expectFlow(t *testing.T, entries []FlowEntry, what string, match func(flow.Key) bool, packets, bytes uint64) {
	t.Helper()
	var found []FlowEntry
	for _, e := range entries {
		if match(e.Key) {
			found = append(found, e)
		}
	}
	if len(found) != 1 || found[0].Packets != packets || (bytes != 0 && found[0].Bytes != bytes) {
		t.Errorf("%s: flows %+v; want one of %d packets, %d bytes", what, found, packets, bytes)
	}
}

// twoHosts is a veth pair between two network namespaces, with IPv4 and
// IPv6 addresses, and a VLAN sub-interface (ID 100) on each end where the
// kernel has them (CONFIG_VLAN_8021Q).
type twoHosts struct {
	a, b *testutil.NetNS
	vlan bool
}

const (
	hostA, hostB         = "10.199.0.1", "10.199.0.2"
	hostA6, hostB6       = "fd00:199::1", "fd00:199::2"
	hostAVLAN, hostBVLAN = "10.199.100.1", "10.199.100.2"
	vethA, vethB         = "pbfa", "pbfb"
)

func newTwoHosts(t *testing.T) *twoHosts {
	t.Helper()
	h := &twoHosts{a: testutil.NewNetNS(t), b: testutil.NewNetNS(t)}
	h.a.IP(t, "link", "add", vethA, "type", "veth", "peer", "name", vethB, "netns", h.b.Name)
	type nsDev struct {
		ns  *testutil.NetNS
		dev string
	}
	var ready []nsDev
	for _, side := range []struct {
		ns          *testutil.NetNS
		dev, v4, v6 string
		vlan        string
	}{{h.a, vethA, hostA, hostA6, hostAVLAN}, {h.b, vethB, hostB, hostB6, hostBVLAN}} {
		side.ns.Exec(t, "sysctl", "-q", "-w", "net.ipv6.conf."+side.dev+".disable_ipv6=0")
		side.ns.IP(t, "addr", "add", side.v4+"/24", "dev", side.dev)
		side.ns.IP(t, "addr", "add", side.v6+"/64", "dev", side.dev, "nodad")
		side.ns.IP(t, "link", "set", side.dev, "up")
		ready = append(ready, nsDev{side.ns, side.dev})
		out, err := exec.Command("ip", "-n", side.ns.Name, "link", "add", "link", side.dev, "name", side.dev+".100", "type", "vlan", "id", "100").CombinedOutput()
		if err != nil {
			t.Logf("no VLAN sub-interface (%s): VLAN-tagged frames are sent with a packet socket instead", strings.TrimSpace(string(out)))
			continue
		}
		h.vlan = true
		side.ns.IP(t, "addr", "add", side.vlan+"/24", "dev", side.dev+".100")
		side.ns.IP(t, "link", "set", side.dev+".100", "up")
		ready = append(ready, nsDev{side.ns, side.dev + ".100"})
	}
	// A's carrier comes on as B comes up: wait for the kernel to let
	// each device transmit (see testutil.NetNS.WaitTransmit).
	for _, w := range ready {
		w.ns.WaitTransmit(t, w.dev)
	}
	return h
}

// macOf returns the hardware address of the interface ifname in ns, as
// ip-link(8) prints it.
func macOf(t *testing.T, ns *testutil.NetNS, ifname string) string {
	t.Helper()
	fields := strings.Fields(ns.IP(t, "-o", "link", "show", "dev", ifname))
	for i, f := range fields {
		if f == "link/ether" && i+1 < len(fields) {
			return fields[i+1]
		}
	}
	t.Fatalf("no hardware address for %s in namespace %s", ifname, ns.Name)
	return ""
}

// sendTagged sends n IPv4 UDP datagrams of size bytes to dst:dport in
// frames tagged with VLAN ID vlan, out of the interface ifname of the
// caller's namespace, to the MAC address dstMAC.
func sendTagged(t *testing.T, ifname, dstMAC string, vlan uint16, src, dst string, dport uint16, n, size int) {
	t.Helper()
	hw, err := net.ParseMAC(dstMAC)
	if err != nil {
		t.Fatal(err)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	f := append(append([]byte{}, hw...), ifi.HardwareAddr...)
	f = binary.BigEndian.AppendUint16(f, 0x8100)
	f = binary.BigEndian.AppendUint16(f, vlan)
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	ip := make([]byte, 20, 20+8+size)
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+size))
	s4, d4 := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ipv4Checksum(ip))
	ip = binary.BigEndian.AppendUint16(ip, 40000)
	ip = binary.BigEndian.AppendUint16(ip, dport)
	ip = binary.BigEndian.AppendUint16(ip, uint16(8+size))
	ip = append(ip, make([]byte, 2+size)...)
	send := frameSender(t, ifname)
	for range n {
		send(append(f, ip...))
	}
}

// ipv4Checksum returns the Internet checksum (RFC 1071) of an IPv4 header
// whose checksum field is zero.
func ipv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// The traffic of the flow tests: datagrams of known sizes to known ports.
const (
	flowCount  = 25   // datagrams of each flow
	flowSize   = 100  // their payload
	fragSize   = 3000 // the payload of datagrams that a 1500-byte MTU fragments
	flowPortV4 = 40001
	flowPortV6 = 40002
	flowPortVL = 40003
	flowPortFr = 40004
)

// sendDatagrams sends n datagrams of size bytes from the caller's
// namespace to dst.
func sendDatagrams(t *testing.T, dst string, n, size int) {
	t.Helper()
	c, err := net.Dial("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, size)
	for range n {
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFlowsLiveVeth counts UDP flows over IPv4, IPv6, a VLAN and with
// fragments, and a TCP connection, sent from one namespace to the other
// over a veth pair, with the shared and the per-CPU table: the kernel's
// table must hold exactly what Parse and KeyOf make of the frames a Conn
// reads beside it, every packet once, and the flows of the datagrams the
// known numbers of packets and bytes.
func TestFlowsLiveVeth(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, perCPU := range []bool{false, true} {
		t.Run(fmt.Sprint("percpu=", perCPU), func(t *testing.T) {
			h := newTwoHosts(t)
			var fc *FlowConn
			var c *Conn
			h.a.Do(t, func() {
				// Enabling IPv6 sends MLD reports (to ff02::16, after a
				// Hop-by-Hop header) and neighbour discovery at times of
				// its own: leave ICMPv6 and IPv6 multicast out.
				fc, c = flowsAndFrames(t, vethA, "not icmp6 and not (ip6 and dst net ff00::/8)", &FlowConfig{PerCPU: perCPU})
				sinks := []string{hostA + ":40001", "[" + hostA6 + "]:40002", hostA + ":40004", "[" + hostA6 + "]:40004"}
				if h.vlan {
					sinks = append(sinks, hostAVLAN+":40003")
				}
				for _, addr := range sinks {
					sink, err := net.ListenPacket("udp", addr)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { sink.Close() })
				}
				l, err := net.Listen("tcp", hostA+":40005")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				go func() {
					if s, err := l.Accept(); err == nil {
						buf := make([]byte, 64)
						s.Read(buf)
						s.Close()
					}
				}()
			})
			macA := macOf(t, h.a, vethA)
			h.b.Do(t, func() {
				pinned(t, func() {
					sendDatagrams(t, hostA+":40001", flowCount, flowSize)
					sendDatagrams(t, "["+hostA6+"]:40002", flowCount, flowSize)
					if h.vlan {
						sendDatagrams(t, hostAVLAN+":40003", flowCount, flowSize)
					} else {
						sendTagged(t, vethB, macA, 100, hostBVLAN, hostAVLAN, flowPortVL, flowCount, flowSize)
					}
					sendDatagrams(t, hostA+":40004", flowCount, fragSize)
					sendDatagrams(t, "["+hostA6+"]:40004", flowCount, fragSize)
					tc, err := net.Dial("tcp", hostA+":40005")
					if err != nil {
						t.Fatal(err)
					}
					tc.Write([]byte("hello"))
					tc.Close()
				})
			})
			time.Sleep(200 * time.Millisecond)
			want, frames := countFrames(t, c, 200*time.Millisecond)
			entries, err := fc.Table(nil)
			if err != nil {
				t.Fatal(err)
			}
			compareFlows(t, entries, want)
			checkKnownFlows(t, entries, fc.Ifindex())
			checkFlush(t, fc, entries, uint64(frames))
		})
	}
}

// checkKnownFlows checks the flows of the datagrams TestFlowsLiveVeth and
// TestFlowsLiveLoopback send, by the numbers.
func checkKnownFlows(t *testing.T, entries []FlowEntry, ifindex int) {
	t.Helper()
	udpTo := func(port uint16, ether uint16, vlan uint16) func(flow.Key) bool {
		return func(k flow.Key) bool {
			return k.Ifindex == ifindex && k.Direction == packet.DirectionHost && k.EtherType == ether &&
				k.IPProto == 17 && k.DstPort == port && k.VLAN == vlan
		}
	}
	const eth, ip4, ip6, udp = 14, 20, 40, 8
	expectFlow(t, entries, "IPv4 UDP", udpTo(flowPortV4, 0x0800, 0), flowCount, flowCount*(eth+ip4+udp+flowSize))
	expectFlow(t, entries, "IPv6 UDP", udpTo(flowPortV6, 0x86dd, 0), flowCount, flowCount*(eth+ip6+udp+flowSize))
	// The receive path takes the tag out of the frame: the socket sees,
	// and counts, the frame without it.
	expectFlow(t, entries, "IPv4 UDP over VLAN 100", udpTo(flowPortVL, 0x0800, 100), flowCount, flowCount*(eth+ip4+udp+flowSize))
	// 3,008 bytes of UDP in fragments of 1,480: the first (with the
	// ports), then two without ports of 1,480 and 48.
	expectFlow(t, entries, "IPv4 first fragments", udpTo(flowPortFr, 0x0800, 0), flowCount, flowCount*(eth+ip4+1480))
	expectFlow(t, entries, "IPv4 later fragments", func(k flow.Key) bool {
		return k.EtherType == 0x0800 && k.IPProto == 17 && k.SrcPort == 0 && k.DstPort == 0
	}, 2*flowCount, 2*flowCount*(eth+ip4)+flowCount*(1480+48))
	// IPv6: fragments of 1,448 bytes after the 8-byte Fragment header.
	expectFlow(t, entries, "IPv6 first fragments", udpTo(flowPortFr, 0x86dd, 0), flowCount, flowCount*(eth+ip6+8+1448))
	expectFlow(t, entries, "IPv6 later fragments", func(k flow.Key) bool {
		return k.EtherType == 0x86dd && k.IPProto == 17 && k.SrcPort == 0 && k.DstPort == 0
	}, 2*flowCount, 2*flowCount*(eth+ip6+8)+flowCount*(1448+3008-2*1448))
}

// checkFlush ends every flow and checks that the records hold every packet
// the table counted, and that the kernel counted each frame once.
func checkFlush(t *testing.T, fc *FlowConn, entries []FlowEntry, frames uint64) {
	t.Helper()
	var inTable, bytes uint64
	for _, e := range entries {
		inTable += e.Packets
		bytes += e.Bytes
	}
	recs, err := fc.Flush(nil)
	if err != nil {
		t.Fatal(err)
	}
	var exported uint64
	for _, r := range recs {
		exported += r.Packets
		if r.EndReason != flow.EndForced && r.EndReason != flow.EndOfFlow {
			t.Errorf("record %+v ends with %v", r, r.EndReason)
		}
	}
	st, err := fc.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d frames, %d flows, %d records; %+v", frames, len(entries), len(recs), st)
	if inTable != frames || exported != frames || st.Packets != frames || st.Bytes != bytes ||
		st.ExportedPackets != frames || st.EvictedPackets != 0 || st.PendingPackets != 0 || st.Failed != 0 {
		t.Errorf("%d frames read, %d packets in the table, %d in records, stats %+v: every packet must be counted once", frames, inTable, exported, st)
	}
	after, err := fc.Table(nil)
	if err != nil || len(after) != 0 {
		t.Errorf("table after Flush: %d flows, %v", len(after), err)
	}
}

// TestFlowsLiveLoopback counts UDP (with fragments) over IPv4 and IPv6 and
// TCP on lo, with a 1,500-byte MTU so that the datagrams fragment.
func TestFlowsLiveLoopback(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	ns.Exec(t, "sysctl", "-q", "-w", "net.ipv6.conf.lo.disable_ipv6=0")
	ns.IP(t, "link", "set", "lo", "mtu", "1500")
	var fc *FlowConn
	var c *Conn
	ns.Do(t, func() {
		fc, c = flowsAndFrames(t, "lo", "", nil)
		for _, addr := range []string{"127.0.0.1:40001", "[::1]:40002", "127.0.0.1:40004", "[::1]:40004"} {
			sink, err := net.ListenPacket("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
		}
		pinned(t, func() {
			sendDatagrams(t, "127.0.0.1:40001", flowCount, flowSize)
			sendDatagrams(t, "[::1]:40002", flowCount, flowSize)
			sendDatagrams(t, "127.0.0.1:40004", flowCount, fragSize)
			sendDatagrams(t, "[::1]:40004", flowCount, fragSize)
			loopbackTraffic(t)
		})
	})
	time.Sleep(100 * time.Millisecond)
	want, frames := countFrames(t, c, 200*time.Millisecond)
	entries, err := fc.Table(nil)
	if err != nil {
		t.Fatal(err)
	}
	compareFlows(t, entries, want)
	// Read key by key, as on kernels without batch lookups: the same.
	fc.noBatch = true
	byKey, err := fc.Table(nil)
	if err != nil {
		t.Fatal(err)
	}
	compareFlows(t, byKey, want)
	// On lo the datagrams are received as host traffic of interface lo.
	expectFlow(t, entries, "IPv4 UDP", func(k flow.Key) bool {
		return k.Ifindex == fc.Ifindex() && k.Direction == packet.DirectionHost && k.IPProto == 17 &&
			k.DstPort == flowPortV4 && k.Src == netip.MustParseAddr("127.0.0.1")
	}, flowCount, flowCount*(14+20+8+flowSize))
	expectFlow(t, entries, "IPv4 later fragments", func(k flow.Key) bool {
		return k.EtherType == 0x0800 && k.IPProto == 17 && k.DstPort == 0
	}, 2*flowCount, 0)
	checkFlush(t, fc, entries, uint64(frames))
}

// udpFlowFrame returns an IPv4 UDP frame of the flow with source port
// sport.
func udpFlowFrame(t *testing.T, sport uint16) []byte {
	f := testutil.FrameCopy(t, "udp4")
	binary.BigEndian.PutUint16(f[14+20:], sport)
	return f
}

// TestFlowsEvicted overflows a table of 8 flows with 200 flows of 3
// packets each: the kernel's LRU evicts flows before any reading, and
// then between readings, and every packet must still be accounted for —
// in a record, or counted lost with its evicted flow.
func TestFlowsEvicted(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, perCPU := range []bool{false, true} {
		t.Run(fmt.Sprint("percpu=", perCPU), func(t *testing.T) {
			v := testutil.NewVeth(t)
			var fc *FlowConn
			var send func([]byte)
			v.NS.Do(t, func() {
				var err error
				if fc, err = ListenFlows(v.A, nil, &FlowConfig{MaxFlows: 8, PerCPU: perCPU}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { fc.Close() })
				send = frameSender(t, v.B)
			})
			const flows, each = 200, 3
			var recs []flow.Flow
			pinned(t, func() {
				for i := range flows {
					f := udpFlowFrame(t, uint16(1000+i))
					for range each {
						send(f)
					}
					if i%50 == 49 {
						time.Sleep(10 * time.Millisecond)
						var err error
						if recs, err = fc.ReadFlows(recs); err != nil {
							t.Fatal(err)
						}
					}
				}
			})
			time.Sleep(50 * time.Millisecond)
			recs, err := fc.Flush(recs)
			if err != nil {
				t.Fatal(err)
			}
			st, err := fc.Stats()
			if err != nil {
				t.Fatal(err)
			}
			var exported uint64
			lacking := 0
			for _, r := range recs {
				exported += r.Packets
				if r.EndReason == flow.EndLackOfResources {
					lacking++
				}
			}
			t.Logf("%d records (%d lack of resources), %+v", len(recs), lacking, st)
			if st.Packets != flows*each || exported != st.ExportedPackets || exported+st.EvictedPackets != flows*each || st.PendingPackets != 0 {
				t.Errorf("%d packets sent, stats %+v, %d in records: every packet must be in a record or counted lost", flows*each, st, exported)
			}
			if st.EvictedPackets == 0 || st.Evicted == 0 || lacking != int(st.Evicted) {
				t.Errorf("no eviction seen (%+v, %d records lacking resources) in a table of 8 flows of 200", st, lacking)
			}
			if st.EvictedBytes != st.EvictedPackets*uint64(len(udpFlowFrame(t, 0))) {
				t.Errorf("evicted %d bytes in %d packets of %d bytes", st.EvictedBytes, st.EvictedPackets, len(udpFlowFrame(t, 0)))
			}
		})
	}
}

// TestFlowsReadFlowsExpire follows two flows through ReadFlows: a UDP flow
// that ends when it has been idle for the idle timeout, and a TCP flow
// that ends with its FIN, each exported once with all its packets and then
// gone from the table; and a FlowConn that is closed.
func TestFlowsReadFlowsExpire(t *testing.T) {
	testutil.RequirePrivileged(t)
	v := testutil.NewVeth(t)
	var fc *FlowConn
	var send func([]byte)
	v.NS.Do(t, func() {
		var err error
		if fc, err = ListenFlows(v.A, nil, &FlowConfig{IdleTimeout: 300 * time.Millisecond, ActiveTimeout: time.Minute}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fc.Close() })
		send = frameSender(t, v.B)
	})
	udp := udpFlowFrame(t, 5000)
	fin := testutil.FrameCopy(t, "tcp4")
	fin[14+20+13] = 0x11 // FIN, ACK
	for range 5 {
		send(udp)
	}
	send(fin)
	time.Sleep(20 * time.Millisecond)
	recs, err := fc.ReadFlows(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].EndReason != flow.EndOfFlow || recs[0].Packets != 1 || recs[0].Key.IPProto != 6 {
		t.Fatalf("first reading: %+v; want the TCP flow, ended by its FIN", recs)
	}
	time.Sleep(400 * time.Millisecond)
	if recs, err = fc.ReadFlows(recs[:0]); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].EndReason != flow.EndIdle || recs[0].Packets != 5 || recs[0].Bytes != uint64(5*len(udp)) || recs[0].Key.SrcPort != 5000 {
		t.Fatalf("after the idle timeout: %+v; want the UDP flow, idle, 5 packets", recs)
	}
	if d := recs[0].End.Sub(recs[0].Start); d < 0 || d > 100*time.Millisecond {
		t.Errorf("the UDP flow lasted %v", d)
	}
	if since := time.Since(recs[0].End); since < 300*time.Millisecond || since > 5*time.Second {
		t.Errorf("the UDP flow ended %v ago; the clock is off", since)
	}
	if entries, err := fc.Table(nil); err != nil || len(entries) != 0 {
		t.Errorf("table after both flows ended: %+v, %v", entries, err)
	}
	st, err := fc.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets != 6 || st.ExportedPackets != 6 || st.Flows != 2 || st.EvictedPackets != 0 {
		t.Errorf("Stats = %+v", st)
	}
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := fc.ReadFlows(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadFlows after Close: %v", err)
	}
	if _, err := fc.Table(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Table after Close: %v", err)
	}
	if _, err := fc.Stats(); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats after Close: %v", err)
	}
}
