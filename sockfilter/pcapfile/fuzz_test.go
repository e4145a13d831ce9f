package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// FuzzReader feeds arbitrary files to Reader, pcap and pcapng. It must
// never panic, must end every file with io.EOF or an error, and must keep
// each packet within its interface's snap length; the packets it returns
// must survive a round trip through a Writer of the same format
// unchanged — bytes, time, length, direction, and the link type and name
// of their interface. A block may claim up to 16 MiB; the Reader
// allocates only as the file's bytes arrive, so a short file with a long
// block costs little.
//
//	go test ./sockfilter/pcapfile -run '^$' -fuzz FuzzReader -fuzztime 2m -parallel 1
func FuzzReader(f *testing.F) {
	// A valid little-endian nanosecond file with two packets, a
	// big-endian microsecond one, pcapng files and some broken ones.
	var good bytes.Buffer
	pw, err := NewWriter(&good, packet.LinkEthernet, 128)
	if err != nil {
		f.Fatal(err)
	}
	pw.WritePacket([]byte{1, 2, 3, 4}, &packet.Info{Time: time.Unix(1700000000, 123456789), Length: 60})
	pw.WritePacket(bytes.Repeat([]byte{0xab}, 100), &packet.Info{Time: time.Unix(1700000001, 0), Length: 100})
	f.Add(good.Bytes())
	f.Add(good.Bytes()[:good.Len()-7])

	be := binary.BigEndian.AppendUint32(nil, 0xa1b2c3d4)
	be = binary.BigEndian.AppendUint16(be, 2)
	be = binary.BigEndian.AppendUint16(be, 4)
	be = append(be, make([]byte, 8)...)
	be = binary.BigEndian.AppendUint32(be, 65535)
	be = binary.BigEndian.AppendUint32(be, 101)
	for _, v := range []uint32{1, 999999, 3, 20} {
		be = binary.BigEndian.AppendUint32(be, v)
	}
	be = append(be, 0x45, 0, 0)
	f.Add(be)
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0})
	f.Add([]byte{})

	var ng bytes.Buffer
	nw, err := NewNgWriter(&ng, Interface{Name: "lo", LinkType: packet.LinkEthernet}, Interface{Name: "any", LinkType: packet.LinkLinuxSLL2, Snaplen: 64})
	if err != nil {
		f.Fatal(err)
	}
	nw.WritePacket([]byte{1, 2, 3, 4, 5}, &packet.Info{Time: time.Unix(1700000000, 5), Length: 60, Direction: packet.DirectionOutgoing})
	nw.WriteInterfacePacket(1, bytes.Repeat([]byte{0xcd}, 70), &packet.Info{Time: time.Unix(1700000001, 0), Direction: packet.DirectionBroadcast})
	f.Add(ng.Bytes())
	f.Add(ng.Bytes()[:ng.Len()-5])
	hand := new(ngFile).section(binary.BigEndian).iface(1, 0, opt{optIfTSResol, []byte{0x80 | 10}}, opt{optIfTSOffset, make([]byte, 8)})
	hand.block(blockSPB, append(hand.u32(7), 1, 2, 3, 4, 5, 6, 7, 0)).epb(0, 1<<40, 4, []byte{9, 9, 9, 9}, opt{optEPBFlags, hand.u32(1 | 2<<2)})
	hand.section(binary.LittleEndian).iface(113, 10).block(4, make([]byte, 8)).epb(0, 12345678, 4, []byte{1, 2, 3, 4})
	f.Add(hand.b)

	f.Fuzz(func(t *testing.T, data []byte) {
		pr, err := NewReader(bytes.NewReader(data))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		type pkt struct {
			data  []byte
			info  packet.Info
			iface Interface
		}
		var pkts []pkt
		var buf []byte
		for i := 0; ; i++ {
			if i > len(data) {
				t.Fatal("more packets than bytes")
			}
			var info packet.Info
			buf, err = pr.ReadPacket(buf, &info)
			if err != nil {
				break
			}
			_, iface := pr.Interface()
			if iface.Snaplen > 0 && len(buf) > iface.Snaplen {
				t.Fatalf("packet of %d bytes past the snap length %d", len(buf), iface.Snaplen)
			}
			if info.Length < len(buf) {
				t.Fatalf("wire length %d below captured length %d", info.Length, len(buf))
			}
			pkts = append(pkts, pkt{bytes.Clone(buf), info, iface})
		}
		if !errors.Is(err, io.EOF) && err.Error() == "" {
			t.Fatal("empty error")
		}

		// Round trip what was read, through a Writer of the same format;
		// for pcapng, with an interface for each one the packets had.
		var out bytes.Buffer
		var w *Writer
		ids := map[Interface]int{}
		if pr.Format() == FormatPcapng {
			var ifaces []Interface
			for _, p := range pkts {
				if _, ok := ids[p.iface]; !ok {
					ids[p.iface] = len(ifaces)
					ifaces = append(ifaces, Interface{Name: p.iface.Name, Description: p.iface.Description, LinkType: p.iface.LinkType})
				}
			}
			if len(ifaces) == 0 {
				return
			}
			w, err = NewNgWriter(&out, ifaces...)
		} else {
			w, err = NewWriter(&out, pr.LinkType(), wire.MaxSnapLen)
		}
		if err != nil {
			t.Fatal(err)
		}
		var kept []pkt
		for _, p := range pkts {
			if err := w.WriteInterfacePacket(ids[p.iface], p.data, &p.info); err != nil {
				continue // a time the format cannot hold
			}
			kept = append(kept, p)
		}
		rr, err := NewReader(&out)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range kept {
			var info packet.Info
			got, err := rr.ReadPacket(nil, &info)
			if err != nil {
				t.Fatalf("re-read packet %d: %v", i, err)
			}
			_, iface := rr.Interface()
			if p.info.Time.IsZero() {
				p.info.Time = time.Unix(0, 0) // no time stamp (a Simple Packet Block) is written as 0
			}
			if !bytes.Equal(got, p.data) || !info.Time.Equal(p.info.Time) || info.Length != p.info.Length ||
				info.Direction != p.info.Direction || iface.LinkType != p.iface.LinkType || iface.Name != p.iface.Name {
				t.Fatalf("packet %d changed in the round trip: %+v on %+v, then %+v on %+v", i, p.info, p.iface, info, iface)
			}
		}
		if _, err := rr.ReadPacket(nil, new(packet.Info)); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last packet: %v, want io.EOF", err)
		}
	})
}
