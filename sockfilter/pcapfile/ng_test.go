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
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// ngFile builds a pcapng file by hand, block by block, in the byte order
// of the section being built.
type ngFile struct {
	b     []byte
	order binary.AppendByteOrder
}

// opt is a block option: its code and value.
type opt struct {
	code uint16
	v    []byte
}

func (f *ngFile) block(typ uint32, body []byte, opts ...opt) *ngFile {
	for _, o := range opts {
		body = f.order.AppendUint16(body, o.code)
		body = f.order.AppendUint16(body, uint16(len(o.v)))
		body = append(body, o.v...)
		body = append(body, make([]byte, (4-len(o.v)%4)%4)...)
	}
	if len(opts) > 0 {
		body = append(body, 0, 0, 0, 0)
	}
	body = append(body, make([]byte, (4-len(body)%4)%4)...)
	n := uint32(12 + len(body))
	f.b = f.order.AppendUint32(f.b, typ)
	f.b = f.order.AppendUint32(f.b, n)
	f.b = append(f.b, body...)
	f.b = f.order.AppendUint32(f.b, n)
	return f
}

// section starts a section in order.
func (f *ngFile) section(order binary.AppendByteOrder, opts ...opt) *ngFile {
	f.order = order
	body := order.AppendUint32(nil, byteOrderMagic)
	body = order.AppendUint16(body, 1)
	body = order.AppendUint16(body, 0)
	body = order.AppendUint64(body, 1<<64-1)
	return f.block(blockSHB, body, opts...)
}

func (f *ngFile) iface(link uint16, snaplen uint32, opts ...opt) *ngFile {
	body := f.order.AppendUint16(nil, link)
	body = f.order.AppendUint16(body, 0)
	body = f.order.AppendUint32(body, snaplen)
	return f.block(blockIDB, body, opts...)
}

func (f *ngFile) epb(id uint32, ts uint64, wireLen uint32, data []byte, opts ...opt) *ngFile {
	body := f.order.AppendUint32(nil, id)
	body = f.order.AppendUint32(body, uint32(ts>>32))
	body = f.order.AppendUint32(body, uint32(ts))
	body = f.order.AppendUint32(body, uint32(len(data)))
	body = f.order.AppendUint32(body, wireLen)
	body = append(body, data...)
	body = append(body, make([]byte, (4-len(data)%4)%4)...)
	return f.block(blockEPB, body, opts...)
}

func (f *ngFile) u32(v uint32) []byte { return f.order.AppendUint32(nil, v) }
func (f *ngFile) u64(v uint64) []byte { return f.order.AppendUint64(nil, v) }

// ngPacket is what a test expects ReadPacket and Interface to give.
type ngPacket struct {
	data  []byte
	t     time.Time
	len   int
	dir   packet.Direction
	id    int
	iface Interface
}

// readNg reads every packet of file.
func readNg(t *testing.T, file []byte) ([]ngPacket, *Reader, error) {
	t.Helper()
	pr, err := NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var pkts []ngPacket
	var buf []byte
	for {
		var info packet.Info
		buf, err = pr.ReadPacket(buf, &info)
		if err != nil {
			return pkts, pr, err
		}
		if info.Ifindex != 0 || info.HasVLAN {
			t.Errorf("packet %d: Ifindex %d HasVLAN %v from a file", len(pkts), info.Ifindex, info.HasVLAN)
		}
		id, iface := pr.Interface()
		pkts = append(pkts, ngPacket{bytes.Clone(buf), info.Time, info.Length, info.Direction, id, iface})
	}
}

