package flow

import (
	"net/netip"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

func TestKeyOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		frame string
		dir   packet.Direction
		want  string
	}{
		{"tcp4", packet.DirectionOutgoing, "if 3 outgoing TCP 10.0.0.1:40000 > 10.0.0.2:80"},
		{"udp6", packet.DirectionHost, "if 3 host UDP [2001:db8::1]:41002 > [2001:db8::2]:41003"},
		{"raw_tcp6", packet.DirectionHost, "if 3 host TCP [2001:db8::1]:443 > [2001:db8::2]:50001"},
		{"icmp4_echo", packet.DirectionHost, "if 3 host ICMP 10.0.0.1 > 10.0.0.2 type 8 code 0"},
		{"icmp6_echo", packet.DirectionHost, "if 3 host ICMPv6 2001:db8::2 > 2001:db8::1 type 129 code 0"},
		{"vlan_tcp4", packet.DirectionHost, "if 3 host vlan 100 TCP 10.0.0.1:40001 > 10.0.0.2:443"},
		{"qinq_udp4", packet.DirectionHost, "if 3 host vlan 200 UDP 10.0.0.1:1000 > 10.0.0.2:2000"},
		{"frag4_first", packet.DirectionHost, "if 3 host UDP 10.0.0.1:41004 > 10.0.0.2:41005"},
		{"frag4_rest", packet.DirectionHost, "if 3 host UDP 10.0.0.1 > 10.0.0.2"},
		{"frag6_rest", packet.DirectionHost, "if 3 host UDP 2001:db8::1 > 2001:db8::2"},
		{"gre4", packet.DirectionHost, "if 3 host proto 47 10.0.0.1 > 10.0.0.2"},
		{"arp_request", packet.DirectionBroadcast, "if 3 broadcast ethertype 0x0806"},
		{"local_ether", packet.DirectionHost, "if 3 host ethertype 0x88b5"},
	}
	for _, tt := range tests {
		t.Run(tt.frame, func(t *testing.T) {
			f := testutil.NamedFrame(t, tt.frame)
			info := packet.Info{Ifindex: 3, Direction: tt.dir, Length: len(f.Data)}
			var r packet.Record
			if err := packet.Parse(f.Data, packet.LinkType(f.Link), &info, &r); err != nil {
				t.Fatal(err)
			}
			k := KeyOf(&r)
			if got := k.String(); got != tt.want {
				t.Errorf("KeyOf(%s) = %q, want %q", tt.frame, got, tt.want)
			}
			if !k.IsIP() && (k.Src.IsValid() || k.Dst.IsValid() || k.IPProto != 0 || k.SrcPort != 0 || k.DstPort != 0) {
				t.Errorf("KeyOf(%s) = %#v: a flow that is not IP has no addresses, protocol or ports", tt.frame, k)
			}
		})
	}
}

func TestKeyOfTruncated(t *testing.T) {
	t.Parallel()
	var r packet.Record
	if err := packet.Parse([]byte{1, 2, 3}, packet.LinkEthernet, &packet.Info{Ifindex: 2, Direction: packet.DirectionHost}, &r); err == nil {
		t.Fatal("a 3-byte Ethernet frame parsed")
	}
	if got, want := KeyOf(&r), (Key{Ifindex: 2, Direction: packet.DirectionHost}); got != want {
		t.Errorf("KeyOf(truncated) = %v, want %v", got, want)
	}
}

func TestKeyString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  Key
		want string
	}{
		{Key{}, "if 0 unknown ethertype 0x0000"},
		{Key{EtherType: 0x0800, IPProto: 6}, "if 0 unknown TCP - > -"},
		{Key{EtherType: 0x0800, IPProto: 17, SrcPort: 1, DstPort: 2}, "if 0 unknown UDP -:1 > -:2"},
		{Key{EtherType: 0x86dd, IPProto: 132, Src: netip.MustParseAddr("::1"), Dst: netip.MustParseAddr("::2"), SrcPort: 9, DstPort: 10},
			"if 0 unknown SCTP [::1]:9 > [::2]:10"},
		// ICMP over IPv6 is not an ICMP flow: DstPort is a port.
		{Key{EtherType: 0x86dd, IPProto: 1, Src: netip.MustParseAddr("::1"), Dst: netip.MustParseAddr("::2"), DstPort: 0x0800},
			"if 0 unknown ICMP [::1]:0 > [::2]:2048"},
		{Key{Ifindex: 7, Direction: packet.DirectionMulticast, EtherType: 0x86dd, IPProto: 58, VLAN: 4095,
			Src: netip.MustParseAddr("fe80::1"), Dst: netip.MustParseAddr("ff02::1"), DstPort: 134 << 8},
			"if 7 multicast vlan 4095 ICMPv6 fe80::1 > ff02::1 type 134 code 0"},
	}
	for _, tt := range tests {
		if got := tt.key.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestEndReasonString(t *testing.T) {
	t.Parallel()
	want := map[EndReason]string{
		0: "EndReason(0)", EndIdle: "idle timeout", EndActive: "active timeout", EndOfFlow: "end of flow detected",
		EndForced: "forced end", EndLackOfResources: "lack of resources", 6: "EndReason(6)",
	}
	for r, s := range want {
		if got := r.String(); got != s {
			t.Errorf("EndReason(%d).String() = %q, want %q", uint8(r), got, s)
		}
	}
}

func TestCountersAdd(t *testing.T) {
	t.Parallel()
	var c Counters
	c.Add(74, t0, packet.TCPSyn)
	c.Add(1500, t0.Add(time.Second), packet.TCPAck)
	c.Add(-1, t0.Add(2*time.Second), packet.TCPFin)
	want := Counters{Packets: 3, Bytes: 1574, First: t0, Last: t0.Add(2 * time.Second), TCPFlags: packet.TCPSyn | packet.TCPAck | packet.TCPFin}
	if c != want {
		t.Errorf("Counters = %+v, want %+v", c, want)
	}
}

func TestNewMeter(t *testing.T) {
	t.Parallel()
	m, err := NewMeter(&Config{IdleTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if m.ActiveTimeout() != DefaultActiveTimeout || m.IdleTimeout() != time.Second {
		t.Errorf("timeouts %v, %v; want %v, 1s", m.ActiveTimeout(), m.IdleTimeout(), DefaultActiveTimeout)
	}
	if _, err := NewMeter(&Config{ActiveTimeout: -time.Second}); err == nil {
		t.Error("NewMeter took a negative active timeout")
	}
}

// The per-reading path allocates nothing once the meter's map holds the
// table's keys.
func TestMeterNoAllocs(t *testing.T) {
	m, err := NewMeter(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := []Key{tcpKey, udpKey, icmpKey}
	c := Counters{Packets: 1, Bytes: 100, First: t0, Last: t0}
	flows := make([]Flow, 0, 16)
	now := t0
	read := func() {
		now = now.Add(time.Second)
		c.Packets++
		c.Last = now
		for _, k := range keys {
			m.Observe(k, c)
		}
		flows = m.Expire(now, nil, flows[:0])
	}
	read()
	if n := testing.AllocsPerRun(200, read); n != 0 {
		t.Errorf("a reading allocates %v times, want 0", n)
	}
	if len(flows) != 0 && flows[0].EndReason != EndActive {
		t.Errorf("unexpected record %s", flowLine(flows[0]))
	}
}

func TestKeyAppendToNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(100, func() { buf = udpKey.AppendTo(buf[:0]) }); n != 0 {
		t.Errorf("AppendTo allocates %v times, want 0", n)
	}
}
