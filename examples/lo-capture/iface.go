package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// resolveInterface returns the interface -i names: an interface of that
// name, or else, for a number, the interface with that index, which -D
// prints first on each line (as tcpdump takes the numbers its -D prints):
// 0 is "any".
func resolveInterface(name string) string {
	if _, err := net.InterfaceByName(name); err == nil || name == sockfilter.AnyInterface {
		return name
	}
	if name == "0" {
		return sockfilter.AnyInterface
	}
	if n, err := strconv.Atoi(name); err == nil && n > 0 {
		if ifi, err := net.InterfaceByIndex(n); err == nil {
			return ifi.Name
		}
	}
	return name
}

// listInterfaces prints the interfaces for -D, one a line as tcpdump -D
// prints them — "1.lo [Up, Running, Loopback]" — with the interface index
// as the number and the link type in tcpdump's place for a description:
// "1.lo (link-type EN10MB, Ethernet) [Up, Running, Loopback]"; the "any"
// device first, as 0.
func listInterfaces(w io.Writer) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	bw := bufio.NewWriter(w)
	// The "any" device first, as number 0, as tcpdump lists it up and
	// running.
	any := packet.LinkLinuxSLL2
	fmt.Fprintf(bw, "0.%s (link-type %s, %s) [Up, Running]\n", sockfilter.AnyInterface, any, any.Description())
	for _, ifi := range ifs {
		desc := "unsupported link type"
		if link, err := sockfilter.InterfaceLinkType(ifi.Name); err == nil {
			desc = "link-type " + link.String() + ", " + link.Description()
		}
		fmt.Fprintf(bw, "%d.%s (%s) [%s]\n", ifi.Index, ifi.Name, desc, interfaceStatus(ifi))
	}
	return bw.Flush()
}

// interfaceStatus returns what tcpdump -D prints in brackets: "Up",
// "Running", "Loopback", "Wireless" (or "none"), then for an interface
// that is not loopback its connection status, from its operstate
// (/sys/class/net/NAME/operstate, RFC 2863's ifOperStatus): "Connected"
// when up, "Disconnected" when down, dormant or lower-layer-down, and
// "Connection status unknown" otherwise.
func interfaceStatus(ifi net.Interface) string {
	var parts []string
	if ifi.Flags&net.FlagUp != 0 {
		parts = append(parts, "Up")
	}
	if ifi.Flags&net.FlagRunning != 0 {
		parts = append(parts, "Running")
	}
	loopback := ifi.Flags&net.FlagLoopback != 0
	if loopback {
		parts = append(parts, "Loopback")
	}
	sys := "/sys/class/net/" + ifi.Name
	if _, err := os.Stat(sys + "/wireless"); err == nil {
		parts = append(parts, "Wireless")
	}
	if len(parts) == 0 {
		parts = append(parts, "none")
	}
	if loopback {
		return strings.Join(parts, ", ")
	}
	switch state, _ := os.ReadFile(sys + "/operstate"); strings.TrimSpace(string(state)) {
	case "up":
		parts = append(parts, "Connected")
	case "down", "lowerlayerdown", "dormant":
		parts = append(parts, "Disconnected")
	case "":
	default:
		parts = append(parts, "Connection status unknown")
	}
	return strings.Join(parts, ", ")
}

// listLinkTypes prints the interface's link type for -L, as tcpdump -L
// does. A packet socket reads one link type from an interface, so there
// is no -y to choose another.
func listLinkTypes(w io.Writer, ifname string) error {
	link, err := sockfilter.InterfaceLinkType(ifname)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "Data link types for %s:\n  %s (%s)\n", ifname, link, link.Description())
	return err
}

// linkTypeFor returns the link type a filter is compiled for with -d: the
// -r file's, or else the interface's.
func linkTypeFor(opts *options) (packet.LinkType, error) {
	if opts.read == "" {
		return sockfilter.InterfaceLinkType(resolveInterface(opts.iface))
	}
	in, err := openInput(opts.read)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	return in.pr.LinkType(), nil
}
