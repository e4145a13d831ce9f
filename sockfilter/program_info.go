package sockfilter

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/internal/sys"
)

// Tag is a program's tag: the first 8 bytes of the SHA-1 of its
// instructions as loaded, which bpftool and /proc/PID/fdinfo show.
type Tag [sys.BPF_TAG_SIZE]byte

// String returns the tag in hex, as bpftool prints it.
func (t Tag) String() string { return hex.EncodeToString(t[:]) }

// ProgramInfo is what the kernel reports about a loaded program.
type ProgramInfo struct {
	// ID is the kernel's id for the program, as `bpftool prog show id`
	// takes it.
	ID uint32
	// Tag is the program's tag.
	Tag Tag
	// Name is the name the program was loaded with.
	Name string
	// XlatedInsns is the number of 8-byte instruction slots after the
	// verifier rewrote the program (xlated_prog_len / 8): legacy packet
	// loads and context accesses become several instructions.
	XlatedInsns int
	// JITSize is the size in bytes of the JIT-compiled machine code, or 0
	// when the program is interpreted.
	JITSize int
	// VerifiedInsns is the number of instructions the verifier processed
	// (Linux 5.16).
	VerifiedInsns int
	// LoadTime is when the program was loaded.
	LoadTime time.Time
	// CreatedByUID is the user id of the process that loaded the program.
	CreatedByUID uint32
	// GPLCompatible reports whether the license allows GPL-only helpers.
	GPLCompatible bool
	// RunCount and RunTime count the program's runs and their total time
	// while the kernel collects statistics (sysctl kernel.bpf_stats_enabled
	// or BPF_ENABLE_STATS); otherwise they are zero.
	RunCount uint64
	RunTime  time.Duration
}

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

// EthernetHeaderLen is the length of an Ethernet II header. Test needs a
// frame longer than that.
const EthernetHeaderLen = 14

// Test runs p once on frame in the kernel, without attaching it, and
// returns its return value: the number of bytes of the frame a socket
// would keep, 0 to drop it (bpf(2) BPF_PROG_TEST_RUN, Linux 4.12).
//
// Frame must start with an Ethernet header and have at least one byte
// after it; an IPv4 frame must hold the whole 20-byte IPv4 header and an
// IPv6 frame the 40-byte IPv6 header. The kernel refuses others. It builds a socket
// buffer from it as a received frame on the loopback device, consumes the
// Ethernet header with eth_type_trans, and starts the program's data at the
// network header: skb->len and offsets relative to skb->data differ from a
// live packet socket's by the 14 header bytes, and skb->pkt_type is
// PACKET_HOST only for the all-zeros destination address of lo. See the
// package documentation for programs that give the same verdict both ways.
func (p *Program) Test(frame []byte) (uint32, error) {
	if len(frame) <= EthernetHeaderLen {
		return 0, fmt.Errorf("test program: frame of %d bytes: the kernel needs an Ethernet header (%d bytes) and at least one byte more", len(frame), EthernetHeaderLen)
	}
	if need := minTestFrame(frame); len(frame) < need {
		return 0, fmt.Errorf("test program: frame of %d bytes with EtherType %#04x: the kernel needs at least %d", len(frame), binary.BigEndian.Uint16(frame[12:14]), need)
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
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case unix.ETH_P_IP:
		return EthernetHeaderLen + 20
	case unix.ETH_P_IPV6:
		return EthernetHeaderLen + 40
	}
	return EthernetHeaderLen + 1
}

// TestLink is Test for a frame of link type link, as a Conn or a pcap file
// gives it. An Ethernet frame is passed on as it is. A raw IP frame
// (LinkRawIP) is given an Ethernet header first — zero addresses and the
// EtherType of its IP version — because the kernel's test run needs one;
// a program for raw IP links reads the frame relative to the network
// header (LoadNet, SKF_NET_OFF), as Compile's do, so it sees the same
// bytes as on the live device. The frame is not modified.
func (p *Program) TestLink(frame []byte, link LinkType) (uint32, error) {
	switch link {
	case LinkEthernet:
		return p.Test(frame)
	case LinkRawIP:
	default:
		return 0, fmt.Errorf("test program: unsupported link type %v", link)
	}
	if len(frame) == 0 {
		return 0, errors.New("test program: empty raw IP frame")
	}
	var etherType uint16
	switch frame[0] >> 4 {
	case 4:
		etherType = unix.ETH_P_IP
	case 6:
		etherType = unix.ETH_P_IPV6
	default:
		return 0, fmt.Errorf("test program: raw IP frame of IP version %d", frame[0]>>4)
	}
	bp := testFrames.Get().(*[]byte)
	defer testFrames.Put(bp)
	b := append((*bp)[:0], make([]byte, EthernetHeaderLen-2)...)
	b = binary.BigEndian.AppendUint16(b, etherType)
	b = append(b, frame...)
	*bp = b
	return p.Test(b)
}

// testFrames holds the buffers TestLink builds Ethernet frames in.
var testFrames = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