// TestNgReader reads hand-made pcapng files: both byte orders, several
// sections, time stamp resolutions and offsets, the packet blocks, the
// direction flag, and blocks and options it skips.
func TestNgReader(t *testing.T) {
	t.Parallel()
	le, be := binary.LittleEndian, binary.BigEndian
	p1, p2, p3 := []byte{1, 2, 3, 4, 5}, []byte{6, 7, 8}, bytes.Repeat([]byte{9}, 12)
	t0 := time.Unix(1700000000, 123456789)
	ns := uint64(t0.UnixNano())
	f := new(ngFile)
	f.section(le, opt{1, []byte("a comment")}, opt{optSHBUserApp, []byte("test")}).
		block(4, make([]byte, 8)). // a Name Resolution Block: skipped
		iface(1, 0, opt{optIfName, []byte("eth0")}, opt{optIfDesc, []byte("the first")}, opt{optIfTSResol, []byte{9}}, opt{999, []byte("unknown")}).
		iface(276, 128, opt{optIfName, []byte("any")}). // microseconds, by default
		iface(101, 0, opt{optIfTSResol, []byte{0x80 | 20}}, opt{optIfTSOffset, f.u64(100)}).
		epb(0, ns, 60, p1, opt{optEPBFlags, f.u32(1 | 3<<2)}, opt{1, []byte("comment")}).
		epb(1, ns/1000, 3, p2, opt{optEPBFlags, f.u32(2)}).
		block(0x0bad, []byte("custom block!")). // skipped
		epb(2, 1<<20|1<<19, 12, p3).            // 1.5 s in units of 2^-20 s, plus 100 s
		block(5, make([]byte, 16))              // an Interface Statistics Block: skipped
	// A second section, big-endian, with a Simple and an obsolete Packet
	// Block and an inbound packet without a reception type.
	f.section(be).iface(113, 4, opt{optIfTSResol, []byte{3}})
	f.block(blockSPB, append(f.u32(7), p2...)) // cut to the snap length of 4
	pb := append(be.AppendUint16(be.AppendUint16(nil, 0), 0), f.u32(0)...)
	pb = append(append(append(pb, f.u32(1500)...), f.u32(3)...), f.u32(3)...)
	f.block(blockPB, append(pb, p2...))
	f.epb(0, 2500, 5, p1, opt{optEPBFlags, f.u32(1)})

	eth0 := Interface{Name: "eth0", Description: "the first", LinkType: packet.LinkEthernet}
	any := Interface{Name: "any", LinkType: packet.LinkLinuxSLL2, Snaplen: 128}
	raw := Interface{LinkType: packet.LinkRawIP}
	sll := Interface{LinkType: packet.LinkLinuxSLL, Snaplen: 4}
	want := []ngPacket{
		{p1, t0, 60, packet.DirectionBroadcast, 0, eth0},
		{p2, t0.Truncate(time.Microsecond), 3, packet.DirectionOutgoing, 1, any},
		{p3, time.Unix(101, 500_000_000), 12, packet.DirectionUnknown, 2, raw},
		// A Simple Packet Block has no time stamp, and no captured
		// length: its data are its 4 bytes, padding included, as the
		// packet was longer, and the snap length is 4.
		{append(bytes.Clone(p2), 0), time.Time{}, 7, packet.DirectionUnknown, 0, sll},
		{p2, time.Unix(1, 500_000_000), 3, packet.DirectionUnknown, 0, sll},
		{p1[:4], time.Unix(2, 500_000_000), 5, packet.DirectionHost, 0, sll},
	}
	got, pr, err := readNg(t, f.b)
	if err != io.EOF {
		t.Fatalf("after %d packets: %v, want io.EOF", len(got), err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d packets, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !bytes.Equal(g.data, w.data) || !g.t.Equal(w.t) || g.len != w.len || g.dir != w.dir || g.id != w.id || g.iface != w.iface {
			t.Errorf("packet %d:\n got % x at %v length %d %v on %d %+v\nwant % x at %v length %d %v on %d %+v",
				i, g.data, g.t, g.len, g.dir, g.id, g.iface, w.data, w.t, w.len, w.dir, w.id, w.iface)
		}
	}
	if pr.Format() != FormatPcapng || len(pr.Interfaces()) != 1 || pr.Interfaces()[0] != sll {
		t.Errorf("Format %v, Interfaces %+v at the end", pr.Format(), pr.Interfaces())
	}
	// Before reading, the Reader knows the first interface.
	pr, err = NewReader(bytes.NewReader(f.b))
	if err != nil || pr.LinkType() != packet.LinkEthernet || pr.Snaplen() != 0 || !pr.Nanosecond() || len(pr.Interfaces()) != 1 {
		t.Errorf("NewReader: %v; LinkType %v Snaplen %d Nanosecond %v Interfaces %+v", err, pr.LinkType(), pr.Snaplen(), pr.Nanosecond(), pr.Interfaces())
	}
}

// TestNgReaderErrors checks that broken pcapng files give errors that say
// where and what, wrapping io.ErrUnexpectedEOF where the file ends early.
func TestNgReaderErrors(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	good := func() *ngFile { return new(ngFile).section(le).iface(1, 0) }
	withLen := func(f *ngFile, at int, n uint32) []byte {
		b := bytes.Clone(f.b)
		le.PutUint32(b[at:], n)
		return b
	}
	g := good()
	shbLen := len(new(ngFile).section(le).b)
	for _, tt := range []struct {
		name   string
		file   []byte
		header bool // error from NewReader
		is     error
		msg    string
	}{
		{"short section header", g.b[:10], true, io.ErrUnexpectedEOF, "block 1 at offset 0: read section header"},
		{"bad byte-order magic", withLen(g, 8, 0x12345678), true, nil, "bad byte-order magic 0x78563412"},
		{"section length not a multiple of 4", withLen(g, 4, 30), true, nil, "block length 30 is not a multiple of 4"},
		{"huge section", withLen(g, 4, 1<<30), true, nil, "block length 1073741824"},
		{"version 2", func() []byte { b := bytes.Clone(g.b); le.PutUint16(b[12:], 2); return b }(), true, nil, "unsupported version 2.0"},
		{"cut section", g.b[:20], true, io.ErrUnexpectedEOF, "read 12 bytes of block"},
		{"trailer mismatch", withLen(g, shbLen-4, 32), true, nil, "block length 32 at the end, 28 at the start"},
		{"cut interface", g.b[:len(g.b)-3], false, io.ErrUnexpectedEOF, "block 2 at offset 28"},
		{"interface too short", new(ngFile).section(le).block(blockIDB, make([]byte, 4)).b, false, nil, "interface description of 16 bytes, less than 20"},
		{"option past its block", withLen(good().iface(1, 0, opt{optIfName, []byte("lo")}), shbLen+20+16, 0x00ff0002), false, nil, "option 2 of 255 bytes runs past its block"},
		{"bad if_tsresol", good().iface(1, 0, opt{optIfTSResol, []byte{20}}).b, false, nil, "if_tsresol 0x14"},
		{"if_tsresol of 2 bytes", good().iface(1, 0, opt{optIfTSResol, []byte{6, 0}}).b, false, nil, "if_tsresol of 2 bytes"},
		{"packet of no interface", good().epb(1, 0, 4, []byte{1, 2, 3, 4}).b, false, nil, "packet of interface 1, of which the section has no description (1 interfaces)"},
		{"packet before any interface", new(ngFile).section(le).epb(0, 0, 4, []byte{1, 2, 3, 4}).b, false, nil, "packet of interface 0"},
		{"simple packet before any interface", new(ngFile).section(le).block(blockSPB, make([]byte, 8)).b, false, nil, "simple packet block before any interface"},
		{"captured length past block", withLen(good().epb(0, 0, 4, []byte{1, 2, 3, 4}), shbLen+20+20, 9), false, nil, "captured length 9 exceeds the 4 bytes of its block"},
		{"cut packet", good().epb(0, 0, 4, []byte{1, 2, 3, 4}).b[:shbLen+20+30], false, io.ErrUnexpectedEOF, "read 4 bytes of packet data"},
		{"time stamp overflow", good().iface(1, 0, opt{optIfTSResol, []byte{0}}).epb(1, 1<<63, 4, []byte{1, 2, 3, 4}).b, false, nil, "out of range"},
		{"cut block header", append(good().b, 6, 0, 0), false, io.ErrUnexpectedEOF, "read block header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := NewReader(bytes.NewReader(tt.file))
			if !tt.header {
				if err != nil {
					t.Fatalf("NewReader: %v", err)
				}
				var buf []byte
				for err == nil {
					buf, err = pr.ReadPacket(buf, new(packet.Info))
				}
				// The error stays: the Reader does not read on past it.
				if _, again := pr.ReadPacket(buf, new(packet.Info)); again == nil {
					t.Errorf("ReadPacket after %v: no error", err)
				}
			}
			if err == nil || err == io.EOF || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "pcapng reader: block ") ||
				(tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("error %v, want %q (%v)", err, tt.msg, tt.is)
			}
		})
	}
}

