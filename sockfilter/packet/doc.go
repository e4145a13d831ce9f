// Package packet says what a frame is and what it carries: the link types
// purebpf reads (LinkType), what the kernel or a capture file says about a
// frame besides its bytes (Info), and the Record that Parse decodes from a
// frame — addresses, ports, protocol, flags and lengths — with its text
// and JSON forms. It is the vocabulary the capture (sockfilter), capture
// files (pcapfile) and the filter compiler (pcapfilter) share, as
// gopacket's root package is for its pcapgo and afpacket packages.
//
// It needs only the standard library and builds on every GOOS. Nothing on
// the per-frame path allocates: Parse fills a Record the caller owns, and
// AppendLine, AppendJSON and a TextEncoder append to the caller's buffer.
//
// # A worked example
//
// Decode a frame and print its record as a line of the table and as JSON:
//
//	var rec packet.Record
//	info := packet.Info{Time: time.Now(), Ifindex: 1, Length: wireLen}
//	if err := packet.Parse(frame, packet.LinkEthernet, &info, &rec); err != nil {
//		// A *ParseError names the header and its offset. rec still has
//		// what was decoded before it — a frame cut by the snap length
//		// keeps its addresses and ports — and says where Parse stopped
//		// (rec.Status, rec.ErrLayer): its line ends in "[|tcp]".
//	}
//	out := []byte(packet.TextHeader)
//	out = rec.AppendLine(out)
//	out = rec.AppendJSON(out)
//	os.Stdout.Write(out)
//
// A capture loop reads frames from a sockfilter.Conn (or a pcapfile.Reader),
// parses each into the same Record, and appends its line with a
// TextEncoder, which reuses the text of the columns a flow repeats.
//
// # Link types
//
// Parse reads Ethernet (LinkEthernet), raw IP (LinkRawIP) and the Linux
// cooked captures of the "any" device, whose SLLHeader gives the packet
// type and, in version 2, the interface index (LinkLinuxSLL,
// LinkLinuxSLL2). A capture on "any" writes that header in front of each
// packet with SLLHeader.AppendSLL2, as libpcap does.
package packet
