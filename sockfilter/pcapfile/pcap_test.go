package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// writePcap writes frames to a pcap file in memory, the i-th at
// pcapTestTime + i seconds + i ns.
func writePcap(t testing.TB, link packet.LinkType, snaplen int, frames []testutil.Frame) []byte {
	t.Helper()
	var buf bytes.Buffer
	pw, err := NewWriter(&buf, link, snaplen)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if err := pw.WritePacket(f.Data, &packet.Info{Time: frameTime(i), Length: f.Length}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// pcapTestTime is the time of the first test frame.
var pcapTestTime = time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.UTC)

func frameTime(i int) time.Time {
	return pcapTestTime.Add(time.Duration(i)*time.Second + time.Duration(i))
}

func TestPcapRoundTrip(t *testing.T) {
	t.Parallel()
	for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP, packet.LinkLinuxSLL, packet.LinkLinuxSLL2} {
		t.Run(link.String(), func(t *testing.T) {
			frames := testutil.FramesOf(t, uint16(link))
			file := writePcap(t, link, 0, frames)
			if got := binary.LittleEndian.Uint32(file[0:4]); got != 0xa1b23c4d {
				t.Errorf("magic %#x, want the nanosecond magic 0xa1b23c4d", got)
			}
			pr, err := NewReader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			if pr.LinkType() != link || !pr.Nanosecond() || pr.Snaplen() != DefaultSnaplen {
				t.Errorf("packet.LinkType %v Nanosecond %v Snaplen %d", pr.LinkType(), pr.Nanosecond(), pr.Snaplen())
			}
			var buf []byte
			for i, f := range frames {
				var info packet.Info
				buf, err = pr.ReadPacket(buf, &info)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if !bytes.Equal(buf, f.Data) || !info.Time.Equal(frameTime(i)) || info.Length != f.Length {
					t.Errorf("packet %d: %x at %v length %d; want %x at %v length %d",
						i, buf, info.Time, info.Length, f.Data, frameTime(i), f.Length)
				}
			}
			if _, err := pr.ReadPacket(buf, new(packet.Info)); err != io.EOF {
				t.Errorf("after the last packet: %v, want io.EOF", err)
			}
		})
	}
}

// TestPcapSnaplen checks that the writer cuts frames to the snap length
// and keeps the wire length, and that such a frame still decodes.
func TestPcapSnaplen(t *testing.T) {
	t.Parallel()
	f := testutil.NamedFrame(t, "tcp4")
	var file bytes.Buffer
	pw, err := NewWriter(&file, packet.LinkEthernet, 54)
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.WritePacket(f.Data, &packet.Info{Time: pcapTestTime, Length: 0}); err != nil {
		t.Fatal(err)
	}
	pr, err := NewReader(&file)
	if err != nil {
		t.Fatal(err)
	}
	var info packet.Info
	frame, err := pr.ReadPacket(nil, &info)
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) != 54 || info.Length != 74 {
		t.Fatalf("captured %d of %d bytes, want 54 of 74", len(frame), info.Length)
	}
	var r packet.Record
	if err := packet.Parse(frame, pr.LinkType(), &info, &r); err != nil {
		t.Fatal(err)
	}
	if r.CapLen != 54 || r.Length != 74 || r.PayloadLen != 20 || !r.HasPorts() {
		t.Errorf("record %+v", r)
	}
}

