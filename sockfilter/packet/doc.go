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
//	info := packet.Info{Time: time.Now(), Ifindex: 1, Length: len(frame)}
//	if err := packet.Parse(frame, packet.LinkEthernet, &info, &rec); err != nil {
//		// A *ParseError names the header and its offset; keep a line for
//		// the frame anyway, saying it is truncated or malformed.
//		rec = packet.Unparsed(frame, &info, err)
//	}
//	out := []byte(packet.TextHeader)
//	out = rec.AppendLine(out)
//	out = rec.AppendJSON(out)
//	os.Stdout.Write(out)
//
// A capture loop reads frames from a sockfilter.Conn (or a pcapfile.Reader),
// parses each into the same Record, and appends its line with a
// TextEncoder, which reuses the text of the columns a flow repeats.
package packet
