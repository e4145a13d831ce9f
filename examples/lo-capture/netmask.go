package main

import (
	"net"
	"net/netip"
)

// netmaskFor returns the netmask `ip broadcast` is compiled with, as
// tcpdump takes it: 0.0.0.0 for -r, else the netmask of the interface's
// first IPv4 address (pcap_lookupnet), or 0.0.0.0 if it has none.
func netmaskFor(opts *options) netip.Addr {
	if opts.read != "" {
		return netip.IPv4Unspecified()
	}
	return interfaceNetmask(resolveInterface(opts.iface))
}

// interfaceNetmask returns the netmask of the first IPv4 address of the
// interface ifname, or 0.0.0.0 if it has none or there is no such
// interface.
func interfaceNetmask(ifname string) netip.Addr {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.IPv4Unspecified()
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil {
			continue
		}
		mask := ipn.Mask
		if len(mask) == net.IPv6len {
			mask = mask[12:]
		}
		if m, ok := netip.AddrFromSlice(mask); ok && m.Is4() {
			return m
		}
	}
	return netip.IPv4Unspecified()
}
