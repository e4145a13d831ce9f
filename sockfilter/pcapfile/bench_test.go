package pcapfile

import (
	"bytes"
	"io"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// BenchmarkWritePacket writes the 106-byte udp4 frame to io.Discard in
// each format, a Write per record and buffered.
func BenchmarkWritePacket(b *testing.B) {
	f := testutil.NamedFrame(b, "udp4")
	for _, format := range []Format{FormatPcap, FormatPcapng} {
		for _, buffer := range []int{0, 64 << 10} {
			name := format.String() + "/unbuffered"
			if buffer > 0 {
				name = format.String() + "/buffered"
			}
			b.Run(name, func(b *testing.B) {
				var pw *Writer
				var err error
				if format == FormatPcapng {
					pw, err = NewNgWriter(io.Discard, Interface{Name: "lo", LinkType: packet.LinkEthernet})
				} else {
					pw, err = NewWriter(io.Discard, packet.LinkEthernet, 0)
				}
				if err != nil {
					b.Fatal(err)
				}
				pw.SetBufferSize(buffer)
				info := packet.Info{Time: pcapTestTime, Length: len(f.Data), Direction: packet.DirectionHost}
				b.ReportAllocs()
				b.SetBytes(int64(len(f.Data)))
				for b.Loop() {
					if err := pw.WritePacket(f.Data, &info); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkReadPacket reads the udp4 frame from files of 1000 of them in
// each format.
func BenchmarkReadPacket(b *testing.B) {
	f := testutil.NamedFrame(b, "udp4")
	for _, format := range []Format{FormatPcap, FormatPcapng} {
		b.Run(format.String(), func(b *testing.B) {
			var file bytes.Buffer
			var pw *Writer
			var err error
			if format == FormatPcapng {
				pw, err = NewNgWriter(&file, Interface{Name: "lo", LinkType: packet.LinkEthernet})
			} else {
				pw, err = NewWriter(&file, packet.LinkEthernet, 0)
			}
			if err != nil {
				b.Fatal(err)
			}
			for range 1000 {
				pw.WritePacket(f.Data, &packet.Info{Time: pcapTestTime, Length: len(f.Data), Direction: packet.DirectionHost})
			}
			data := file.Bytes()
			rd := bytes.NewReader(data)
			pr, err := NewReader(rd)
			if err != nil {
				b.Fatal(err)
			}
			var buf []byte
			var info packet.Info
			b.ReportAllocs()
			b.SetBytes(int64(len(f.Data)))
			for b.Loop() {
				if buf, err = pr.ReadPacket(buf, &info); err == io.EOF {
					rd.Reset(data)
					if pr, err = NewReader(rd); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
