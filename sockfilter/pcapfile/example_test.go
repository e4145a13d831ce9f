package pcapfile_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
)

// synFrame is an Ethernet frame holding a TCP SYN from 192.0.2.1:40000
// to 192.0.2.2:80.
var synFrame, _ = hex.DecodeString("" +
	"020000000002" + "020000000001" + "0800" + // ethernet: dst, src, type IPv4
	"45000028" + "12344000" + "40060000" + "c0000201" + "c0000202" + // ipv4: 40 bytes, DF, TTL 64, TCP
	"9c400050" + "000003e8" + "00000000" + "5002faf0" + "00000000") // tcp: ports, seq 1000, ack 0, [S], window 64240

// Packets saved with a Writer can be read back, decoded and filtered
// offline.
func Example() {
	var file bytes.Buffer
	w, err := pcapfile.NewWriter(&file, packet.LinkEthernet, 0)
	if err != nil {
		log.Fatal(err)
	}
	for i := range 3 {
		info := packet.Info{Time: time.Unix(1700000000+int64(i), 0), Length: len(synFrame)}
		if err := w.WritePacket(synFrame, &info); err != nil {
			log.Fatal(err)
		}
	}

	r, err := pcapfile.NewReader(&file)
	if err != nil {
		log.Fatal(err)
	}
	var (
		buf  []byte
		info packet.Info
		rec  packet.Record
	)
	for {
		buf, err = r.ReadPacket(buf, &info)
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if err := packet.Parse(buf, r.LinkType(), &info, &rec); err != nil {
			fmt.Println(err)
			continue
		}
		if rec.HasPorts() && rec.Dst.Port() == 80 {
			fmt.Println(rec.Time.UTC().Format(time.TimeOnly), rec.Src, "->", rec.Dst, rec.TCPFlags)
		}
	}
	// Output:
	// 22:13:20 192.0.2.1:40000 -> 192.0.2.2:80 [S]
	// 22:13:21 192.0.2.1:40000 -> 192.0.2.2:80 [S]
	// 22:13:22 192.0.2.1:40000 -> 192.0.2.2:80 [S]
}

// A pcapng file describes the interfaces packets were captured on and
// keeps their directions; NewReader reads it as it reads a pcap file.
func ExampleNewNgWriter() {
	var file bytes.Buffer
	w, err := pcapfile.NewNgWriter(&file, pcapfile.Interface{Name: "eth0", LinkType: packet.LinkEthernet})
	if err != nil {
		log.Fatal(err)
	}
	for i, dir := range []packet.Direction{packet.DirectionOutgoing, packet.DirectionHost} {
		info := packet.Info{Time: time.Unix(1700000000+int64(i), 0), Length: len(synFrame), Direction: dir}
		if err := w.WritePacket(synFrame, &info); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil { // a no-op here: each record is written out at once
		log.Fatal(err)
	}
	fmt.Println(w.Written() == int64(file.Len()), "bytes of whole records")

	r, err := pcapfile.NewReader(&file)
	if err != nil {
		log.Fatal(err)
	}
	var (
		buf  []byte
		info packet.Info
		rec  packet.Record
	)
	for {
		buf, err = r.ReadPacket(buf, &info)
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		id, iface := r.Interface()
		packet.Parse(buf, iface.LinkType, &info, &rec)
		fmt.Println(r.Format(), id, iface.Name, iface.LinkType, rec.Direction, rec.Src, "->", rec.Dst, rec.TCPFlags)
	}
	// Output:
	// true bytes of whole records
	// pcapng 0 eth0 EN10MB outgoing 192.0.2.1:40000 -> 192.0.2.2:80 [S]
	// pcapng 0 eth0 EN10MB host 192.0.2.1:40000 -> 192.0.2.2:80 [S]
}
