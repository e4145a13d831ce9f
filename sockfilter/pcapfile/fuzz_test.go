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

// FuzzReader feeds arbitrary files to Reader. It must never panic
// and must end every file with io.EOF or an error; the packets it returns
// must survive a round trip through Writer unchanged.
func FuzzReader(f *testing.F) {
	// A valid little-endian nanosecond file with two packets, a
	// big-endian microsecond one, a pcapng header and some broken ones.
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

	f.Fuzz(func(t *testing.T, data []byte) {
		pr, err := NewReader(bytes.NewReader(data))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		type pkt struct {
			data []byte
			info packet.Info
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
			if pr.Snaplen() > 0 && len(buf) > pr.Snaplen() {
				t.Fatalf("packet of %d bytes past the snap length %d", len(buf), pr.Snaplen())
			}
			if info.Length < len(buf) {
				t.Fatalf("wire length %d below captured length %d", info.Length, len(buf))
			}
			pkts = append(pkts, pkt{append([]byte(nil), buf...), info})
		}
		if !errors.Is(err, io.EOF) && err.Error() == "" {
			t.Fatal("empty error")
		}

		// Round trip what was read.
		var out bytes.Buffer
		w, err := NewWriter(&out, packet.LinkEthernet, wire.MaxSnapLen)
		if err != nil {
			t.Fatal(err)
		}
		var kept []pkt
		for _, p := range pkts {
			if err := w.WritePacket(p.data, &p.info); err != nil {
				continue // a time pcap cannot hold in 32 bits
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
			if !bytes.Equal(got, p.data) || !info.Time.Equal(p.info.Time) || info.Length != p.info.Length {
				t.Fatalf("packet %d changed in the round trip", i)
			}
		}
		if _, err := rr.ReadPacket(nil, new(packet.Info)); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last packet: %v, want io.EOF", err)
		}
	})
}
