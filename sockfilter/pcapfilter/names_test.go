package pcapfilter

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// TestServiceTable checks pcap_nametoport's reading of a service table: a
// name known for TCP only or UDP only is of that protocol, one with the
// same port over both is of neither (the test is then for TCP, UDP and
// SCTP), one with different ports takes the TCP one; the first entry of
// a name wins, and aliases count.
func TestServiceTable(t *testing.T) {
	tab := &nameTables{services: map[string]servicePorts{}}
	readLines(strings.NewReader(`
# comment
ssh 22/tcp # SSH
domain 53/tcp
domain 53/udp
ntp 123/udp
http 80/tcp www
http 8080/tcp
odd 100/tcp
odd 101/udp
sctponly 9/sctp
bad x/tcp
`), tab.addService)
	for _, tt := range []struct {
		name        string
		port, proto uint32
		ok          bool
	}{
		{"ssh", 22, 6, true},
		{"domain", 53, protoUndef, true},
		{"ntp", 123, 17, true},
		{"http", 80, 6, true},
		{"www", 80, 6, true},
		{"odd", 100, 6, true},
		{"sctponly", 0, 0, false},
		{"bad", 0, 0, false},
		{"nosuch", 0, 0, false},
		{"1234", 1234, protoUndef, true},
	} {
		port, proto, ok := tab.port(tt.name)
		if port != tt.port || proto != tt.proto || ok != tt.ok {
			t.Errorf("port(%q) = %d, %d, %v; want %d, %d, %v", tt.name, port, proto, ok, tt.port, tt.proto, tt.ok)
		}
	}
}

// TestBuiltinTables checks the tables used where the system has no
// /etc/services or /etc/protocols.
func TestBuiltinTables(t *testing.T) {
	tab := &nameTables{services: map[string]servicePorts{}, protocols: map[string]uint32{}}
	readLines(strings.NewReader(builtinServices), tab.addService)
	readLines(strings.NewReader(builtinProtocols), tab.addProtocol)
	for name, want := range map[string]uint32{"ssh": 22, "http": 80, "https": 443, "domain": 53, "ftp-data": 20, "ntp": 123, "snmp": 161, "bgp": 179} {
		if port, _, ok := tab.port(name); !ok || port != want {
			t.Errorf("built-in service %q = %d, %v; want %d", name, port, ok, want)
		}
	}
	for name, want := range map[string]uint32{"tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "ospf": 89, "pim": 103, "vrrp": 112, "sctp": 132, "GRE": 47} {
		if v, ok := tab.protocols[name]; !ok || v != want {
			t.Errorf("built-in protocol %q = %d, %v; want %d", name, v, ok, want)
		}
	}
}

// TestNoResolve checks that CompileOptions.NoResolve refuses host names,
// and only them.
func TestNoResolve(t *testing.T) {
	opts := &CompileOptions{NoResolve: true}
	for _, expr := range []string{"host localhost", "src localhost", "ip host localhost", "tcp port 80 and dst host (10.0.0.1 or localhost)"} {
		_, err := CompileWith(expr, packet.LinkEthernet, opts)
		if err == nil || !strings.Contains(err.Error(), `host name "localhost" is not resolved`) {
			t.Errorf("CompileWith(%q, NoResolve): %v, want the NoResolve error", expr, err)
		}
	}
	for _, expr := range []string{"host 127.0.0.1", "tcp port http", "ip proto gre", `ether proto \loopback`} {
		if _, err := CompileWith(expr, packet.LinkEthernet, opts); err != nil {
			t.Errorf("CompileWith(%q, NoResolve): %v", expr, err)
		}
	}
}

// TestOffline checks that CompileOptions.Offline refuses what only a live
// socket can tell, with libpcap's messages for a capture file.
func TestOffline(t *testing.T) {
	opts := &CompileOptions{Offline: true}
	for _, tt := range []struct {
		expr string
		link packet.LinkType
		msg  string
	}{
		{"inbound", packet.LinkEthernet, "inbound/outbound not supported on Ethernet when reading savefiles"},
		{"tcp and outbound", packet.LinkEthernet, "inbound/outbound not supported on Ethernet when reading savefiles"},
		{"outbound", packet.LinkRawIP, "inbound/outbound not supported on Raw IP when reading savefiles"},
		{"ifindex 3", packet.LinkEthernet, "ifindex not supported on Ethernet when reading savefiles"},
		{"ifindex 3", packet.LinkRawIP, "ifindex not supported on Raw IP when reading savefiles"},
	} {
		_, err := CompileWith(tt.expr, tt.link, opts)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("CompileWith(%q, %v, Offline): %v, want %q", tt.expr, tt.link, err, tt.msg)
		}
		if _, err := Compile(tt.expr, tt.link); err != nil {
			t.Errorf("Compile(%q, %v): %v", tt.expr, tt.link, err)
		}
	}
}

// TestHostNames checks the test of a host name with several addresses:
// every address, in the resolver's order, ORed; only the IPv4 ones for
// `ip host`, only the IPv6 ones for `ip6 host`, as gen_scode does.
func TestHostNames(t *testing.T) {
	saved := lookupHost
	defer func() { lookupHost = saved }()
	lookupHost = func(name string) ([]netip.Addr, error) {
		switch name {
		case "multi":
			return []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("10.0.0.2")}, nil
		case "v4only":
			return []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.3")}, nil
		}
		return nil, errors.New("no such host")
	}
	for _, tt := range [][2]string{
		{"host multi", "host 10.0.0.1 or host 2001:db8::1 or host 10.0.0.2"},
		{"src multi and tcp", "(src host 10.0.0.1 or src host 2001:db8::1 or src host 10.0.0.2) and tcp"},
		{"ip host multi", "ip host 10.0.0.1 or ip host 10.0.0.2"},
		{"ip6 dst host multi", "ip6 dst host 2001:db8::1"},
		{"host v4only", "host 10.0.0.3"},
		{"tcp port 80 and host (multi or 10.0.0.9)", "tcp port 80 and (host 10.0.0.1 or host 2001:db8::1 or host 10.0.0.2 or host 10.0.0.9)"},
	} {
		a, err := Compile(tt[0], packet.LinkEthernet)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Compile(tt[1], packet.LinkEthernet)
		if err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Errorf("%q compiles to\n%v\n%q to\n%v", tt[0], a, tt[1], b)
		}
	}
	for _, tt := range [][2]string{
		{"ip6 host v4only", `unknown host "v4only" for specified address family`},
		{"arp host multi", `"arp" qualifier applied to an IPv6 host`},
		{"tcp host multi", `"tcp" qualifier applied to a host name`},
		{"host nosuch", `unknown host "nosuch"`},
	} {
		if _, err := Compile(tt[0], packet.LinkEthernet); err == nil || !strings.Contains(err.Error(), tt[1]) {
			t.Errorf("Compile(%q): %v, want %q", tt[0], err, tt[1])
		}
	}
}
