// Package sockfilter loads hand-assembled eBPF socket filters, attaches
// them to AF_PACKET sockets and reads the frames they let through — with
// bpf(2) and packet(7) called directly: no C compiler, no libbpf, no cgo.
//
// A program is an asm.Instructions: written by hand with the asm package
// and the socket-filter helpers of package skb, or compiled from a
// tcpdump expression by [github.com/purebpf/purebpf/sockfilter/pcapfilter.Compile].
// Load verifies it and loads it as a BPF_PROG_TYPE_SOCKET_FILTER (Linux
// 3.19), Listen attaches it to a packet socket on one interface before
// binding, so no unfiltered frame is ever queued, NextFrames and ReadFrame
// read the frames it accepts, and
// [github.com/purebpf/purebpf/sockfilter/packet.Parse] decodes them into a
// Record.
//
// The packages under sockfilter need no kernel and build on every GOOS:
// packet (frames and records), pcapfile (capture files), skb (the
// program interface), pcapfilter (the compiler) and vm (a pure-Go
// interpreter). This one needs Linux; elsewhere its functions return an
// error matching errors.ErrUnsupported.
//
// # A worked example
//
// This program keeps IPv4 UDP datagrams to port 53 and drops everything
// else. The kernel runs it on every frame with r1 pointing to the struct
// __sk_buff; its return value is the number of bytes of the frame to keep,
// 0 to drop it.
//
//	insns := append(skb.Prologue(), // r6 = r1, for the packet loads
//		skb.LoadLink(12, asm.Half), // r0 = EtherType
//		asm.JNE.Imm(asm.R0, 0x0800, "drop"),
//		skb.LoadLink(14+9, asm.Byte), // r0 = IPv4 protocol
//		asm.JNE.Imm(asm.R0, 17, "drop"),
//		skb.LoadLink(14+6, asm.Half), // r0 = flags, fragment offset
//		asm.JSet.Imm(asm.R0, 0x1fff, "drop"), // not the first fragment
//		skb.LoadLink(14, asm.Byte), // r0 = version, IHL
//		asm.And.Imm(asm.R0, 0x0f),
//		asm.LSh.Imm(asm.R0, 2), // r0 = IPv4 header length
//		asm.Mov.Reg(asm.R7, asm.R0),
//		skb.LoadLinkInd(asm.R7, 14+2, asm.Half), // r0 = UDP destination port
//		asm.JNE.Imm(asm.R0, 53, "drop"),
//		asm.Mov.Imm(asm.R0, -1), // keep the whole frame
//		asm.Exit(),
//		asm.Mov.Imm(asm.R0, 0).WithLabel("drop"),
//		asm.Exit(),
//	)
//	prog, err := sockfilter.Load(insns, &sockfilter.LoadOptions{Name: "udp53"})
//	if err != nil {
//		log.Fatal(err) // a *VerifierError if the verifier refused it
//	}
//	defer prog.Close()
//
//	conn, err := sockfilter.Listen("lo", prog, nil)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer conn.Close()
//
//	var rec packet.Record
//	for {
//		frame, info, err := conn.NextFrame() // in place, valid until the next read
//		if err != nil {
//			log.Fatal(err)
//		}
//		if err := packet.Parse(frame, conn.LinkType(), &info, &rec); err != nil {
//			continue
//		}
//		fmt.Println(info.Time, info.Direction, &rec)
//	}
//
// The Program may be closed once Listen has returned: the socket holds its
// own reference to the program.
//
// A Conn reads from a TPACKET_V3 ring that the kernel fills (Config sets
// its geometry; Conn.Ring says whether one could be set up). ReadFrame
// copies each frame into the caller's buffer; NextFrame returns it in
// place, with no copy at all, valid until the next read; NextFrames returns
// a batch of them in place — the fastest way to read, and what
// examples/lo-capture does. A frame read in place holds its bytes until the
// next read and stays readable memory after, Close or no Close, never
// showing another Conn's bytes (see Conn.NextFrame); Close gives the
// kernel its ring back at once.
//
// By default a Conn sees the frames the host receives and those it sends,
// each packet on a loopback device once, as tcpdump does; Config.Direction
// narrows that to either. Listen on AnyInterface captures on every
// interface at once, each frame behind a Linux cooked header
// (packet.LinkLinuxSLL2) that names its interface.
//
// # Verifier errors
//
// When the verifier refuses a program, Load loads it again with the
// verifier log and returns a *VerifierError whose Error is one line that
// points into the program as written:
//
//	load program: insn 7 (after label ipv4): r0 = *(u8 *)(r2 +0): R2 invalid mem access 'scalar'
//
// Index counts instructions, not the verifier's 8-byte slots (LD_IMM64
// takes two); Log holds every line of the log, and %+v prints them. The
// errno is kept: errors.Is(err, unix.EACCES) works. A program that exits
// without setting r0 fails with "R0 !read_ok". LoadOptions.LogLevel asks
// for the log of a program that loads, too (Program.VerifierLog).
//
// # Test and live verdicts
//
// Program.Test runs a program on a frame in the kernel (BPF_PROG_TEST_RUN)
// without a socket or traffic. It does not see the frame quite as a live
// socket does:
//
//   - On a SOCK_RAW packet socket the program's data starts at the
//     link-layer header: asm.LoadAbs(0, ...) reads the first byte of the
//     destination MAC address, and skb->len counts the whole frame.
//   - Under Test, the kernel consumes the Ethernet header (eth_type_trans)
//     and the data starts at the network header: asm.LoadAbs(0, ...) reads
//     the first byte of the IP header, and skb->len is 14 bytes shorter.
//
// The link-layer and network headers are at known places in both. To get
// the same verdict from both, read the frame relative to them:
//
//   - skb.LoadLink and skb.LoadLinkInd are legacy packet loads at
//     SKF_LL_OFF + off: skb.LoadLink(12, asm.Half) is the EtherType under
//     Test and live alike. skb.LoadNet and skb.LoadNetInd count from the
//     network header (SKF_NET_OFF). All need the socket buffer in r6
//     (start the program with skb.Prologue), clobber r1 to r5, and end
//     the program returning 0 when the frame is shorter than the load.
//   - skb.LoadBytesRelative copies bytes to the stack with
//     bpf_skb_load_bytes_relative (Linux 4.18) from skb.HeaderMAC or
//     skb.HeaderNet, and returns an error in r0 instead of ending the
//     program.
//
// and return 0 or 0xffffffff (asm.Mov.Imm(asm.R0, -1)) rather than a
// length computed from skb->len. Avoid asm.LoadAbs and asm.LoadInd with
// offsets from 0, and direct reads of skb->len, where the verdict must
// agree. skb->pkt_type also differs: Test gives it as lo would receive the
// frame, PACKET_HOST only for the all-zeros destination MAC address of lo,
// PACKET_MULTICAST for any group address (ff:ff:ff:ff:ff:ff included: lo's
// broadcast address is all zeros) and PACKET_OTHERHOST for other unicast
// addresses.
//
// # Maps
//
// A Map (NewMap) is kernel memory that programs and user space share:
// arrays and hash maps, their per-CPU and LRU variants, a RingBuf that
// programs send records through (read in place with a RingBufReader), and
// a PerfEventArray for kernels older than Linux 5.8 (read with a
// PerfReader). A program names the maps it uses, with asm.LoadMapPtr or
// `r1 = map[counts]` in asm text, and Load resolves the names from
// LoadOptions.Maps:
//
//	counts, err := sockfilter.NewMap(&sockfilter.MapSpec{Type: sockfilter.Array, ValueSize: 8, MaxEntries: 1})
//	...
//	prog, err := sockfilter.Load(insns, &sockfilter.LoadOptions{Maps: map[string]*sockfilter.Map{"counts": counts}})
//
// Maps and programs can be pinned on a bpf file system (Pin,
// LoadPinnedMap, LoadPinnedProgram), so that they outlive the process.
//
// # Records and flows built in the kernel
//
// ListenRecords and ListenFlows splice the caller's filter in front of a
// frame parser written in eBPF: each frame the filter accepts is decoded
// in the kernel into what packet.Parse would make of it, and the program
// returns 0, so that the socket queues nothing and no frame is copied. A
// RecordConn gets each frame's record — 104 bytes, versioned — through a
// BPF ring buffer (Linux 5.8; per-CPU perf buffers on older kernels), and
// NextRecords decodes them into packet.Record and packet.Info values equal
// to Parse's, field for field. A FlowConn's program counts each frame in
// the flow flow.KeyOf gives it, in a BPF LRU hash map, and ReadFlows turns
// the table into flow records with a flow.Meter, deleting the flows that
// ended with BPF_MAP_LOOKUP_AND_DELETE_ELEM (Linux 5.14). The kernel
// counts what it could not deliver — records the ring buffer had no room
// for, packets lost with flows the LRU evicted — exactly, in per-CPU
// arrays, and Stats reports it.
//
// Count TCP and UDP records by protocol on lo, with the filter compiled
// from a tcpdump expression:
//
//	filter, err := pcapfilter.Compile("tcp or udp", packet.LinkEthernet)
//	if err != nil {
//		log.Fatal(err)
//	}
//	rc, err := sockfilter.ListenRecords("lo", filter, nil)
//	if err != nil {
//		log.Fatal(err) // needs CAP_BPF and CAP_NET_RAW
//	}
//	defer rc.Close()
//	recs := make([]packet.Record, 64)
//	for {
//		n, err := rc.NextRecords(recs, nil) // decoded in place, no allocation
//		if err != nil {
//			log.Fatal(err)
//		}
//		for i := range recs[:n] {
//			fmt.Println(&recs[i]) // as Parse would decode the frame
//		}
//	}
//
// and the same traffic as flows, read every second:
//
//	fc, err := sockfilter.ListenFlows("lo", filter, nil)
//	...
//	for range time.Tick(time.Second) {
//		flows, err := fc.ReadFlows(flows[:0]) // ended flows, and active ones every minute
//		...
//		for _, f := range flows {
//			fmt.Println(f.Key, f.Packets, f.Bytes, f.EndReason)
//		}
//	}
//
// The records carry a time stamp from the kernel's clock (KernelClock):
// CLOCK_TAI on Linux 6.1, converted to wall-clock time exactly; the flows
// a coarse clock that costs the program less. Frames are read on
// Ethernet-like and raw IP interfaces, as Listen reads them, one
// interface at a time (not AnyInterface). Linux 5.8 has all a RecordConn
// needs; a FlowConn needs 5.12, and 5.14 to delete a flow with its last
// packets.
//
// # Privileges
//
// Loading a program needs CAP_BPF (or CAP_SYS_ADMIN; Linux 5.8 split
// CAP_BPF out of it), and opening a packet socket CAP_NET_RAW: in
// practice, root. Without them Load fails with an error that says so and
// matches unix.EPERM, and so does NewMap; a PerfReader also needs
// CAP_PERFMON (or CAP_SYS_ADMIN).
package sockfilter