// TestWriteVLAN checks that a VLAN tag the device removed goes back
// into the frame written, for each link type that has a place for it, in
// both formats.
func TestWriteVLAN(t *testing.T) {
	t.Parallel()
	tcp4 := testutil.NamedFrame(t, "tcp4").Data
	sll := testutil.NamedFrame(t, "sll_tcp4").Data
	sll2 := testutil.NamedFrame(t, "sll2_udp6").Data
	tag := []byte{0x81, 0x00, 0x20, 42}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tt := range []struct {
		link  packet.LinkType
		frame []byte
		want  []byte // the frame with its tag
		vlan  bool   // Parse finds the tag
	}{
		{packet.LinkEthernet, tcp4, cat(tcp4[:12], tag, tcp4[12:]), true},
		{packet.LinkLinuxSLL, sll, cat(sll[:14], tag, sll[14:]), true},
		{packet.LinkLinuxSLL2, sll2, cat(tag[:2], sll2[2:20], tag[2:], sll2[:2], sll2[20:]), true},
		{packet.LinkRawIP, tcp4[14:], tcp4[14:], false}, // no place for it
		{packet.LinkEthernet, tcp4[:5], tcp4[:5], false},
	} {
		for _, snaplen := range []int{0, 100, 14, 5} {
			for _, format := range []Format{FormatPcap, FormatPcapng} {
				var file bytes.Buffer
				var pw *Writer
				var err error
				if format == FormatPcap {
					pw, err = NewWriter(&file, tt.link, snaplen)
				} else {
					pw, err = NewNgWriter(&file, Interface{LinkType: tt.link, Snaplen: snaplen})
				}
				if err != nil {
					t.Fatal(err)
				}
				info := packet.Info{Time: pcapTestTime, Length: len(tt.frame), HasVLAN: true, VLANTCI: 0x2000 | 42, VLANTPID: 0x8100}
				if err := pw.WritePacket(tt.frame, &info); err != nil {
					t.Fatal(err)
				}
				pr, err := NewReader(&file)
				if err != nil {
					t.Fatal(err)
				}
				var got packet.Info
				frame, err := pr.ReadPacket(nil, &got)
				if err != nil {
					t.Fatal(err)
				}
				want := tt.want
				if snaplen != 0 {
					want = want[:min(len(want), snaplen)]
				}
				if !bytes.Equal(frame, want) || got.Length != len(tt.want) {
					t.Errorf("%v %v snaplen %d: wrote % x length %d, want % x length %d", format, tt.link, snaplen, frame, got.Length, want, len(tt.want))
				}
				if snaplen == 0 && tt.vlan {
					var r packet.Record
					if err := packet.Parse(frame, tt.link, nil, &r); err != nil || r.VLANs != 1 || r.VLAN != 42 || !r.HasPorts() {
						t.Errorf("%v %v: record %+v, %v", format, tt.link, r, err)
					}
				}
			}
		}
	}
}

// pcapFile builds a pcap file by hand: magic in the given byte order,
// version 2.4, snaplen, link type, and records of (seconds, fraction,
// caplen, wirelen, data).
type pcapRec struct {
	sec, frac, caplen, wirelen uint32
	data                       []byte
}

func pcapFile(order binary.AppendByteOrder, magic uint32, snaplen, link uint32, recs ...pcapRec) []byte {
	b := order.AppendUint32(nil, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = order.AppendUint32(b, snaplen)
	b = order.AppendUint32(b, link)
	for _, r := range recs {
		b = order.AppendUint32(b, r.sec)
		b = order.AppendUint32(b, r.frac)
		b = order.AppendUint32(b, r.caplen)
		b = order.AppendUint32(b, r.wirelen)
		b = append(b, r.data...)
	}
	return b
}

func TestPcapReaderFormats(t *testing.T) {
	t.Parallel()
	data := []byte{0x45, 0, 0, 20}
	for _, tt := range []struct {
		name  string
		order binary.AppendByteOrder
		magic uint32
		frac  uint32
		nano  bool
		want  time.Time
	}{
		{"micro little-endian", binary.LittleEndian, 0xa1b2c3d4, 123456, false, time.Unix(1700000000, 123456000)},
		{"micro big-endian", binary.BigEndian, 0xa1b2c3d4, 123456, false, time.Unix(1700000000, 123456000)},
		{"nano little-endian", binary.LittleEndian, 0xa1b23c4d, 123456789, true, time.Unix(1700000000, 123456789)},
		{"nano big-endian", binary.BigEndian, 0xa1b23c4d, 123456789, true, time.Unix(1700000000, 123456789)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := pcapFile(tt.order, tt.magic, 65535, 101, pcapRec{1700000000, tt.frac, 4, 60, data})
			pr, err := NewReader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			if pr.Nanosecond() != tt.nano || pr.Snaplen() != 65535 || pr.LinkType() != packet.LinkRawIP {
				t.Errorf("Nanosecond %v Snaplen %d packet.LinkType %v", pr.Nanosecond(), pr.Snaplen(), pr.LinkType())
			}
			var info packet.Info
			frame, err := pr.ReadPacket(make([]byte, 0, 2), &info)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(frame, data) || !info.Time.Equal(tt.want) || info.Length != 60 {
				t.Errorf("read %x at %v length %d", frame, info.Time, info.Length)
			}
		})
	}
	// The link types that mean raw IP, and the FCS bits above them.
	for link, want := range map[uint32]packet.LinkType{1: packet.LinkEthernet, 101: packet.LinkRawIP, 12: packet.LinkRawIP, 14: packet.LinkRawIP,
		228: packet.LinkRawIP, 229: packet.LinkRawIP, 113: packet.LinkLinuxSLL, 276: packet.LinkLinuxSLL2, 147: packet.LinkType(147),
		1 | 0x14000000: packet.LinkEthernet} {
		pr, err := NewReader(bytes.NewReader(pcapFile(binary.LittleEndian, 0xa1b2c3d4, 100, link)))
		if err != nil || pr.LinkType() != want {
			t.Errorf("link type %#x: %v, %v; want %v", link, pr.LinkType(), err, want)
		}
	}
}

