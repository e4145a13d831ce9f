package pcapfilter

import (
	"fmt"
	"net/netip"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// Compile compiles a filter expression in pcap-filter syntax (see
// pcap-filter(7)) into an eBPF socket filter for frames of link type link,
// with libpcap 1.10's meaning: the program accepts exactly the frames
// libpcap's program for the same expression and link type accepts.
//
// The program returns skb.AcceptAll for a frame it accepts and 0 for one it
// rejects. It reads an Ethernet frame relative to its link-layer header
// (SKF_LL_OFF) and a raw IP frame relative to its network header
// (SKF_NET_OFF), so it gives the same verdict attached to a packet socket
// (sockfilter.Conn), where skb->data is the link-layer header, and under
// sockfilter.Program.Test (BPF_PROG_TEST_RUN), where skb->data is the
// network header, except for `len` (below). As in classic BPF, a load
// past the end of the frame rejects it. It needs Linux 5.1 (32-bit jumps).
//
// The grammar: the protocols ip, ip6, arp, rarp, tcp, udp, sctp, icmp,
// icmp6 and igmp; `ip proto P`, `ip6 proto P`, `proto P` and `ether proto
// P` (P a number, a name such as gre or ospf, or an escaped keyword such
// as \tcp; ether proto takes libpcap's ethertype names: \ip, \ip6, \arp,
// \rarp, \decnet, \lat, \mopdl, \moprc, \sca, loopback); host, net
// (a.b.c.d/len, a.b.c.d mask m, partial a.b, IPv6 prefixes, names of
// /etc/networks), port and portrange (numbers or service names), each with
// src, dst, `src or dst` or `src and dst` and a protocol qualifier; `ether
// host`, `ether src`, `ether dst` (00:11:22:33:44:55, 00-11-..., 00.11...,
// 0011.2233.4455, 001122334455, or a name of /etc/ethers); `vlan` and
// `vlan ID`, which make everything after them in the expression look 4
// bytes further into the frame; `less N`, `greater N`; `inbound`,
// `outbound` and `ifindex N`; comparisons of arithmetic on `len`
// (`length`), numbers, named constants (tcpflags, tcp-syn, icmptype,
// icmp-echo, icmp6type, ...) and packet accesses proto[expr] and
// proto[expr:size]; `and` (&&), `or` (||), which have equal precedence
// and associate to the left, `not` (!) and parentheses. A bare value
// after `and` or `or` takes the qualifiers of the primitive before it
// (`port 80 or 443`), and so do the values of a parenthesised list, with
// `and`, `or`, `not` and nested parentheses, after qualifiers (`tcp port
// (80 or 443)`, `src host (10.0.0.1 or 10.0.0.2)`) or after `and` or `or`
// (`host 10.0.0.2 and (10.0.0.3 or 10.0.0.4)`); after a parenthesised
// expression the qualifiers are those before it, as in libpcap's grammar
// (`port 80 and (host 10.0.0.1) or 443` is port 443). The empty
// expression accepts every frame. A keyword of libpcap's that Compile
// does not compile is refused as such: `"mpls" is not supported by this
// compiler`.
//
// Names are libpcap's: a service name (`port ssh`) is looked up in
// /etc/services, and one listed for TCP only or UDP only is tested for
// that protocol only (`port ssh` is TCP's port 22; `udp port ssh` is an
// error); one with the same port for both is tested for TCP, UDP and
// SCTP, as a number is. Protocol names come from /etc/protocols. Where
// the system has no /etc/services or /etc/protocols, IANA's tables built
// into the package are used. A portrange is read as libpcap reads it: two
// decimal numbers, or two names (or a name and a number) split at the
// first "-", swapped if given high to low (`portrange 8080-80`). A host
// name is resolved when compiling, with net.DefaultResolver, and the test
// is for every address it has, IPv4 and IPv6 (`ip host` IPv4 only, `ip6
// host` IPv6 only), in the resolver's order; CompileOptions.NoResolve
// refuses host names instead. A name that does not resolve is an error
// naming it.
//
// `inbound` and `outbound` test skb->pkt_type against PACKET_OUTGOING,
// and `ifindex N` tests skb->ifindex, as libpcap's Linux programs test
// the same fields through SKF_AD_PKTTYPE and SKF_AD_IFINDEX: they are
// for live sockets, and CompileOptions.Offline refuses them with
// libpcap's message for a capture file. On lo, a packet socket sees sent
// frames only with sockfilter.Config.LoopbackOutgoing.
//
// Beyond IP, on Ethernet, as libpcap 1.10: `llc` (an 802.3 frame with an
// 802.2 header, not Novell's raw 802.3) and `llc i|s|u` or a command (rr,
// rnr, rej, ui, ua, disc, dm, sabme, test, xid, frmr); `ether proto N`
// with N up to 1500 an LLC SAP (the DSAP of an 802.3 frame) and the
// names \stp, \ipx, \iso, \netbeui, \decnet, \lat, \sca, \moprc,
// \mopdl, \atalk, \aarp and \loopback; stp, ipx (Ethernet II, SNAP, 802.2
// and raw 802.3), netbeui, iso, clnp, esis, isis, the IS-IS PDU classes
// l1, l2, iih, lsp, snp, csnp and psnp, `iso proto N`, `isis proto N`;
// atalk and aarp (Ethernet II and SNAP), decnet, lat, sca, moprc, mopdl,
// `decnet src|dst|host AREA.NODE` (the four forms of DECnet's routing
// header) and their accesses (decnet[i]); fddi, tr, wlan, ppp, slip and
// link, which mean ether; broadcast and multicast, on their own or after
// ether, and `ip multicast`, `ip6 multicast`, `ip broadcast` (which needs
// a netmask: see CompileOptions). On a raw-IP link the protocols of the link
// layer match no frame, and llc, broadcast, multicast and ether addresses
// are refused, as libpcap refuses them on DLT_RAW.
//
// Encapsulations and more IP protocols: `ah`, `esp` and `pim`
// (IPv4 or IPv6, protocol 51, 50, 103), `vrrp` and `carp` (IPv4 protocol
// 112); `mpls [label]`, `pppoed` and `pppoes [session]`, which, like
// `vlan`, move what follows them: after `mpls` (which stacks: `mpls 100
// and mpls 200`) everything reads 4 bytes further, `ip` and `ip6` test the
// last label's bottom-of-stack bit and the IP version, and only they can
// follow; after `pppoes` the link is PPP, 8 bytes further: `ip` tests the
// PPP protocol 0x0021. `protochain N` (`ip protochain`, `ip6 protochain`)
// walks the IPv6 extension headers and AH as libpcap's loop does, unrolled
// to 16 headers: a walk that needs more (which libpcap's might never end)
// stops there and matches only if the header it reached is N. `geneve
// [vni]` (UDP port 6081, version 0) makes what follows read the frame
// inside at the offsets the Geneve header gives, as libpcap computes them
// into its scratch memory: here stack slots, zero on a path that did not
// go through the Geneve test (`geneve or ip` reads the ethertype at 0
// there, as libpcap with zeroed memory; libpcap leaves it undefined); one
// `geneve` may follow another (`geneve and geneve 5`), a third is refused.
//
// VLAN tags are matched in the frame's bytes, as libpcap's programs do for
// capture files: `vlan` tests the ethertype at the current offset. A tag
// the device or the receive path has already taken out of the frame
// (skb->vlan_present; on lo, skb_vlan_untag moves the outer tag of received
// frames) is not seen, and the frame is matched as untagged. libpcap's live
// captures test SKF_AD_VLAN_TAG_PRESENT instead; that ancillary data does
// not exist under BPF_PROG_TEST_RUN, so such programs could not give the
// same verdict both ways. packet.Info.HasVLAN reports a removed tag.
//
// `len` (and `less`, `greater`) is the frame length from the link-layer
// header, which is skb->len on a packet socket: the program reads it with
// one load. Under Program.Test of an Ethernet frame the kernel has pulled
// the Ethernet header and skb->len is 14 bytes short, so a program that
// reads `len` can give another verdict there than on the socket; run it
// with sockfilter/vm's VM.RunFrame to see a frame as a live socket does,
// offline (the differential tests do). On a raw IP link skb->len is the
// frame length both ways.
//
// For the Linux cooked links of the "any" device, packet.LinkLinuxSLL and
// packet.LinkLinuxSLL2, the expression has libpcap's meaning for
// DLT_LINUX_SLL and DLT_LINUX_SLL2: ip, arp, `ether proto N` and the
// other link-level types test the header's protocol field (for SLL,
// libpcap's 802.2 handling: an LLC SAP such as `ether proto 0x42` is
// matched in the LLC header of frames of protocol LINUX_SLL_P_802_2;
// SLL2 compares the field alone), `inbound` and `outbound` its packet
// type, `ifindex N` SLL2's interface index, `link[N]` and `ether[N]` its
// bytes; `ether host` and `vlan` are refused, as libpcap refuses them.
// Compile's program is for the "any" device's live socket
// (sockfilter.AnyInterface), which has no cooked header: skb->data is the
// network header, so the header's protocol, packet type and interface
// index come from skb->protocol, skb->pkt_type and skb->ifindex (as
// libpcap's cooked socket maps them to SKF_AD_ loads), the packet is read
// relative to the network header, and other bytes of the header (its
// hardware type and address) cannot be read: such an expression is
// refused. `len` counts the header, as in the capture file: skb->len plus
// 16 or 20. (libpcap's kernel filter on its cooked socket compares skb->len
// alone, so `tcpdump -i any greater 60` drops a 42-byte IPv4 datagram that
// `tcpdump -r` of a file of it keeps with the same filter; Compile's live
// and Offline programs agree with the file.) With
// CompileOptions.Offline the program is for frames that start with the
// header, as a capture file's do (sockfilter/vm's RunFrame of
// LinkLinuxSLL and LinkLinuxSLL2 frames), and refuses `ifindex` for SLL,
// which has none, as libpcap does.
//
// Unlike libpcap, Compile does not refuse expressions that reject every
// frame (`ip and arp`): their program returns 0.
//
// An expression it cannot compile returns an *Error giving the column
// and what was expected; its Error method quotes the expression (a short
// excerpt of a long one), so a caller need not. It never accepts what it
// does not compile.
//
// Compile works in time and memory linear in the expression's length,
// and refuses, with an *Error wrapping ErrTooComplex that says which limit
// was hit, an expression longer than 4 MiB, with more than 16,384 tests
// (`port 80` is 23, `host 10.0.0.1` 9) or arithmetic operations, nested
// more than 200 deep, or whose program would have more than 65,536
// instructions or a jump the verifier cannot patch once it has expanded
// the program's legacy packet loads and divisions (a jump's offset is 16
// bits): the programs it returns stay within what the verifier loads for
// a privileged loader (CAP_BPF; an unprivileged one may load at most 4,096
// instructions).
//
// For example,
//
//	insns, err := pcapfilter.Compile("tcp dst port 80 and tcp[tcpflags] & tcp-syn != 0", packet.LinkEthernet)
func Compile(expr string, link packet.LinkType) (asm.Instructions, error) {
	return CompileWith(expr, link, nil)
}

// CompileOptions are the options of CompileWith. The zero value, or a nil
// *CompileOptions, is Compile's behaviour: a program for a live packet
// socket, with host, service and protocol names resolved.
type CompileOptions struct {
	// Offline compiles for frames read from a capture file rather than a
	// live socket, and refuses, as libpcap does for a savefile, what only
	// a live socket can tell (`inbound`, `outbound`, `ifindex`).
	Offline bool
	// NoResolve refuses host names instead of resolving them, for a
	// caller that must not wait on DNS; numeric addresses, and service
	// and protocol names (from /etc/services and /etc/protocols, or the
	// built-in IANA tables), are unaffected.
	NoResolve bool
	// Netmask is the IPv4 netmask of the network the frames come from,
	// for `ip broadcast` (libpcap's netmask argument of pcap_compile):
	// with a netmask m, the destination's host part, the bits not in m,
	// is all zeros or all ones. tcpdump passes the interface's netmask
	// for a live capture and 0.0.0.0 for a capture file, which Offline
	// takes when Netmask is the zero netip.Addr. Live without one, `ip
	// broadcast` is refused, as libpcap refuses it with
	// PCAP_NETMASK_UNKNOWN.
	Netmask netip.Addr
}

// CompileWith is Compile with options; a nil opts is Compile.
func CompileWith(expr string, link packet.LinkType, opts *CompileOptions) (asm.Instructions, error) {
	if opts == nil {
		opts = &CompileOptions{}
	}
	switch link {
	case packet.LinkEthernet, packet.LinkRawIP, packet.LinkLinuxSLL, packet.LinkLinuxSLL2:
	default:
		return nil, fmt.Errorf("compile: link type %s is not supported: use packet.LinkEthernet, LinkRawIP, LinkLinuxSLL or LinkLinuxSLL2", link)
	}
	insns, err := compile(expr, link, opts)
	if err != nil {
		err.Expr = expr
		return nil, err
	}
	return insns, nil
}

// compile lexes, parses, optimises and emits expr.
func compile(expr string, link packet.LinkType, opts *CompileOptions) (asm.Instructions, *Error) {
	if len(expr) > maxExpr {
		return nil, tooComplex(0, "shorten it", "longer than %d bytes", maxExpr)
	}
	lex, err := newLexer(expr)
	if err != nil {
		return nil, err
	}
	p := &parser{lex: lex, link: link, opts: opts}
	x, err := p.parse()
	if err != nil {
		return nil, err
	}
	return compilePred(x, frameFormFor(link, opts.Offline))
}

// compilePred compiles the predicate tree x: it builds the graph of its
// tests, runs the optimiser's passes in order (see opt.go), emits the
// program and checks that it assembles and that the kernel can load it.
func compilePred(x pred, form frameForm) (asm.Instructions, *Error) {
	g, err := newGraph(x)
	if err != nil {
		return nil, err
	}
	g.optimize()
	g.dropImplied()
	g.fuseFragment()
	g.shareTails()
	g.mergeTails()
	g.widenLoads()
	g.markIndexR0()
	insns, err := emitGraph(g, form)
	if err != nil {
		return nil, err
	}
	if i, d := farJump(insns); i >= 0 {
		return nil, tooComplex(0, hintTests, "its program needs a jump across %d instructions once the kernel has expanded them, farther than the 32767 a jump reaches", d)
	}
	// A program that does not assemble (a jump to a label nothing
	// defines) is a bug of the back end: say so rather than return it.
	if _, err := insns.Assemble(); err != nil {
		return nil, &Error{Msg: "internal error: the program does not assemble (" + err.Error() + "); please report the expression"}
	}
	return insns, nil
}
