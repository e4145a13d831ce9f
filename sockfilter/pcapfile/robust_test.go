package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// fakeFile is an in-memory file whose writes fail once it holds limit
// bytes, after taking what fits, as a full disk does; it can be cut back
// and seeked, as an *os.File can, unless it is a pipe.
type fakeFile struct {
	data    []byte
	pos     int64
	limit   int
	pipe    bool // Seek fails, as on a pipe
	appends bool // writes go to the end, as with O_APPEND
	writes  int
}

var errDiskFull = errors.New("no space left on device (fake)")

func (f *fakeFile) Write(b []byte) (int, error) {
	f.writes++
	if f.appends {
		f.pos = int64(len(f.data))
	}
	n := min(len(b), max(f.limit-int(f.pos), 0))
	f.data = append(f.data[:f.pos], b[:n]...)
	f.pos += int64(n)
	if n < len(b) {
		return n, errDiskFull
	}
	return n, nil
}

func (f *fakeFile) Truncate(size int64) error {
	if size > int64(len(f.data)) {
		return errors.New("truncate past the end")
	}
	f.data = f.data[:size]
	return nil
}

func (f *fakeFile) Seek(off int64, whence int) (int64, error) {
	if f.pipe {
		return 0, errors.New("illegal seek")
	}
	switch whence {
	case io.SeekStart:
		f.pos = off
	case io.SeekCurrent:
		f.pos += off
	case io.SeekEnd:
		f.pos = int64(len(f.data)) + off
	default:
		return 0, errors.New("whence")
	}
	return f.pos, nil
}

// newTestWriter returns a Writer of format to w for Ethernet frames.
func newTestWriter(t *testing.T, format Format, w io.Writer) (*Writer, error) {
	t.Helper()
	if format == FormatPcapng {
		return NewNgWriter(w, Interface{Name: "lo", LinkType: packet.LinkEthernet})
	}
	return NewWriter(w, packet.LinkEthernet, 0)
}

// TestWriterFullDisk writes to a file that fills up after every possible
// number of bytes, through Writers that write each record out and that
// buffer them, in both formats, and checks that the file is then what an
// error-free run wrote, cut at its last whole record: Written bytes,
// readable to the end without error. A file that cannot be cut back (a
// pipe) keeps the part of a record, past Written.
func TestWriterFullDisk(t *testing.T) {
	t.Parallel()
	frames := testutil.FramesOf(t, testutil.LinkEthernet)[:8]
	write := func(t *testing.T, format Format, w io.Writer, buffer int) (*Writer, int, error) {
		t.Helper()
		pw, err := newTestWriter(t, format, w)
		if err != nil {
			return nil, 0, err
		}
		if err := pw.SetBufferSize(buffer); err != nil {
			return pw, 0, err
		}
		for i, f := range frames {
			if err := pw.WritePacket(f.Data, &packet.Info{Time: frameTime(i), Length: f.Length, Direction: packet.DirectionHost}); err != nil {
				return pw, i, err
			}
		}
		return pw, len(frames), pw.Flush()
	}
	for _, format := range []Format{FormatPcap, FormatPcapng} {
		full := &fakeFile{limit: 1 << 30}
		if _, _, err := write(t, format, full, 0); err != nil {
			t.Fatal(err)
		}
		for _, buffer := range []int{0, 300, 1 << 20} {
			for _, pipe := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v buffer %d pipe %v", format, buffer, pipe), func(t *testing.T) {
					for limit := 0; limit < len(full.data); limit++ {
						f := &fakeFile{limit: limit, pipe: pipe}
						pw, _, err := write(t, format, f, buffer)
						if !errors.Is(err, errDiskFull) {
							t.Fatalf("limit %d: error %v, want the disk full", limit, err)
						}
						if pw == nil {
							// The file header did not fit: no Writer, and
							// nothing of the header left, if it could be cut.
							if !pipe && len(f.data) != 0 {
								t.Fatalf("limit %d: NewWriter failed and left %d bytes", limit, len(f.data))
							}
							continue
						}
						writes := f.writes
						if err2 := pw.WritePacket(frames[0].Data, nil); err2 != err || pw.Flush() != err || f.writes != writes {
							t.Fatalf("limit %d: the error is not sticky: %v, then %v", limit, err, err2)
						}
						n := pw.Written()
						if n > int64(limit) || !bytes.Equal(f.data[:n], full.data[:n]) {
							t.Fatalf("limit %d: Written %d, file of %d bytes not a prefix of the whole run's", limit, n, len(f.data))
						}
						if !pipe && int64(len(f.data)) != n {
							t.Fatalf("limit %d: file of %d bytes, Written %d: not cut back", limit, len(f.data), n)
						}
						if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(n)) || !strings.HasPrefix(msg, format.String()+" writer: ") {
							t.Fatalf("limit %d: error %q does not say the file's %d bytes", limit, msg, n)
						}
						// What is left up to Written is a whole capture.
						pr, err := NewReader(bytes.NewReader(f.data[:n]))
						if err != nil {
							t.Fatalf("limit %d: %v", limit, err)
						}
						var buf []byte
						for err == nil {
							buf, err = pr.ReadPacket(buf, new(packet.Info))
						}
						if err != io.EOF {
							t.Fatalf("limit %d: reading the %d bytes left: %v", limit, n, err)
						}
					}
				})
			}
		}
	}
}

