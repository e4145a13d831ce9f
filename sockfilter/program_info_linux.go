package sockfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// Info returns what the kernel reports about p (bpf(2)
// BPF_OBJ_GET_INFO_BY_FD).
func (p *Program) Info() (ProgramInfo, error) {
	var info sys.ProgInfo
	err := p.use("program info", func(fd int) error {
		if err := sys.ObjGetInfoByFD(fd, &info); err != nil {
			return fmt.Errorf("program info: %w", err)
		}
		return nil
	})
	if err != nil {
		return ProgramInfo{}, err
	}
	return ProgramInfo{
		ID:            info.ID,
		Tag:           info.Tag,
		Name:          info.Name.String(),
		XlatedInsns:   int(info.XlatedProgLen / 8),
		JITSize:       int(info.JitedProgLen),
		VerifiedInsns: int(info.VerifiedInsns),
		LoadTime:      bootTime(info.LoadTime),
		CreatedByUID:  info.CreatedByUID,
		GPLCompatible: info.GPLCompatible(),
		RunCount:      info.RunCnt,
		RunTime:       time.Duration(info.RunTimeNs),
	}, nil
}

// bootTime converts ns since boot (CLOCK_BOOTTIME) to wall-clock time.
func bootTime(ns uint64) time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}
	}
	now := time.Now()
	return now.Add(-time.Duration(uint64(ts.Nano()) - ns))
}

// Test runs p once on frame, a frame of link type link as a Conn or a
// pcap file gives it, in the kernel, without attaching p, and returns its
// return value: the number of bytes of the frame a socket would keep, 0
// to drop it (bpf(2) BPF_PROG_TEST_RUN, Linux 4.12).
//
// The kernel does not see the frame quite as a live socket does. It builds
// a socket buffer from it as a frame received on the loopback device,
// consumes the Ethernet header with eth_type_trans, and starts the
// program's data at the network header: skb->len and offsets relative to
// skb->data differ from a live packet socket's by the 14 header bytes,
// and skb->pkt_type is PACKET_HOST only for the all-zeros destination
// address of lo. See the package documentation for programs that give the
// same verdict both ways, and the vm package for a run in Go that sees
// the frame as a live socket does.
//
// An Ethernet frame must have at least one byte after its header; an IPv4
// frame must hold the whole 20-byte IPv4 header and an IPv6 frame the
// 40-byte IPv6 header: the kernel refuses others, and so does Test, with
// an error saying why. A raw IP frame (LinkRawIP) is given an Ethernet
// header first — zero addresses and the EtherType of its IP version —
// because the kernel's test run needs one; a program for raw IP links
// reads the frame relative to the network header (skb.LoadNet), as
// pcapfilter's do, so it sees the same bytes as on the live device. The
// frame is not modified.
func (p *Program) Test(frame []byte, link packet.LinkType) (uint32, error) {
	switch link {
	case packet.LinkEthernet:
		return p.testEthernet(frame)
	case packet.LinkRawIP:
	default:
		return 0, fmt.Errorf("test program: unsupported link type %v", link)
	}
	if len(frame) == 0 {
		return 0, errors.New("test program: empty raw IP frame")
	}
	var etherType uint16
	switch frame[0] >> 4 {
	case 4:
		etherType = wire.EtherTypeIPv4
	case 6:
		etherType = wire.EtherTypeIPv6
	default:
		return 0, fmt.Errorf("test program: raw IP frame of IP version %d", frame[0]>>4)
	}
	bp := testFrames.Get().(*[]byte)
	defer testFrames.Put(bp)
	b := append((*bp)[:0], make([]byte, wire.EtherTypeOff)...)
	b = binary.BigEndian.AppendUint16(b, etherType)
	b = append(b, frame...)
	*bp = b
	return p.testEthernet(b)
}

// testFrames holds the buffers Test builds Ethernet frames in.
var testFrames = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// testEthernet runs p on an Ethernet frame.
func (p *Program) testEthernet(frame []byte) (uint32, error) {
	if len(frame) <= wire.EthernetHeaderLen {
		return 0, fmt.Errorf("test program: frame of %d bytes: the kernel needs an Ethernet header (%d bytes) and at least one byte more", len(frame), wire.EthernetHeaderLen)
	}
	if need := minTestFrame(frame); len(frame) < need {
		return 0, fmt.Errorf("test program: frame of %d bytes with EtherType %#04x: the kernel needs at least %d", len(frame), binary.BigEndian.Uint16(frame[wire.EtherTypeOff:]), need)
	}
	var retval uint32
	err := p.use("test program", func(fd int) error {
		attr := sys.ProgTestRunAttr{
			ProgFD:     uint32(fd),
			DataSizeIn: uint32(len(frame)),
			DataIn:     sys.SlicePointer(frame),
			Repeat:     1,
		}
		if err := sys.ProgTestRun(&attr); err != nil {
			return fmt.Errorf("test program: %w", err)
		}
		retval = attr.Retval
		return nil
	})
	return retval, err
}

// minTestFrame returns the shortest frame BPF_PROG_TEST_RUN accepts with
// the EtherType of frame: it pulls the whole IPv4 or IPv6 header.
func minTestFrame(frame []byte) int {
	switch binary.BigEndian.Uint16(frame[wire.EtherTypeOff:]) {
	case wire.EtherTypeIPv4:
		return wire.EthernetHeaderLen + wire.IPv4HeaderLen
	case wire.EtherTypeIPv6:
		return wire.EthernetHeaderLen + wire.IPv6HeaderLen
	}
	return wire.EthernetHeaderLen + 1
}
