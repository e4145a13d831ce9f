// Package pcapfile reads and writes pcap capture files, the format of
// tcpdump -w and libpcap's savefiles (pcap-savefile(5),
// draft-ietf-opsawg-pcap): a 24-byte file header, then for each packet a
// 16-byte record header and the captured bytes.
//
// A Writer writes nanosecond time stamps, which tcpdump, tshark and
// libpcap read; a Reader reads microsecond and nanosecond files in either
// byte order. Both take and give a packet.Info with each packet, as a
// packet socket gives it, so a capture loop can write what it reads and a
// reader can hand what it reads to packet.Parse. It needs only the
// standard library and builds on every GOOS.
//
// # A worked example
//
// Save frames, then read them back and decode them:
//
//	var file bytes.Buffer // or a *bufio.Writer on an *os.File
//	w, err := pcapfile.NewWriter(&file, packet.LinkEthernet, 0)
//	if err != nil {
//		log.Fatal(err)
//	}
//	info := packet.Info{Time: time.Now(), Length: len(frame)}
//	if err := w.WritePacket(frame, &info); err != nil {
//		log.Fatal(err) // and every later WritePacket returns it too
//	}
//
//	r, err := pcapfile.NewReader(&file)
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
//		if err := packet.Parse(buf, r.LinkType(), &info, &rec); err == nil {
//			fmt.Println(rec.Src, "->", rec.Dst)
//		}
//	}
package pcapfile