// TestNgRoundTrip writes the test frames of every link type to one
// pcapng file, an interface for each, with directions, and reads them
// back.
func TestNgRoundTrip(t *testing.T) {
	t.Parallel()
	links := []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP, packet.LinkLinuxSLL, packet.LinkLinuxSLL2}
	var ifaces []Interface
	for _, l := range links {
		ifaces = append(ifaces, Interface{Name: "if-" + l.String(), LinkType: l, Snaplen: 1000 + int(l)})
	}
	ifaces[0].Description = "Ethernet, with a description of 27"
	var file bytes.Buffer
	pw, err := NewNgWriter(&file, ifaces...)
	if err != nil {
		t.Fatal(err)
	}
	dirs := []packet.Direction{packet.DirectionUnknown, packet.DirectionHost, packet.DirectionBroadcast,
		packet.DirectionMulticast, packet.DirectionOtherHost, packet.DirectionOutgoing}
	var want []ngPacket
	for id, l := range links {
		for _, f := range testutil.FramesOf(t, uint16(l)) {
			i := len(want)
			info := packet.Info{Time: frameTime(i), Length: f.Length, Direction: dirs[i%len(dirs)], Ifindex: 9}
			if err := pw.WriteInterfacePacket(id, f.Data, &info); err != nil {
				t.Fatal(err)
			}
			want = append(want, ngPacket{f.Data, info.Time, f.Length, info.Direction, id, ifaces[id]})
		}
	}
	if err := pw.Flush(); err != nil || pw.Written() != int64(file.Len()) {
		t.Fatalf("Flush: %v; Written %d of %d bytes", err, pw.Written(), file.Len())
	}
	got, pr, err := readNg(t, file.Bytes())
	if err != io.EOF || len(got) != len(want) {
		t.Fatalf("read %d packets of %d, then %v", len(got), len(want), err)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !bytes.Equal(g.data, w.data) || !g.t.Equal(w.t) || g.len != w.len || g.dir != w.dir || g.id != w.id || g.iface != w.iface {
			t.Errorf("packet %d:\n got % x at %v length %d %v on %d %+v\nwant % x at %v length %d %v on %d %+v",
				i, g.data, g.t, g.len, g.dir, g.id, g.iface, w.data, w.t, w.len, w.dir, w.id, w.iface)
		}
	}
	if pr.LinkType() != packet.LinkEthernet || !pr.Nanosecond() || pr.Snaplen() != 1001 {
		t.Errorf("LinkType %v Nanosecond %v Snaplen %d", pr.LinkType(), pr.Nanosecond(), pr.Snaplen())
	}
}

