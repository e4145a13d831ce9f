package pcapfilter

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Service, protocol, network and Ethernet host names, looked up as
// libpcap 1.10 looks them up (nametoaddr.c): in the system's files, with
// IANA's tables built in for a system without /etc/services or
// /etc/protocols. The files are read once, the first time a name is
// looked up.

// The files the names are read from; a test points them elsewhere.
var (
	servicesFile  = "/etc/services"
	protocolsFile = "/etc/protocols"
	networksFile  = "/etc/networks"
	ethersFile    = "/etc/ethers"
)

// servicePorts are a service name's ports over TCP and UDP, -1 where it
// has none (getservbyname's first entry of the name for the protocol).
type servicePorts struct{ tcp, udp int32 }

// nameTables are the tables read from the files.
type nameTables struct {
	services  map[string]servicePorts
	protocols map[string]uint32
	networks  map[string]uint32 // network number, as inet_network returns it
	ethers    map[string][6]byte
}

var loadNames = sync.OnceValue(func() *nameTables {
	t := &nameTables{
		services:  map[string]servicePorts{},
		protocols: map[string]uint32{},
		networks:  map[string]uint32{},
		ethers:    map[string][6]byte{},
	}
	if !readTable(servicesFile, t.addService) {
		readLines(strings.NewReader(builtinServices), t.addService)
	}
	if !readTable(protocolsFile, t.addProtocol) {
		readLines(strings.NewReader(builtinProtocols), t.addProtocol)
	}
	readTable(networksFile, t.addNetwork)
	readTable(ethersFile, t.addEther)
	return t
})

// readTable calls add with the fields of each line of the file name,
// comments removed, and reports whether the file could be read.
func readTable(name string, add func([]string)) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	readLines(f, add)
	return true
}

func readLines(r io.Reader, add func([]string)) {
	s := bufio.NewScanner(r)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		line, _, _ := strings.Cut(s.Text(), "#")
		if f := strings.Fields(line); len(f) >= 2 {
			add(f)
		}
	}
}

// addService adds a line of /etc/services: name port/proto aliases...
func (t *nameTables) addService(f []string) {
	ps, proto, ok := strings.Cut(f[1], "/")
	port, err := strconv.ParseUint(ps, 10, 16)
	if !ok || err != nil {
		return
	}
	for _, name := range append([]string{f[0]}, f[2:]...) {
		sp, ok := t.services[name]
		if !ok {
			sp = servicePorts{-1, -1}
		}
		switch {
		case proto == "tcp" && sp.tcp < 0:
			sp.tcp = int32(port)
		case proto == "udp" && sp.udp < 0:
			sp.udp = int32(port)
		}
		t.services[name] = sp
	}
}

// addProtocol adds a line of /etc/protocols: name number aliases...
func (t *nameTables) addProtocol(f []string) {
	n, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return
	}
	for _, name := range append([]string{f[0]}, f[2:]...) {
		if _, ok := t.protocols[name]; !ok {
			t.protocols[name] = uint32(n)
		}
	}
}

// addNetwork adds a line of /etc/networks: name number aliases...
func (t *nameTables) addNetwork(f []string) {
	n, ok := inetNetwork(f[1])
	if !ok {
		return
	}
	for _, name := range append([]string{f[0]}, f[2:]...) {
		if _, ok := t.networks[name]; !ok {
			t.networks[name] = n
		}
	}
}

// inetNetwork parses a network number as inet_network(3) does for the
// dotted decimal forms /etc/networks has: "127", "127.0", "127.0.0.0";
// the parts are the number's bytes, the last one lowest.
func inetNetwork(s string) (uint32, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return 0, false
	}
	var n uint32
	for _, p := range parts {
		v, ok := parseNumber(p)
		if !ok || v > 255 {
			return 0, false
		}
		n = n<<8 | v
	}
	return n, true
}

// addEther adds a line of /etc/ethers: MAC name.
func (t *nameTables) addEther(f []string) {
	mac, ok := parseMAC(f[0])
	if !ok {
		return
	}
	if _, ok := t.ethers[f[1]]; !ok {
		t.ethers[f[1]] = mac
	}
}

// The IP protocol of a service port, as pcap_nametoport reports it:
// protoUndef when the name has the same port over TCP and UDP (the
// program then tests TCP, UDP and SCTP, as for a number).
const protoUndef = 0

// lookupPort returns the port of a service name, or of a decimal number
// (as getaddrinfo takes one), and its protocol: 6 or 17 where the name is
// known for TCP only or UDP only, or has a different port over UDP (the
// TCP one is used); protoUndef where it has the same port over both
// (pcap_nametoport).
func lookupPort(name string) (port uint32, proto uint32, ok bool) {
	return loadNames().port(name)
}

// port is lookupPort in the table t.
func (t *nameTables) port(name string) (port uint32, proto uint32, ok bool) {
	if name != "" && strings.Trim(name, "0123456789") == "" {
		v, err := strconv.ParseUint(name, 10, 32)
		if err != nil || v > 1<<31 {
			v = 1 << 31 // out of range, as the caller reports
		}
		return uint32(v), protoUndef, true
	}
	sp, found := t.services[name]
	switch {
	case !found:
		return 0, 0, false
	case sp.tcp >= 0 && sp.udp == sp.tcp:
		return uint32(sp.tcp), protoUndef, true
	case sp.tcp >= 0:
		return uint32(sp.tcp), 6, true
	case sp.udp >= 0:
		return uint32(sp.udp), 17, true
	}
	return 0, 0, false
}

// lookupProtocol returns the number of an IP protocol name (its name or
// an alias in /etc/protocols, or the built-in table).
func lookupProtocol(name string) (uint32, bool) {
	v, ok := loadNames().protocols[name]
	return v, ok
}

// lookupNetwork returns the network number of a name of /etc/networks.
func lookupNetwork(name string) (uint32, bool) {
	v, ok := loadNames().networks[name]
	return v, ok
}

// lookupEther returns the MAC address of a name of /etc/ethers.
func lookupEther(name string) ([6]byte, bool) {
	v, ok := loadNames().ethers[name]
	return v, ok
}

// etherTypeNames are libpcap's ethertype names (eproto_db) that
// name an Ethernet II type compared as it is; atalk and aarp, which libpcap
// also matches in 802.2 SNAP frames, and the LLC names (iso, stp, ipx,
// netbeui) are not here.
var etherTypeNames = map[string]uint32{
	"ip": 0x0800, "ip6": 0x86dd, "arp": 0x0806, "rarp": 0x8035,
	"decnet": 0x6003, "lat": 0x6004, "loopback": 0x9000,
	"mopdl": 0x6001, "moprc": 0x6002, "sca": 0x6007,
}
