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
// tp_mac, which is 82 on an Ethernet device (TPACKET_ALIGN(68 + 16) - 14)
// and 96 for a SOCK_DGRAM socket (TPACKET_ALIGN(68) + 16).
func ringTestFrame(blk []byte, off, mac int, frame []byte, length int, status uint32, tci uint32, tpid uint16) {
	h := (*frameHeader)(unsafe.Pointer(&blk[off]))
	*h = frameHeader{
		Sec:     1_700_000_000,
		Nsec:    123_456_789,
		Snaplen: uint32(len(frame)),
		Len:     uint32(length),
		Status:  status,
		Mac:     uint16(mac),
		Net:     uint16(mac + 14),
		Hv1:     frameVariant1{VLANTCI: tci, VLANTPID: tpid},
	}
	sa := (*sockaddrLL)(unsafe.Pointer(&blk[off+frameHdrLen]))
	*sa = sockaddrLL{
		Family:   unix.AF_PACKET,
		Protocol: htons(0x0800),
		Ifindex:  7,
		Hatype:   unix.ARPHRD_ETHER,
		Pkttype:  unix.PACKET_BROADCAST,
		Halen:    6,
		Addr:     [8]byte{2, 0, 0, 0, 0, 1},
	}
	copy(blk[off+mac:], frame)
}

// htons converts v to network byte order, as sll_protocol holds it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// alignedBlock returns a zeroed block of n bytes aligned as the ring's are.
func alignedBlock(n int) []byte {
	buf := make([]uint64, n/8+1)
	return unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), n)
}

func TestParseRingFrame(t *testing.T) {
	frame := []byte("0123456789abcdef0123456789")
	whole := func() []byte {
		blk := alignedBlock(4096)
		ringTestFrame(blk, blockHdrLen, 82, frame, 60, unix.TP_STATUS_USER|unix.TP_STATUS_VLAN_VALID|unix.TP_STATUS_VLAN_TPID_VALID, 3<<13|100, 0x88a8)
		return blk
	}
	blk := whole()
	var info packet.Info
	got, next, sa, err := parseFrame(blk, blockHdrLen, &info)
	if err != nil {
		t.Fatalf("parseFrame: %v", err)
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
	if !bytes.Equal(got, frame) || cap(got) != len(frame) || next != 0 || info != want || sa.Hatype != unix.ARPHRD_ETHER {
		t.Errorf("parseFrame = %q (cap %d), next %d, %+v, %+v; want %q, 0, %+v", got, cap(got), next, info, sa, frame, want)
	}

	tests := []struct {
		name  string
		off   int
		patch func(blk []byte)
		want  string
	}{
		{"offset in the block header", 8, nil, "frame offset 8 outside the block"},
		{"offset past the end", 4096 - 40, nil, "frame offset 4056 outside the block"},
		{"offset not aligned", blockHdrLen + 2, nil, "frame offset 50 is not aligned"},
		{"snap length past the end", blockHdrLen, func(b []byte) {
			binary.NativeEndian.PutUint32(b[blockHdrLen+12:], 4096)
		}, "4096 bytes at 82 overrun the block"},
		{"snap length negative as an int32", blockHdrLen, func(b []byte) {
			binary.NativeEndian.PutUint32(b[blockHdrLen+12:], 0xffffffff)
		}, "4294967295 bytes at 82 overrun the block"},
		{"tp_mac inside the header", blockHdrLen, func(b []byte) {
			binary.NativeEndian.PutUint16(b[blockHdrLen+24:], 10)
		}, "bytes at 10 overrun the block"},
		{"tp_mac past the end", blockHdrLen, func(b []byte) {
			binary.NativeEndian.PutUint16(b[blockHdrLen+24:], 0xffff)
		}, "bytes at 65535 overrun the block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blk := whole()
			if tt.patch != nil {
				tt.patch(blk)
			}
			var info packet.Info
			_, _, _, err := parseFrame(blk, tt.off, &info)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v; want one saying %q", err, tt.want)
			}
		})
	}
}

// TestDirection checks the mapping of the kernel's packet types
// (sll_pkttype, linux/if_packet.h) to packet.Direction: the five a packet
// socket reports, and the others (PACKET_LOOPBACK, PACKET_USER,
// PACKET_KERNEL, which tpacket_rcv never passes on) as unknown.
func TestDirection(t *testing.T) {
	tests := []struct {
		pkttype uint8
		want    packet.Direction
	}{
		{unix.PACKET_HOST, packet.DirectionHost},
		{unix.PACKET_BROADCAST, packet.DirectionBroadcast},
		{unix.PACKET_MULTICAST, packet.DirectionMulticast},
		{unix.PACKET_OTHERHOST, packet.DirectionOtherHost},
		{unix.PACKET_OUTGOING, packet.DirectionOutgoing},
		{unix.PACKET_LOOPBACK, packet.DirectionUnknown},
		{unix.PACKET_USER, packet.DirectionUnknown},
		{unix.PACKET_KERNEL, packet.DirectionUnknown},
		{255, packet.DirectionUnknown},
	}
	for _, tt := range tests {
		if got := Direction(tt.pkttype); got != tt.want {
			t.Errorf("Direction(%d) = %v; want %v", tt.pkttype, got, tt.want)
		}
	}
}

