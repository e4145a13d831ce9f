package packet_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// synFrame is an Ethernet frame holding a TCP SYN from 192.0.2.1:40000
// to 192.0.2.2:80. (Parse does not check checksums.)
var synFrame, _ = hex.DecodeString("" +
	"020000000002" + "020000000001" + "0800" + // ethernet: dst, src, type IPv4
	"45000028" + "12344000" + "40060000" + "c0000201" + "c0000202" + // ipv4: 40 bytes, DF, TTL 64, TCP
	"9c400050" + "000003e8" + "00000000" + "5002faf0" + "00000000") // tcp: ports, seq 1000, ack 0, [S], window 64240

func ExampleParse() {
	var r packet.Record
	if err := packet.Parse(synFrame, packet.LinkEthernet, nil, &r); err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Proto, r.Src, "->", r.Dst, r.TCPFlags, "seq", r.Seq, "length", r.Length)

	// A frame cut short in a header, as by a snap length, is an error
	// naming the header; r keeps what was captured of the frame — here
	// the addresses and ports — and says where it was cut. (Cut after
	// the headers, it would decode.)
	info := packet.Info{Length: len(synFrame)}
	err := packet.Parse(synFrame[:40], packet.LinkEthernet, &info, &r)
	var pe *packet.ParseError
	fmt.Println(errors.As(err, &pe), pe.Layer, pe.Offset, errors.Is(err, packet.ErrTruncated))
	fmt.Println(err)
	fmt.Println(r.Status, r.ErrLayer, r.Proto, r.Src, "->", r.Dst, r.CapLen, "of", r.Length)
	fmt.Println(r.String())
	// Output:
	// TCP 192.0.2.1:40000 -> 192.0.2.2:80 [S] seq 1000 length 54
	// true tcp 34 true
	// parse frame: tcp header at offset 34: truncated: need 20 bytes, have 6
	// truncated tcp TCP 192.0.2.1:40000 -> 192.0.2.2:80 40 of 54
	// 192.0.2.1	40000	192.0.2.2	80	TCP	0001-01-01T00:00:00.000000000Z	54	40	[|tcp]
}

func ExampleRecord_AppendLine() {
	var r packet.Record
	info := packet.Info{Time: time.Unix(1700000000, 5), Ifindex: 1, Direction: packet.DirectionOutgoing, Length: 54}
	if err := packet.Parse(synFrame, packet.LinkEthernet, &info, &r); err != nil {
		log.Fatal(err)
	}
	buf := []byte(packet.TextHeader)
	buf = r.AppendLine(buf) // reuse buf for the next record: no allocation
	os.Stdout.Write(buf)
	// Output:
	// S-Address	S-Port	D-Address	D-Port	Protocol	Time	Length	CapLen	Info
	// 192.0.2.1	40000	192.0.2.2	80	TCP	2023-11-14T22:13:20.000000005Z	54	54	Flags [S] seq 1000 ack 0 win 64240 length 0
}

// A TextEncoder writes the lines AppendLine does, reusing the text of the
// addresses, ports and protocol and of the time stamp's second from one
// record to the next: the records of a capture loop.
func ExampleTextEncoder() {
	var (
		r   packet.Record
		enc packet.TextEncoder
		buf []byte
	)
	for i := range 3 {
		info := packet.Info{Time: time.Unix(1700000000, int64(i)*250_000_000), Ifindex: 1, Length: 54}
		if err := packet.Parse(synFrame, packet.LinkEthernet, &info, &r); err != nil {
			log.Fatal(err)
		}
		buf = enc.Append(buf[:0], &r)
		os.Stdout.Write(buf)
	}
	// Output:
	// 192.0.2.1	40000	192.0.2.2	80	TCP	2023-11-14T22:13:20.000000000Z	54	54	Flags [S] seq 1000 ack 0 win 64240 length 0
	// 192.0.2.1	40000	192.0.2.2	80	TCP	2023-11-14T22:13:20.250000000Z	54	54	Flags [S] seq 1000 ack 0 win 64240 length 0
	// 192.0.2.1	40000	192.0.2.2	80	TCP	2023-11-14T22:13:20.500000000Z	54	54	Flags [S] seq 1000 ack 0 win 64240 length 0
}

func ExampleRecord_AppendJSON() {
	var r packet.Record
	info := packet.Info{Time: time.Unix(1700000000, 5), Ifindex: 1, Direction: packet.DirectionOutgoing, Length: 54}
	if err := packet.Parse(synFrame, packet.LinkEthernet, &info, &r); err != nil {
		log.Fatal(err)
	}
	os.Stdout.Write(r.AppendJSON(nil))
	// Output:
	// {"time":"2023-11-14T22:13:20.000000005Z","ifindex":1,"dir":"outgoing","proto":"TCP","ethertype":2048,"src":"192.0.2.1","sport":40000,"dst":"192.0.2.2","dport":80,"len":54,"caplen":54,"ipver":4,"ipproto":6,"ttl":64,"iplen":20,"paylen":0,"flags":"S","seq":1000,"ack":0,"win":64240}
}

// A capture on the "any" device gets packets without their link-layer
// header, and what the kernel says of each in a sockaddr_ll; it writes a
// Linux cooked capture header in front of each, as libpcap does, and the
// frame then parses as LinkLinuxSLL2, interface index and direction
// included.
func ExampleSLLHeader_AppendSLL2() {
	// What a SOCK_DGRAM packet socket reads, and what its sockaddr_ll
	// says: sent (PACKET_OUTGOING, 4) on interface 2, an Ethernet device.
	ipPacket := synFrame[14:]
	h := packet.SLLHeader{Protocol: 0x0800, Ifindex: 2, HAType: 1, PacketType: 4,
		AddrLen: 6, Addr: [8]byte{0x02, 0, 0, 0, 0, 0x01}}
	frame := h.AppendSLL2(make([]byte, 0, packet.SLL2HeaderLen+len(ipPacket)))
	frame = append(frame, ipPacket...)

	var r packet.Record
	if err := packet.Parse(frame, packet.LinkLinuxSLL2, nil, &r); err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Ifindex, r.Direction, r.Proto, r.Src, "->", r.Dst, len(frame))
	// Output:
	// 2 outgoing TCP 192.0.2.1:40000 -> 192.0.2.2:80 60
}
