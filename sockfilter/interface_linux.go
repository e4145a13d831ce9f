package sockfilter

import (
	"errors"
	"fmt"
	"os"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// InterfaceLinkType returns the link type of the frames Listen would read
// from the interface named ifname, so that a filter can be compiled for it
// before listening (see pcapfilter.Compile): packet.LinkLinuxSLL2 for
// AnyInterface. It needs no privileges: it asks with ioctl(2) SIOCGIFHWADDR
// on a datagram socket of the calling thread's network namespace
// (netdevice(7)). A missing interface gives an error naming it that
// matches unix.ENODEV; a name Listen would refuse (empty, too long, with a
// NUL byte) is refused.
func InterfaceLinkType(ifname string) (packet.LinkType, error) {
	if err := checkInterfaceName(ifname); err != nil {
		return 0, fmt.Errorf("interface %q: %w", ifname, err)
	}
	if ifname == AnyInterface {
		return packet.LinkLinuxSLL2, nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("interface %q: %w", ifname, os.NewSyscallError("socket", err))
	}
	defer unix.Close(fd)
	_, hatype, err := interfaceInfo(fd, ifname)
	if err == nil {
		var link packet.LinkType
		if link, err = linkTypeFromARPHRD(hatype); err == nil {
			return link, nil
		}
	}
	return 0, fmt.Errorf("interface %q: %w", ifname, err)
}

// interfaceInfo returns the index and device type (ARPHRD_*) of the
// interface named ifname, asking through the socket fd so that the answer
// comes from the socket's network namespace (netdevice(7): SIOCGIFINDEX,
// SIOCGIFHWADDR). The name has passed checkInterfaceName.
func interfaceInfo(fd int, ifname string) (int, uint16, error) {
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, 0, fmt.Errorf("interface name: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		err = os.NewSyscallError("ioctl SIOCGIFINDEX", err)
		if errors.Is(err, unix.ENODEV) {
			return 0, 0, fmt.Errorf("no such network interface (%w)", err)
		}
		return 0, 0, err
	}
	ifindex := int(ifr.Uint32())
	// SIOCGIFHWADDR fills ifr_hwaddr, whose sa_family is the device type.
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, 0, os.NewSyscallError("ioctl SIOCGIFHWADDR", err)
	}
	return ifindex, ifr.Uint16(), nil
}

// linkTypeFromARPHRD maps a device type (ARPHRD_* in linux/if_arp.h) to
// the link type of the frames a SOCK_RAW packet socket reads from it.
func linkTypeFromARPHRD(hatype uint16) (packet.LinkType, error) {
	switch hatype {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		return packet.LinkEthernet, nil
	case unix.ARPHRD_NONE, unix.ARPHRD_RAWIP:
		return packet.LinkRawIP, nil
	}
	name := arphrdNames[hatype]
	if name == "" {
		name = "ARPHRD " + fmt.Sprint(hatype)
	}
	return 0, fmt.Errorf("unsupported link type %s: purebpf reads Ethernet (ARPHRD_ETHER, ARPHRD_LOOPBACK) and raw IP (ARPHRD_NONE, ARPHRD_RAWIP) devices", name)
}

// arphrdNames names the device types an error is most likely to meet.
var arphrdNames = map[uint16]string{
	unix.ARPHRD_PPP:                "ARPHRD_PPP",
	unix.ARPHRD_TUNNEL:             "ARPHRD_TUNNEL (ipip)",
	unix.ARPHRD_TUNNEL6:            "ARPHRD_TUNNEL6 (ip6tnl)",
	unix.ARPHRD_SIT:                "ARPHRD_SIT",
	unix.ARPHRD_IPGRE:              "ARPHRD_IPGRE",
	unix.ARPHRD_IP6GRE:             "ARPHRD_IP6GRE",
	unix.ARPHRD_INFINIBAND:         "ARPHRD_INFINIBAND",
	unix.ARPHRD_CAN:                "ARPHRD_CAN",
	unix.ARPHRD_IEEE80211_RADIOTAP: "ARPHRD_IEEE80211_RADIOTAP",
	unix.ARPHRD_IEEE802154:         "ARPHRD_IEEE802154",
	unix.ARPHRD_VOID:               "ARPHRD_VOID",
}

// checkInterfaceName checks a name Listen or InterfaceLinkType is given:
// the kernel reads an interface name up to its first NUL, so "lo\x00xx"
// would name lo.
func checkInterfaceName(ifname string) error {
	switch {
	case ifname == "":
		return errors.New("interface name is empty")
	case len(ifname) >= unix.IFNAMSIZ:
		return fmt.Errorf("interface name is longer than %d bytes", unix.IFNAMSIZ-1)
	}
	for i := 0; i < len(ifname); i++ {
		if ifname[i] == 0 {
			return fmt.Errorf("interface name contains a NUL byte at %d", i)
		}
	}
	return nil
}