// TestWriterAppendedFileNotCut checks that a Writer does not cut back a
// file it did not make as long as it is — one opened to append to, whose
// offset said 0 when the Writer began — so that a failed write cannot
// destroy what the file held before.
func TestWriterAppendedFileNotCut(t *testing.T) {
	t.Parallel()
	old := bytes.Repeat([]byte("earlier data "), 20)
	f := &fakeFile{data: bytes.Clone(old), limit: len(old) + 100, appends: true}
	pw, err := newTestWriter(t, FormatPcap, f)
	if err != nil {
		t.Fatal(err)
	}
	fr := testutil.NamedFrame(t, "tcp4")
	for err == nil {
		err = pw.WritePacket(fr.Data, &packet.Info{Time: pcapTestTime})
	}
	if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "is 360 bytes long, not the 100 the Writer made it") {
		t.Errorf("error %v", err)
	}
	if !bytes.Equal(f.data[:len(old)], old) || len(f.data) != len(old)+100 {
		t.Errorf("the file of %d bytes was cut to %d", len(old)+100, len(f.data))
	}
}

// TestWriterBuffers checks that a Writer hands its io.Writer whole records
// only: one Write per record by default, and with SetBufferSize one per
// that many bytes, none before, and what is held on Flush.
func TestWriterBuffers(t *testing.T) {
	t.Parallel()
	f := testutil.NamedFrame(t, "tcp4") // records of 16+74 bytes in pcap
	for _, format := range []Format{FormatPcap, FormatPcapng} {
		file := &fakeFile{limit: 1 << 30}
		pw, err := newTestWriter(t, format, file)
		if err != nil {
			t.Fatal(err)
		}
		if file.writes != 1 || pw.Written() != int64(len(file.data)) {
			t.Fatalf("%v: the file header took %d writes; Written %d of %d", format, file.writes, pw.Written(), len(file.data))
		}
		info := packet.Info{Time: pcapTestTime, Length: len(f.Data)}
		for i := range 3 {
			if err := pw.WritePacket(f.Data, &info); err != nil || file.writes != 2+i || pw.Written() != int64(len(file.data)) {
				t.Fatalf("%v: record %d: %v, %d writes", format, i, err, file.writes)
			}
		}
		if err := pw.SetBufferSize(1000); err != nil {
			t.Fatal(err)
		}
		before, size := file.writes, len(file.data)
		held := 0
		for pw.Written() == int64(size) {
			if err := pw.WritePacket(f.Data, &info); err != nil {
				t.Fatal(err)
			}
			held++
		}
		if file.writes != before+1 || len(file.data)-size < 1000 || held < 2 {
			t.Errorf("%v: %d records held, then %d writes of %d bytes; want one of at least 1000", format, held, file.writes-before, len(file.data)-size)
		}
		if err := pw.WritePacket(f.Data, &info); err != nil || file.writes != before+1 {
			t.Errorf("%v: a record written out at once: %v, %d writes", format, err, file.writes-before)
		}
		if err := pw.Flush(); err != nil || file.writes != before+2 || pw.Written() != int64(len(file.data)) {
			t.Errorf("%v: Flush: %v, %d writes, Written %d of %d", format, err, file.writes-before, pw.Written(), len(file.data))
		}
		if err := pw.Flush(); err != nil || file.writes != before+2 {
			t.Errorf("%v: a second Flush wrote: %v", format, err)
		}
	}
}

