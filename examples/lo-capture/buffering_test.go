package main

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// countingWriter counts the Write calls it is given.
type countingWriter struct{ n atomic.Int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return len(p), nil
}

// TestLineBuffered checks that with -l (and -U) each record is handed to
// standard output as it is made, and without them none is until Flush.
func TestLineBuffered(t *testing.T) {
	info := packet.Info{Time: time.Unix(1, 0), Length: len(udpFrame)}
	for _, tc := range []struct {
		opts options
		want int64
	}{{options{}, 0}, {options{lineBuffered: true}, 3}, {options{packetBuffered: true}, 3}} {
		var cw countingWriter
		s := newStreamWriter(&cw, textChunks, textChunk)
		rw, err := newRecordWriter(context.Background(), s, &tc.opts, packet.LinkEthernet)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := rw.Write(udpFrame, &info); err != nil {
				t.Fatal(err)
			}
		}
		// What was handed over is written at once; wait for it.
		deadline := time.Now().Add(5 * time.Second)
		for s.written.Load() < tc.want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := s.written.Load(); got != tc.want {
			t.Errorf("%+v: %d chunks handed over, want %d", tc.opts, got, tc.want)
		}
		rw.finish()
		if err := s.closeWait(nil, nil); err != nil {
			t.Fatal(err)
		}
		if tc.want == 0 && cw.n.Load() != 1 {
			t.Errorf("%+v: %d writes at the end, want 1", tc.opts, cw.n.Load())
		}
	}
}

// TestPacketBuffered checks that with -U each frame is in the -w file as
// soon as it is written, and without it only once flushed.
func TestPacketBuffered(t *testing.T) {
	info := packet.Info{Time: time.Unix(1, 0), Length: len(udpFrame)}
	for _, u := range []bool{false, true} {
		name := filepath.Join(t.TempDir(), "f.pcap")
		opts := &options{write: name, packetBuffered: u}
		sf, err := newSavefile(context.Background(), nil, nil, opts, packet.LinkEthernet, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := sf.WritePacket(udpFrame, &info); err != nil {
			t.Fatal(err)
		}
		size := func() int64 {
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			return fi.Size()
		}
		want := int64(24)
		if u {
			want += 16 + int64(len(udpFrame))
		}
		if got := size(); got != want {
			t.Errorf("-U %v: %d bytes on disk after a frame, want %d", u, got, want)
		}
		if err := sf.close(); err != nil {
			t.Fatal(err)
		}
		if got := size(); got != 24+16+int64(len(udpFrame)) {
			t.Errorf("-U %v: %d bytes after close", u, got)
		}
	}
}

// TestRingGeometry checks -B's ring shapes.
func TestRingGeometry(t *testing.T) {
	const page = 4096
	for _, tc := range []struct{ kib, size, count int }{
		{32768, 1 << 20, 32},  // the default ring
		{8192, 1 << 20, 8},    // 8 blocks of 1 MiB
		{4096, 512 << 10, 8},  // 8 smaller blocks
		{1024, 128 << 10, 8},  // 128 KiB, the least
		{64, 128 << 10, 1},    // one block at least
		{1000, 128 << 10, 8},  // 125 KiB a block is less than the least
		{3000, 94 * page, 8},  // 375 KiB, up to whole pages
		{100000, 1 << 20, 98}, // rounded up
	} {
		size, count := ringGeometry(tc.kib, page)
		if size != tc.size || count != tc.count {
			t.Errorf("-B %d: %d blocks of %d, want %d of %d", tc.kib, count, size, tc.count, tc.size)
		}
		if size*count < tc.kib<<10 || size%page != 0 {
			t.Errorf("-B %d: a ring of %d bytes", tc.kib, size*count)
		}
	}
}
