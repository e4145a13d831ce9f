// Package wire holds the numbers of the wire formats purebpf reads, writes
// and compiles filters for — header lengths, EtherTypes, IP protocol
// numbers and the largest snap length — so that each has one home. It
// needs only the standard library and builds on every GOOS.
package wire

// Ethernet II (IEEE 802.3) and IEEE 802.1Q.
const (
	// EthernetHeaderLen is the length of an Ethernet II header: two
	// 6-byte addresses and the 2-byte EtherType.
	EthernetHeaderLen = 14
	// EtherTypeOff is the offset of the EtherType in an Ethernet header.
	EtherTypeOff = 12
	// VLANTagLen is the length of an IEEE 802.1Q or 802.1ad tag: the TPID
	// (an EtherType) and the 2-byte TCI.
	VLANTagLen = 4
)

// EtherTypes (IEEE Registration Authority; linux/if_ether.h ETH_P_*).
const (
	EtherTypeIPv4   = 0x0800 // ETH_P_IP
	EtherTypeARP    = 0x0806 // ETH_P_ARP
	EtherTypeRARP   = 0x8035 // ETH_P_RARP
	EtherTypeVLAN   = 0x8100 // ETH_P_8021Q: IEEE 802.1Q customer tag
	EtherTypeIPv6   = 0x86dd // ETH_P_IPV6
	EtherTypeQinQ   = 0x88a8 // ETH_P_8021AD: IEEE 802.1ad service tag
	EtherTypeQinQv1 = 0x9100 // pre-standard Q-in-Q tag, still in use

	// EtherTypeMin is the smallest EtherType: smaller values in the
	// EtherType field are IEEE 802.3 lengths.
	EtherTypeMin = 0x0600
)

// IP protocol numbers (IANA; netinet/in.h IPPROTO_*).
const (
	IPProtoHopOpts  = 0
	IPProtoICMP     = 1
	IPProtoIGMP     = 2
	IPProtoTCP      = 6
	IPProtoUDP      = 17
	IPProtoRouting  = 43
	IPProtoFragment = 44
	IPProtoESP      = 50
	IPProtoAH       = 51
	IPProtoICMPv6   = 58
	IPProtoNoNext   = 59
	IPProtoDstOpts  = 60
	IPProtoSCTP     = 132
)

// Fixed header lengths.
const (
	IPv4HeaderLen = 20 // without options
	IPv6HeaderLen = 40
	TCPHeaderLen  = 20 // without options
	UDPHeaderLen  = 8
)

// MaxSnapLen is the largest snap length purebpf captures, writes or reads:
// libpcap's MAXIMUM_SNAPLEN, 256 KiB, and tcpdump's default. A frame on lo,
// whose MTU is 65536, is always shorter.
const MaxSnapLen = 262144