func TestPcapReaderErrors(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	good := pcapFile(le, 0xa1b2c3d4, 100, 1)
	for _, tt := range []struct {
		name   string
		file   []byte
		header bool  // error from NewReader, not ReadPacket
		is     error // if not nil, errors.Is(err, is)
		msg    string
	}{
		{"empty", nil, true, nil, "empty file, not a pcap or pcapng file"},
		{"short header", good[:10], true, io.ErrUnexpectedEOF, "read file header"},
		{"bad magic", pcapFile(le, 0x12345678, 100, 1), true, nil, "bad magic number 0x78563412, not a pcap or pcapng file"},
		{"pcapng with a pcap header", pcapFile(binary.BigEndian, 0x0a0d0d0a, 100, 1), true, nil, "pcapng reader: block 1 at offset 0: section header: bad byte-order magic"},
		{"version 3", append(append(le.AppendUint32(nil, 0xa1b2c3d4), 3, 0, 0, 0), good[8:]...), true, nil, "version 3.0"},
		{"cut data past snaplen", pcapFile(le, 0xa1b2c3d4, 100, 1, pcapRec{0, 0, 150, 150, make([]byte, 120)}), false, io.ErrUnexpectedEOF,
			"packet 1 at offset 24: read 150 bytes of packet data"},
		{"absurd caplen", pcapFile(le, 0xa1b2c3d4, 0, 1, pcapRec{0, 0, 1 << 31, 1 << 31, nil}), false, nil,
			"captured length 2147483648 exceeds the maximum of 262144"},
		{"cut record header", pcapFile(le, 0xa1b2c3d4, 100, 1, pcapRec{0, 0, 4, 4, []byte{1, 2, 3, 4}}, pcapRec{0, 0, 4, 4, []byte{1, 2, 3, 4}})[:24+20+10], false, io.ErrUnexpectedEOF,
			"packet 2 at offset 44: read record header"},
		{"cut data", pcapFile(le, 0xa1b2c3d4, 100, 1, pcapRec{0, 0, 50, 60, make([]byte, 20)}), false, io.ErrUnexpectedEOF,
			"packet 1 at offset 24: read 50 bytes of packet data"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := NewReader(bytes.NewReader(tt.file))
			if !tt.header {
				if err != nil {
					t.Fatal(err)
				}
				var buf []byte
				for err == nil {
					buf, err = pr.ReadPacket(buf, new(packet.Info))
				}
			}
			if err == nil || err == io.EOF || !strings.Contains(err.Error(), tt.msg) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("error %v, want %q (%v)", err, tt.msg, tt.is)
			}
		})
	}
}

func TestPcapWriterErrors(t *testing.T) {
	t.Parallel()
	if _, err := NewWriter(io.Discard, packet.LinkEthernet, -1); err == nil {
		t.Error("NewWriter accepted snaplen -1")
	}
	if _, err := NewWriter(pcapFailWriter{}, packet.LinkEthernet, 0); err == nil || !strings.Contains(err.Error(), "write file header") {
		t.Errorf("NewWriter to a failing writer: %v", err)
	}
	pw, err := NewWriter(io.Discard, packet.LinkEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.WritePacket([]byte{1}, &packet.Info{Time: time.Unix(-1, 0), Length: 1}); err == nil || !strings.Contains(err.Error(), "outside the range") {
		t.Errorf("WritePacket before 1970: %v", err)
	}
	pw.w = pcapFailWriter{}
	if err := pw.WritePacket([]byte{1}, &packet.Info{Time: pcapTestTime, Length: 1}); !errors.Is(err, errPcapFail) {
		t.Errorf("WritePacket to a failing writer: %v", err)
	}
}

// TestWriterErrorIsSticky checks that once a write fails or comes up
// short, every later WritePacket fails with that error and writes
// nothing, so the file is not continued past a broken record.
func TestWriterErrorIsSticky(t *testing.T) {
	t.Parallel()
	f := testutil.NamedFrame(t, "tcp4")
	info := packet.Info{Time: pcapTestTime, Length: len(f.Data)}
	for _, tc := range []struct {
		name  string
		limit int // bytes the writer takes before failing
		want  error
	}{
		{"short write", fileHdrLen + recordHdrLen + 10, io.ErrShortWrite},
		{"error", fileHdrLen + recordHdrLen + 2*len(f.Data), errPcapFail},
		{"header", fileHdrLen + 5, io.ErrShortWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lw := &limitWriter{limit: tc.limit, err: tc.want == errPcapFail}
			pw, err := NewWriter(lw, packet.LinkEthernet, 0)
			if err != nil {
				t.Fatal(err)
			}
			var first error
			for range 5 {
				if err := pw.WritePacket(f.Data, &info); err != nil {
					first = err
					break
				}
			}
			if !errors.Is(first, tc.want) {
				t.Fatalf("first error %v, want %v", first, tc.want)
			}
			written := lw.n
			for range 3 {
				if err := pw.WritePacket(f.Data, &info); err != first {
					t.Errorf("later WritePacket: %v, want the first error %v", err, first)
				}
			}
			if lw.n != written {
				t.Errorf("%d bytes written after the error", lw.n-written)
			}
		})
	}
}

