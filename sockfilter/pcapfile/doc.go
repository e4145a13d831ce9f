// Package pcapfile reads and writes capture files: pcap, the format of
// tcpdump -w and libpcap's savefiles (pcap-savefile(5),
// draft-ietf-opsawg-pcap) — a 24-byte file header, then for each packet a
// 16-byte record header and the captured bytes — and pcapng, what
// Wireshark, dumpcap and tshark -w write (draft-ietf-opsawg-pcapng):
// blocks, among them a Section Header Block, an Interface Description
// Block for each interface and an Enhanced Packet Block for each packet.
//
// NewReader tells the formats apart by their first bytes, so a program
// reads either without asking; it reads microsecond and nanosecond pcap
// files in either byte order, and every section, interface, packet block
// and time stamp resolution of a pcapng file. NewWriter writes pcap with
// nanosecond time stamps, NewNgWriter pcapng with an interface
// description for each interface the capture has. Both take and give a
// packet.Info with each packet, as a packet socket gives it, so a capture
// loop can write what it reads and a reader can hand what it reads to
// packet.Parse; pcapng also keeps each packet's direction. The package
// needs only the standard library and builds on every GOOS.
//
// # A worked example
//
// Save frames, then read them back and decode them:
//
//	var file bytes.Buffer // or an *os.File
//	w, err := pcapfile.NewNgWriter(&file, pcapfile.Interface{Name: "eth0", LinkType: packet.LinkEthernet})
//	if err != nil {
//		log.Fatal(err)
//	}
//	info := packet.Info{Time: time.Now(), Length: len(frame), Direction: packet.DirectionOutgoing}
//	if err := w.WritePacket(frame, &info); err != nil {
//		log.Fatal(err) // and every later WritePacket returns it too
//	}
//
//	r, err := pcapfile.NewReader(&file) // pcap or pcapng
//	if err != nil {
//		log.Fatal(err)
//	}
//	var (
//		buf []byte
//		rec packet.Record
//	)
//	for {
//		buf, err = r.ReadPacket(buf, &info)
//		if err == io.EOF {
//			break
//		}
//		if err != nil {
//			log.Fatal(err)
//		}
//		_, iface := r.Interface() // the packet's: interfaces may differ in link type
//		packet.Parse(buf, iface.LinkType, &info, &rec)
//		fmt.Println(rec.Src, "->", rec.Dst, rec.Direction)
//	}
//
// # No lost data
//
// A Writer hands its io.Writer whole records only, each in one Write
// call, and keeps count of the bytes of whole records written (Written).
// So a program that writes a capture file, given the *os.File itself, can
// end on any path with a file that is valid up to its last whole record:
//
//   - SIGINT, SIGTERM, SIGHUP: stop reading packets (signal.NotifyContext),
//     then Flush the Writer and Close the file.
//   - SIGPIPE, when standard output is a pipe that closed: a Go program
//     that has not called signal.Notify for SIGPIPE dies of a write to
//     file descriptor 1 or 2 without running its deferred calls; with it
//     (or signal.Ignore), the write returns EPIPE, and the program stops as
//     for SIGINT. The capture file is another descriptor and unaffected.
//   - a packet count reached (tcpdump -c): Flush, Close.
//   - a write error, a full disk: WritePacket or Flush returns it, wrapping
//     the cause (errors.Is(err, syscall.ENOSPC)); the Writer has already
//     cut the file back to its last whole record, if the Write took part of
//     one, and will write nothing more. Close the file.
//
// tcpdump -r then reads the file to its end without a "truncated dump
// file" warning. By default each WritePacket is one Write, as tcpdump -U
// writes; SetBufferSize(64 << 10) writes fewer, larger ones, and what the
// Writer holds is lost only if the program does not reach its Flush (a
// SIGKILL). Written can also be persisted by a program that wants to
// recover a file cut short by a crash: truncate it to that length.
package pcapfile
