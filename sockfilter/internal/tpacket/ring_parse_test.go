//go:build linux

package tpacket

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"golang.org/x/sys/unix"
)

// ringTestFrame lays out one frame in a block as tpacket_rcv does: its
// tpacket3_hdr at off, the sockaddr_ll after it, and the frame's bytes at
// tp_mac (82 on an Ethernet device: TPACKET_ALIGN(68 + 16) - 14).
func ringTestFrame(blk []byte, off int, frame []byte, length int, status uint32, tci uint32, tpid uint16) {
	ne := binary.NativeEndian
	h := blk[off:]
	ne.PutUint32(h[0:], 0)                   // tp_next_offset
	ne.PutUint32(h[4:], 1_700_000_000)       // tp_sec
	ne.PutUint32(h[8:], 123_456_789)         // tp_nsec
	ne.PutUint32(h[12:], uint32(len(frame))) // tp_snaplen
	ne.PutUint32(h[16:], uint32(length))     // tp_len
	ne.PutUint32(h[20:], status)             // tp_status
	ne.PutUint16(h[24:], 82)                 // tp_mac
	ne.PutUint16(h[26:], 96)                 // tp_net
	ne.PutUint32(h[32:], tci)                // hv1.tp_vlan_tci
	ne.PutUint16(h[36:], tpid)               // hv1.tp_vlan_tpid
	sll := h[ringSllOff:]
	ne.PutUint16(sll[0:], unix.AF_PACKET) // sll_family
	ne.PutUint32(sll[4:], 7)              // sll_ifindex
	sll[10] = unix.PACKET_BROADCAST       // sll_pkttype
	copy(h[82:], frame)
}

func TestParseRingFrame(t *testing.T) {
	frame := []byte("0123456789abcdef0123456789")
	whole := func() []byte {
		blk := make([]byte, 4096)
		ringTestFrame(blk, ringBlockHdrLen, frame, 60, unix.TP_STATUS_USER|unix.TP_STATUS_VLAN_VALID|unix.TP_STATUS_VLAN_TPID_VALID, 3<<13|100, 0x88a8)
		return blk
	}
	blk := whole()
	var info packet.Info
	got, next, err := ParseFrame(blk, ringBlockHdrLen, &info)
	if err != nil {
		t.Fatalf("ParseFrame: %v", err)
	}
	want := packet.Info{
		Time:      time.Unix(1_700_000_000, 123_456_789),
		Ifindex:   7,
		Direction: packet.DirectionBroadcast,
		Length:    60,
		VLANTCI:   3<<13 | 100,
		VLANTPID:  0x88a8,
		HasVLAN:   true,
	}
	if !bytes.Equal(got, frame) || cap(got) != len(frame) || next != 0 || info != want {
		t.Errorf("ParseFrame = %q (cap %d), next %d, %+v; want %q, 0, %+v", got, cap(got), next, info, frame, want)
	}

	tests := []struct {
		name  string
		off   int
		patch func(blk []byte)
		want  string
	}{
		{"offset in the block header", 8, nil, "frame offset 8 outside the block"},
		{"offset past the end", 4096 - 40, nil, "frame offset 4056 outside the block"},
		{"snap length past the end", ringBlockHdrLen, func(b []byte) {
			binary.NativeEndian.PutUint32(b[ringBlockHdrLen+12:], 4096)
		}, "4096 bytes at 82 overrun the block"},
		{"tp_mac inside the header", ringBlockHdrLen, func(b []byte) {
			binary.NativeEndian.PutUint16(b[ringBlockHdrLen+24:], 10)
		}, "bytes at 10 overrun the block"},
		{"tp_mac past the end", ringBlockHdrLen, func(b []byte) {
			binary.NativeEndian.PutUint16(b[ringBlockHdrLen+24:], 0xffff)
		}, "bytes at 65535 overrun the block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blk := whole()
			if tt.patch != nil {
				tt.patch(blk)
			}
			var info packet.Info
			_, _, err := ParseFrame(blk, tt.off, &info)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v; want one saying %q", err, tt.want)
			}
		})
	}
}

// FuzzParseFrame checks that no block content makes ParseFrame
// panic or return bytes outside the block: the kernel writes the ring, but
// the reader trusts none of it.
func FuzzParseFrame(f *testing.F) {
	blk := make([]byte, 256)
	ringTestFrame(blk, ringBlockHdrLen, []byte("frame bytes"), 11, unix.TP_STATUS_USER, 0, 0)
	f.Add(blk, ringBlockHdrLen)
	f.Fuzz(func(t *testing.T, blk []byte, off int) {
		var info packet.Info
		frame, _, err := ParseFrame(blk, off, &info)
		if err != nil {
			return
		}
		if len(frame) > 0 {
			start := int(uintptrOf(frame) - uintptrOf(blk))
			if start < off+ringFrameStart || start+len(frame) > len(blk) {
				t.Fatalf("frame at %d, %d bytes, outside block of %d bytes (header at %d)", start, len(frame), len(blk), off)
			}
		}
	})
}

// uintptrOf returns the address of b's first byte.
func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
