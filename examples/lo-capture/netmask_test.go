package main

import (
	"net"
	"net/netip"
	"testing"
)

// TestNetmaskFor checks the netmask `ip broadcast` gets: the interface's,
// as tcpdump's pcap_lookupnet finds it, and 0.0.0.0 for -r or an interface
// without an IPv4 address.
func TestNetmaskFor(t *testing.T) {
	if got := netmaskFor(&options{read: "x.pcap", iface: "lo"}); got != netip.IPv4Unspecified() {
		t.Errorf("-r: netmask %v, want 0.0.0.0", got)
	}
	if got := interfaceNetmask("no-such-interface0"); got != netip.IPv4Unspecified() {
		t.Errorf("a missing interface: netmask %v, want 0.0.0.0", got)
	}
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no lo:", err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	want := netip.IPv4Unspecified()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			b := net.CIDRMask(p.Bits(), 32)
			want = netip.AddrFrom4([4]byte(b))
			break
		}
	}
	if got := interfaceNetmask("lo"); got != want {
		t.Errorf("lo: netmask %v, want %v (from %v)", got, want, addrs)
	}
}
