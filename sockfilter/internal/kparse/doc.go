// Package kparse generates the eBPF programs of the captures in records
// and in flows (sockfilter.ListenRecords, sockfilter.ListenFlows): a
// user's socket filter spliced in front of a frame parser, written in
// eBPF, that decodes each frame the filter accepts as packet.Parse would,
// followed by the output of a fixed record to a ring buffer or perf buffer
// (Records), or by the update of a flow table (Flows). The programs
// return 0, so that the packet socket queues nothing and no frame is
// copied. It also decodes the records and the flow table's keys and values
// in user space (Decode, DecodeKey, DecodeValue). It needs no kernel and
// builds on every GOOS; the programs are loaded by package sockfilter.
//
// # The program
//
//	r6 = r1                     the socket buffer, kept in r6
//	[the first copy]            the frame's first 80 bytes, to the stack
//	[the filter]                every exit of its main program becomes
//	                            if w0 == 0 goto drop; goto accept
//	drop:   r0 = 0; exit
//	accept: [the parser]        the frame, decoded into a record on the stack
//	done:   [the record's output, or the flow's update]; r0 = 0; exit
//	[the filter's subprograms]
//
// The first copy of the frame, which the parser reads the headers from, is
// made in front of the filter when the filter has no subprograms and uses
// the stack only at fixed offsets above its bottom 104 bytes (hoistable):
// then the filter's legacy loads at constant offsets relative to the
// header the copy starts at (SKF_LL_OFF for Ethernet, SKF_NET_OFF for raw
// IP) read the copy instead of calling into the kernel, each a helper call
// less (about 7 ns). A load past what was copied stays the legacy load it
// was, which ends the program returning 0 on a frame too short. Otherwise
// the copy is the parser's first step, after the filter.
//
// The filter may be any socket filter that keeps the socket buffer in r6
// (skb.Prologue does; the legacy packet loads need it): splice refuses one
// that writes r6, or uses a label starting with LabelPrefix. Its jumps by
// offset get labels, since an exit becomes two instructions. Its exits in
// subprograms are its own; the code after accept makes no BPF-to-BPF call
// and no legacy load, so a filter may use either (the kernel allows legacy
// loads only in a program without BPF-to-BPF calls).
//
// # The parser
//
// The parser reads the frame relative to its link-layer header, so that it
// sees the same bytes on a live SOCK_RAW socket (skb->data is the
// link-layer header) and under BPF_PROG_TEST_RUN (skb->data is the network
// header, the Ethernet header before it): Options.Base says how many
// bytes come before skb->data, 0 for a live socket. (The live socket's
// program runs under the test run too, on a frame behind an Ethernet
// header of its own that the test run consumes: sockfilter's tests run
// both; this package's run it in the vm interpreter, without root.) It copies the first 80
// bytes of the frame to the stack with one bpf_skb_load_bytes (Linux 4.5,
// which copies from the frame's pages too, where the legacy loads and
// bpf_skb_load_bytes_relative see only the linear part) and reads the
// headers there: with no VLAN tag in the frame and no IPv4 option, a TCP
// or UDP packet takes no other copy. The network header of a frame with
// tags, the transport header after IPv4 options or IPv6 extension
// headers, each extension header and the addresses of an ARP packet with
// other than 6-byte hardware addresses are copied from where they are.
//
// It checks what Parse checks, in Parse's order, and ends where Parse
// ends, with its Status and ErrLayer: at most 8 VLAN tags and 8 IPv6
// extension headers, IPv4 and IPv6 length fields within the frame, TCP
// data offsets, UDP lengths, first and later fragments, ARP lengths. A
// socket filter sees the whole frame, so the captured length is the wire
// length, and the checks of Parse that the IP length fields already imply
// are left out (see parser): only the link-layer headers, the fixed IP
// headers and ARP packets can be truncated. packet.Record fields that
// follow from others (Proto, CapLen, the ports in Src and Dst, the tag the
// device removed counted as the outer one) are filled in by Decode.
//
// The stack is accessed aligned, as the verifier wants it: the copy of the
// frame starts 2 bytes past an 8-byte boundary, so that the network header
// is 8-byte aligned behind a 14-byte Ethernet header.
//
// # The record
//
// A record is RecordSize bytes, its first byte the layout's Version; see
// the field offsets (OffVersion ...). Numbers are in host byte order,
// addresses in network order; a field the parser did not reach is zero.
// It goes out with bpf_ringbuf_output (Linux 5.8), with
// BPF_RB_FORCE_WAKEUP for the record that takes the ring past
// RecordOptions.Watermark bytes (bpf_ringbuf_query) and BPF_RB_NO_WAKEUP
// for the others, or with bpf_perf_event_output (Linux 4.4). A record that
// finds no room is counted at CounterLost of the per-CPU array MapCounters.
//
// # The flow table
//
// A flow's key (FlowKeySize bytes) holds flow.KeyOf's fields of the
// frame's record; its value (FlowValueSize bytes) the packets, the bytes,
// the first and last time stamps and the TCP flags OR'd. The program looks
// the key up; it adds to a flow it finds with atomic adds (or plain ones in
// a per-CPU table), and makes a flow it does not with BPF_NOEXIST, looking
// it up again if another CPU made it meanwhile (EEXIST). Every packet is
// also counted, with its bytes, at CounterPackets and CounterBytes of
// MapCounters, so that user space can tell what an evicted flow took with
// it.
package kparse