func TestSkip(t *testing.T) {
	const (
		host  = unix.PACKET_HOST
		bcast = unix.PACKET_BROADCAST
		other = unix.PACKET_OTHERHOST
		out   = unix.PACKET_OUTGOING
		ether = unix.ARPHRD_ETHER
		loop  = unix.ARPHRD_LOOPBACK
	)
	tests := []struct {
		skip    Skip
		pkttype uint8
		hatype  uint16
		want    bool
	}{
		{0, out, loop, false},
		{0, host, ether, false},
		{SkipIncoming, host, ether, true},
		{SkipIncoming, bcast, ether, true},
		{SkipIncoming, other, ether, true},
		{SkipIncoming, out, ether, false},
		{SkipIncoming, out, loop, false},
		{SkipOutgoing, out, ether, true},
		{SkipOutgoing, host, loop, false},
		{SkipLoopbackOutgoing, out, loop, true},
		{SkipLoopbackOutgoing, out, ether, false},
		{SkipLoopbackOutgoing, host, loop, false},
		{SkipIncoming | SkipLoopbackOutgoing, out, loop, true},
		{SkipIncoming | SkipLoopbackOutgoing, out, ether, false},
	}
	for _, tt := range tests {
		if got := tt.skip.skips(tt.pkttype, tt.hatype); got != tt.want {
			t.Errorf("Skip(%#b).skips(pkttype %d, hatype %d) = %v; want %v", tt.skip, tt.pkttype, tt.hatype, got, tt.want)
		}
	}
}

// TestCook checks the SLL2 header put in front of a SOCK_DGRAM frame in
// the ring, field by field.
func TestCook(t *testing.T) {
	payload := []byte{0x45, 0, 0, 20}
	blk := alignedBlock(4096)
	ringTestFrame(blk, blockHdrLen, 96, payload, 4, unix.TP_STATUS_USER, 0, 0)
	var info packet.Info
	frame, _, sa, err := parseFrame(blk, blockHdrLen, &info)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cook(blk, blockHdrLen, frame, sa, &info)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x08, 0x00, // protocol: IPv4
		0x00, 0x00, // reserved
		0x00, 0x00, 0x00, 0x07, // ifindex 7
		0x00, 0x01, // ARPHRD_ETHER
		unix.PACKET_BROADCAST,  // packet type
		6,                      // address length
		2, 0, 0, 0, 0, 1, 0, 0, // address, padded to 8
		0x45, 0, 0, 20, // the frame
	}
	if !bytes.Equal(got, want) || cap(got) != len(got) || info.Length != 4+SLL2HeaderLen {
		t.Errorf("cook = %x (cap %d), length %d; want %x, length %d", got, cap(got), info.Length, want, 4+SLL2HeaderLen)
	}

	// An Ethernet frame at 82 leaves 14 bytes after the sockaddr_ll:
	// too few.
	ringTestFrame(blk, blockHdrLen, 82, payload, 4, unix.TP_STATUS_USER, 0, 0)
	frame, _, sa, _ = parseFrame(blk, blockHdrLen, &info)
	if _, err := cook(blk, blockHdrLen, frame, sa, &info); err == nil || !strings.Contains(err.Error(), "no room for its cooked header") {
		t.Errorf("cook with 14 bytes of room: %v; want an error", err)
	}
}

// FuzzParseFrame checks that no block content makes parseFrame panic or
// return bytes outside the block, and that cook writes only between the
// frame's sockaddr_ll and the frame: the kernel writes the ring, but the
// reader trusts none of it.
func FuzzParseFrame(f *testing.F) {
	blk := alignedBlock(256)
	ringTestFrame(blk, blockHdrLen, 82, []byte("frame bytes"), 11, unix.TP_STATUS_USER, 0, 0)
	f.Add(bytes.Clone(blk), blockHdrLen)
	f.Fuzz(func(t *testing.T, data []byte, off int) {
		blk := alignedBlock(len(data))
		copy(blk, data)
		var info packet.Info
		frame, _, sa, err := parseFrame(blk, off, &info)
		if err != nil {
			return
		}
		// An empty slice's address is its array's: only a frame with
		// bytes has one of its own.
		start := int(uintptrOf(frame) - uintptrOf(blk))
		if len(frame) > 0 && (start < off+frameStart || start+len(frame) > len(blk)) {
			t.Fatalf("frame at %d, %d bytes, outside block of %d bytes (header at %d)", start, len(frame), len(blk), off)
		}
		cooked, err := cook(blk, off, frame, sa, &info)
		if err != nil {
			return
		}
		if s := int(uintptrOf(cooked) - uintptrOf(blk)); s < off+frameStart || len(cooked) != SLL2HeaderLen+len(frame) || s+len(cooked) > len(blk) ||
			len(frame) > 0 && s+SLL2HeaderLen != start {
			t.Fatalf("cooked frame at %d, %d bytes; frame at %d, %d bytes, header at %d", s, len(cooked), start, len(frame), off)
		}
	})
}

// uintptrOf returns the address of b's first byte.
func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