// limitWriter takes limit bytes, then writes short (or fails, if err).
type limitWriter struct {
	n, limit int
	err      bool
}

func (w *limitWriter) Write(b []byte) (int, error) {
	n := min(len(b), w.limit-w.n)
	w.n += n
	if n < len(b) && w.err {
		return n, errPcapFail
	}
	return n, nil
}

var errPcapFail = errors.New("disk full")

type pcapFailWriter struct{}

func (pcapFailWriter) Write([]byte) (int, error) { return 0, errPcapFail }

// TestPcapNoAllocs checks that writing and reading a packet allocates
// nothing once the caller's buffer is big enough.
func TestPcapNoAllocs(t *testing.T) {
	f := testutil.NamedFrame(t, "tcp4")
	pw, err := NewWriter(io.Discard, packet.LinkEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	info := packet.Info{Time: pcapTestTime, Length: 74, HasVLAN: true, VLANTCI: 3}
	if n := testing.AllocsPerRun(100, func() {
		if err := pw.WritePacket(f.Data, &packet.Info{Time: pcapTestTime, Length: 74}); err != nil {
			t.Fatal(err)
		}
		if err := pw.WritePacket(f.Data, &info); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Writer: %v allocations a packet, want 0", n)
	}
	file := writePcap(t, packet.LinkEthernet, 0, make([]testutil.Frame, 101))
	pr, err := NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(100, func() {
		if buf, err = pr.ReadPacket(buf, new(packet.Info)); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ReadPacket: %v allocations a packet, want 0", n)
	}
}

// TestPcapCaplenOverSnaplen checks that a record longer than the file's
// snap length is cut to it and the rest skipped, as libpcap reads such
// files, and that the next record is read from the right place.
func TestPcapCaplenOverSnaplen(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	long := make([]byte, 101)
	for i := range long {
		long[i] = byte(i)
	}
	file := pcapFile(le, 0xa1b2c3d4, 100, 1,
		pcapRec{0, 0, 101, 120, long},
		pcapRec{0, 0, 3, 3, []byte{7, 8, 9}})
	pr, err := NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var info packet.Info
	got, err := pr.ReadPacket(nil, &info)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, long[:100]) || info.Length != 120 {
		t.Errorf("first packet: %d bytes, wire length %d; want the first 100 bytes and 120", len(got), info.Length)
	}
	got, err = pr.ReadPacket(got, new(packet.Info))
	if err != nil || !bytes.Equal(got, []byte{7, 8, 9}) {
		t.Errorf("second packet: % x, %v; want 07 08 09", got, err)
	}
	if _, err := pr.ReadPacket(got, new(packet.Info)); !errors.Is(err, io.EOF) {
		t.Errorf("after the last packet: %v, want io.EOF", err)
	}
}

func TestPcapWriterSnaplenRange(t *testing.T) {
	t.Parallel()
	for _, snap := range []int{-1, wire.MaxSnapLen + 1, 1 << 30} {
		if _, err := NewWriter(io.Discard, packet.LinkEthernet, snap); err == nil {
			t.Errorf("snap length %d accepted", snap)
		}
	}
	for _, snap := range []int{0, 1, 65535, wire.MaxSnapLen} {
		if _, err := NewWriter(io.Discard, packet.LinkEthernet, snap); err != nil {
			t.Errorf("snap length %d: %v", snap, err)
		}
	}
}
