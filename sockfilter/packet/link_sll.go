package packet

// The Linux cooked link types, for captures on libpcap's "any" device and
// sockfilter.AnyInterface.
const (
	// LinkLinuxSLL frames start with a 16-byte Linux cooked header, version
	// 1 (LINKTYPE_LINUX_SLL, DLT_LINUX_SLL): packet type, ARPHRD_ type,
	// address length, 8 bytes of address, protocol.
	LinkLinuxSLL LinkType = 113
	// LinkLinuxSLL2 frames start with a 20-byte Linux cooked header,
	// version 2 (LINKTYPE_LINUX_SLL2, DLT_LINUX_SLL2): protocol, reserved,
	// interface index, ARPHRD_ type, packet type, address length, 8 bytes
	// of address.
	LinkLinuxSLL2 LinkType = 276
)