func TestNgWriterErrors(t *testing.T) {
	t.Parallel()
	if _, err := NewNgWriter(io.Discard); err == nil || !strings.Contains(err.Error(), "no interface") {
		t.Errorf("NewNgWriter with no interface: %v", err)
	}
	if _, err := NewNgWriter(io.Discard, Interface{LinkType: 1}, Interface{Name: "big", Snaplen: 1 << 20}); err == nil || !strings.Contains(err.Error(), `snap length 1048576 out of range: 1 to 262144, or 0 for the default of 262144 (interface 1, "big")`) {
		t.Errorf("NewNgWriter with a snap length of 1 MiB: %v", err)
	}
	if _, err := NewNgWriter(pcapFailWriter{}, Interface{LinkType: 1}); !errors.Is(err, errPcapFail) || !strings.Contains(err.Error(), "write section header") {
		t.Errorf("NewNgWriter to a failing writer: %v", err)
	}
	pw, err := NewNgWriter(io.Discard, Interface{LinkType: 1})
	if err != nil {
		t.Fatal(err)
	}
	if pw.Snaplen() != DefaultSnaplen || pw.LinkType() != packet.LinkEthernet || pw.Format() != FormatPcapng {
		t.Errorf("Snaplen %d LinkType %v Format %v", pw.Snaplen(), pw.LinkType(), pw.Format())
	}
	for _, tt := range []struct {
		iface int
		tm    time.Time
		msg   string
	}{
		{1, pcapTestTime, "pcapng writer: interface 1 out of range: the file describes 1"},
		{-1, pcapTestTime, "interface -1 out of range"},
		{0, time.Unix(-1, 0), "outside the range of pcapng time stamps (1970 to 2554)"},
		{0, time.Date(2555, 1, 1, 0, 0, 0, 0, time.UTC), "outside the range"},
	} {
		if err := pw.WriteInterfacePacket(tt.iface, []byte{1}, &packet.Info{Time: tt.tm}); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("interface %d at %v: %v, want %q", tt.iface, tt.tm, err, tt.msg)
		}
	}
	// None of those is sticky.
	if err := pw.WritePacket([]byte{1}, nil); err != nil {
		t.Errorf("WritePacket after refused packets: %v", err)
	}
}
