// Package pcapfilter compiles filter expressions in tcpdump's pcap-filter
// syntax (pcap-filter(7)) to eBPF socket filters, in pure Go: no libpcap,
// no cgo. Compile gives a program that accepts exactly the frames
// libpcap 1.10's program for the same expression accepts; FromClassic
// converts a classic BPF program (tcpdump -dd, golang.org/x/net/bpf) to
// eBPF as the kernel would run it.
//
// It needs no kernel and builds on every GOOS: compile a filter on a Mac,
// run it in the vm package, load it on Linux with sockfilter.Load.
//
// # A worked example
//
// Compile an expression, print the program in the verifier's syntax, and
// attach it to a packet socket:
//
//	insns, err := pcapfilter.Compile("tcp dst port 80 and tcp[tcpflags] & tcp-syn != 0", packet.LinkEthernet)
//	if err != nil {
//		log.Fatal(err) // an *Error: the column and what was expected
//	}
//	fmt.Print(insns) // one instruction a line, as the kernel's log prints them
//	prog, err := sockfilter.Load(insns, nil)
//	if err != nil {
//		log.Fatal(err)
//	}
//	conn, err := sockfilter.Listen("eth0", prog, nil)
//
// For the "any" device (sockfilter.AnyInterface), compile for
// packet.LinkLinuxSLL2, as tcpdump -i any does: the program reads the
// cooked header's fields (`arp`, `inbound`, `ifindex 2`) from the socket
// buffer, which has no such header; with CompileOptions.Offline, it reads
// them from the frames of a LINUX_SLL2 capture file, in the vm package
// (cooked.go).
//
// # How it compiles
//
// The compiler is a front end and a back end, as libpcap's gencode.c and
// optimize.c are. The lexer (lex.go) and the recursive-descent parser
// (parse.go, prim.go, arith.go; idlist.go for parenthesised values,
// parse_names.go and names.go for service, protocol, host and other
// names, live.go for inbound, outbound and ifindex, words.go for the
// keywords it refuses) turn the expression into a predicate tree
// (ast.go) whose leaves are tests of a value — a packet load, perhaps
// masked or indexed, or arithmetic on loads — against a constant, spelled
// out as gencode.c spells each primitive; values are interned, so that
// equal values are one pointer. The back end (gen.go) turns the tree into
// a graph of tests with true and false edges, optimises it (opt.go, with
// facts.go and pullup.go: facts known on each edge decide later tests,
// redundant tests are threaded past, equal nodes merged, tests of the
// value in r0 pulled up, shared tails found), lays it out and emits eBPF
// (emit.go): each test a load and a conditional jump, the terminals `r0 =
// -1; exit` and `r0 = 0; exit`, identical tails
// cross-jumped into one (crossjump.go). Every stage is linear in the
// expression's size; limits.go has the limits past which Compile refuses
// an expression, and the model of what the kernel makes of the program
// that they are checked against; error.go the *Error.
//
// Compile's programs keep the socket buffer in r6 (the legacy packet loads
// need it there), the value tested in r0, the offset of the transport
// header in r7 (4 * IHL, or 40 on the shared IPv6 path) and the frame
// length in r8; gen.go's comment has the whole table. FromClassic's
// (classic.go) keep A in r0 and X in r7, A in r8 while `ldx 4*([k]&0xf)`
// loads, the frame length in r9 (FromClassicLinkRelative), and the scratch
// words M[0] to M[15] on the stack; classic_check.go checks a program as
// the kernel's classic checker does, classic_conv.go converts each
// instruction.
//
// # Where it departs from libpcap
//
// Compile's verdict is that of libpcap 1.10's program for a live capture,
// but in two places where that program is wrong, and purebpf is kept
// right on purpose (sockfilter/vm's TestLibpcapDivergences pins both):
//
//   - In arithmetic, `X op Y`, libpcap keeps only the left operand's
//     protocol test. `tcpdump -d '0 + ip[8] > 0'` has no EtherType test at
//     all, so its program reads byte 22 of an IPv6 or ARP frame as the
//     IPv4 TTL and accepts an IPv6 frame whose hop limit is not 0.
//     Compile tests the protocol of every packet access in the relation:
//     `0 + ip[8] > 0` accepts only IPv4 packets.
//   - A shift by 32 or more: `ip[8] >> (ip[9] + 15) = 64` on a UDP packet
//     with a TTL of 64 shifts by 17 + 15 = 32. libpcap's user-space filter
//     (and golang.org/x/net/bpf, which follows it) gives 0, so tcpdump -r
//     rejects the packet, while the kernel, and so a live tcpdump, masks
//     the count to 5 bits, shifts by 0 and accepts it. Compile's program
//     runs in the kernel, and the vm package does as the kernel does: it
//     accepts.
//
// Where libpcap's program is undefined or cannot be loaded, Compile
// chooses: protochain walks at most 16 headers (libpcap's classic loop
// has no bound, and the kernel refuses its backward jumps); a path that
// skips `geneve`'s test reads its offsets as 0; and `len` on the live
// "any" socket counts the cooked header, as in a capture file of it
// (libpcap's kernel filter there compares skb->len alone).
//
// # Splicing a filter into another program
//
// CompileSplice (and Splice, for a program of Compile's) rewrites the
// socket filter into code to put inside another eBPF program — tc,
// XDP, cgroup_skb, a tracing program on a kernel function that takes a
// socket buffer — as cloudflare/cbpfc's EBPFOpts let cilium/pwru and
// mozillazg/ptcpdump embed libpcap's programs. It rewrites each
// instruction by what it does: packet loads into loads in the target's
// access mode, `len` into the target's frame length, the returns into
// jumps, Compile's registers into those the options allow. The verdicts
// stay libpcap's: a load past the end of the packet means no match.
//
// SpliceOptions.Access says how the filter reads the packet; each mode
// has its minimum kernel, and the code uses 32-bit jumps (Linux 5.1)
// whatever the mode:
//
//   - DirectAccess reads between the packet pointers in PacketStart and
//     PacketEnd (tc's skb->data and skb->data_end, Linux 4.7; XDP's, 4.8;
//     cgroup_skb's, 4.20), checking each load against the end before it
//     reads, as the verifier requires, except where an earlier check on
//     every path into it covers it; an index is bounded first, as the
//     verifier's packet pointer arithmetic requires. It reaches the first
//     65,535 bytes (MAX_PACKET_OFF), of the linear data only: in tc, call
//     bpf_skb_pull_data before the filter for a non-linear socket buffer.
//     `len` is skb->len with SkbContext (Context holding the struct
//     __sk_buff *), else PacketEnd - PacketStart, a pointer subtraction
//     the verifier allows only with CAP_PERFMON.
//   - SkbLoadBytes calls bpf_skb_load_bytes (Linux 4.5) on the struct
//     __sk_buff in Context, at offsets from skb->data, which must be where
//     the packet starts (tc: the link-layer header; cgroup_skb: the network
//     header); it reads paged data too. `len` is skb->len.
//   - ProbeReadKernel calls bpf_probe_read_kernel (Linux 5.5) on the
//     kernel's struct sk_buff whose address is in Context, from
//     skb->head + skb->mac_header (or skb->network_header; an unset
//     header, 0xffff, means no match) to the end of the linear data,
//     skb->head + skb->tail: a load in the paged data does not match,
//     and `len` counts the paged bytes (skb->data_len). Layout gives
//     struct sk_buff's offsets: KernelSkbLayout reads them from the
//     kernel's BTF (internal/btf parses it). It is for tracing programs,
//     which may call the helper: raw tracepoints (Linux 4.17) such as
//     net_dev_queue and netif_receive_skb, kprobes and fentry programs on
//     skb functions.
//
// As for a socket filter, a VLAN tag that the device or the receive path
// has taken out of the frame (into skb->vlan_tci) is not seen: `vlan`
// matches the tags that are in the packet's bytes.
//
// A filter that reads the socket buffer's fields, `inbound` and `outbound`
// (skb->pkt_type) and `ifindex`, needs a struct __sk_buff: SkbLoadBytes,
// or DirectAccess with SkbContext. Only a packet socket's copy of an
// outgoing frame has PACKET_OUTGOING: in tc, the direction is where the
// program is attached.
//
// The link type says where the packet starts: packet.LinkEthernet at the
// link-layer header (tc on an Ethernet device, XDP, skb->mac_header),
// packet.LinkRawIP at the network header (cgroup_skb, tc on a tun device,
// skb->network_header in a function of the IP layer). For packet.LinkRawIP,
// CompileSplice refuses with ErrLinkLayer an expression that needs the
// link-layer header (`ether host`, `vlan`) or can match only frames
// without an IP packet (`arp`), which libpcap compiles for DLT_RAW to a
// program that rejects everything.
//
// The contract with the program around the filter:
//
//   - Registers: the filter reads PacketStart, PacketEnd and Context and
//     never writes them; it writes the Working registers (default: r0 to
//     r9 but r6 and those three) and, in the helper modes, r0 to r5, as
//     any helper call does — Context in r0 to r5 is saved on the stack
//     first. Values it keeps across helper calls need working registers
//     among r6 to r9. Splice shares registers between values that do not
//     live at once, and says how many more it needs when they are too
//     few: cilium/pwru's four (r0 to r3, packet pointers in r4 and r5)
//     are enough for every expression of the test list.
//   - The stack: only the StackSize bytes below r10 - StackOffset, 8-byte
//     aligned (the verifier wants aligned stack accesses); Splice says how
//     many it needs when they are too few. The filter needs no stack for
//     direct access without arithmetic, at most a few dozen bytes
//     otherwise.
//   - Labels: each of the filter's own starts with LabelPrefix, so that
//     several filters can live in one program. It ends by jumping to
//     Match or NoMatch, or falling through past its end where one is
//     empty; when both are, it sets Result (r0 unless said otherwise) to 1
//     or 0 and falls through. Its code never ends in an exit: the caller
//     supplies what follows. Each outcome is jumped to on some path even
//     for a filter that always matches (the empty expression), on a path
//     the verifier sees is never taken, as the verifier refuses code
//     nothing jumps to.
//   - The verifier: the packet pointers must be the verifier's packet
//     pointers when the filter runs, in registers, not reloaded from the
//     stack by the filter, and still valid (no call of a helper that
//     changes the packet, such as bpf_skb_pull_data, between their load
//     and the filter); the filter checks every access itself, so the
//     program around it needs no check. Conditional jumps reach 32,767
//     instructions: Splice checks its own, and Match and NoMatch should
//     follow the filter closely; a far unconditional jump becomes a gotol
//     (Linux 6.6) when the program is assembled.
//
// See ExampleCompileSplice and the examples after it for each mode, and
// internal/bench's splice_test.go for a tc program built with
// github.com/cilium/ebpf around a spliced filter, loaded and run.
package pcapfilter
