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
// # How it compiles
//
// The compiler is a front end and a back end, as libpcap's gencode.c and
// optimize.c are. The lexer (lex.go) and the recursive-descent parser
// (parse.go, prim.go, arith.go) turn the expression into a predicate tree
// (ast.go) whose leaves are tests of a value — a packet load, perhaps
// masked or indexed, or arithmetic on loads — against a constant, spelled
// out as gencode.c spells each primitive; values are interned, so that
// equal values are one pointer. The back end (gen.go) turns the tree into
// a graph of tests with true and false edges, optimises it (opt.go, with
// facts.go and pullup.go: facts known on each edge decide later tests,
// redundant tests are threaded past, equal nodes merged, tests of the
// value in r0 pulled up, shared tails found), lays it out and emits eBPF
// (emit.go): each test a load and a conditional jump, the terminals `r0 =
// -1; exit` and a rejecting out-of-range load, identical tails
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
package pcapfilter