// TestNgNoAllocs checks that writing and reading a pcapng packet allocates
// nothing once the buffers are big enough, as for pcap.
func TestNgNoAllocs(t *testing.T) {
	f := testutil.NamedFrame(t, "tcp4")
	var file bytes.Buffer
	pw, err := NewNgWriter(&file, Interface{Name: "eth0", LinkType: packet.LinkEthernet})
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.SetBufferSize(64 << 10); err != nil {
		t.Fatal(err)
	}
	info := packet.Info{Time: pcapTestTime, Length: 74, HasVLAN: true, VLANTCI: 3, Direction: packet.DirectionOutgoing}
	if n := testing.AllocsPerRun(200, func() {
		if err := pw.WritePacket(f.Data, &info); err != nil {
			t.Fatal(err)
		}
		if file.Len() > 32<<10 {
			file.Reset()
		}
	}); n != 0 {
		t.Errorf("Writer: %v allocations a packet, want 0", n)
	}

	var ng bytes.Buffer
	pw, err = NewNgWriter(&ng, Interface{Name: "eth0", LinkType: packet.LinkEthernet})
	if err != nil {
		t.Fatal(err)
	}
	for range 202 {
		if err := pw.WritePacket(f.Data, &info); err != nil {
			t.Fatal(err)
		}
	}
	pr, err := NewReader(bytes.NewReader(ng.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 128)
	var got packet.Info
	if n := testing.AllocsPerRun(200, func() {
		if buf, err = pr.ReadPacket(buf, &got); err != nil {
			t.Fatal(err)
		}
		if _, iface := pr.Interface(); iface.LinkType != packet.LinkEthernet || got.Direction != packet.DirectionOutgoing {
			t.Fatal("wrong packet")
		}
	}); n != 0 {
		t.Errorf("ReadPacket: %v allocations a packet, want 0", n)
	}
}

// TestNgReaderBoundedMemory checks that a block claiming the most the
// Reader takes, 16 MiB, in a short file costs the Reader no more than
// the file's bytes, and that one claiming more is refused.
func TestNgReaderBoundedMemory(t *testing.T) {
	t.Parallel()
	f := new(ngFile).section(binary.LittleEndian).iface(1, 0)
	head := f.b
	for _, typ := range []uint32{4, blockIDB, blockEPB, blockSHB} {
		b := binary.LittleEndian.AppendUint32(bytes.Clone(head), typ)
		b = binary.LittleEndian.AppendUint32(b, maxBlockLen)
		if typ == blockSHB {
			b = binary.LittleEndian.AppendUint32(b, byteOrderMagic)
		}
		b = append(b, make([]byte, 1000)...)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		pr, err := NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var buf []byte
		for err == nil {
			buf, err = pr.ReadPacket(buf, new(packet.Info))
		}
		runtime.ReadMemStats(&after)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("block type %d of 16 MiB in %d bytes: %v, want io.ErrUnexpectedEOF", typ, len(b), err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
			t.Errorf("block type %d of 16 MiB in %d bytes: the Reader allocated %d bytes", typ, len(b), alloc)
		}
		binary.LittleEndian.PutUint32(b[len(head)+4:], maxBlockLen+4)
		pr, err = NewReader(bytes.NewReader(b))
		for err == nil {
			buf, err = pr.ReadPacket(buf, new(packet.Info))
		}
		if err == nil || !strings.Contains(err.Error(), "to 16777216") {
			t.Errorf("block type %d of 16 MiB and 4 bytes: %v", typ, err)
		}
	}
}
