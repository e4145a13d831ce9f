package pcapfile

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/bits"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The pcapng format's numbers (draft-ietf-opsawg-pcapng).
const (
	blockSHB = 0x0a0d0d0a // Section Header Block
	blockIDB = 1          // Interface Description Block
	blockPB  = 2          // Packet Block, obsolete
	blockSPB = 3          // Simple Packet Block
	blockEPB = 6          // Enhanced Packet Block

	byteOrderMagic = 0x1a2b3c4d

	optEndOfOpt   = 0
	optIfName     = 2  // IDB if_name
	optIfDesc     = 3  // IDB if_description
	optIfTSResol  = 9  // IDB if_tsresol
	optIfTSOffset = 14 // IDB if_tsoffset
	optEPBFlags   = 2  // EPB epb_flags
	optSHBUserApp = 4  // SHB shb_userappl

	// maxBlockLen bounds the blocks a Reader takes, as libpcap does: a
	// packet block holds at most wire.MaxSnapLen bytes of packet and its
	// options, and no other block needs more.
	maxBlockLen = 16 << 20
)

// ngReader is the state of a Reader of a pcapng file.
type ngReader struct {
	blocks    int             // blocks read
	times     []ngTime        // by interface ID, how to read its time stamps
	firstLink packet.LinkType // the first interface's, ever
	haveFirst bool
	typ, len  uint32 // the block header read ahead, when have
	have      bool
	shbLen    [4]byte // a Section Header Block's length, in an order still unknown
	body      []byte  // a block's body or options, reused
}

// ngTime is how to turn an interface's time stamps into times: units per
// second (if_tsresol) and seconds to add (if_tsoffset).
type ngTime struct {
	unitsPerSec uint64
	offset      int64
}

// ngStart reads the Section Header Block, whose type the caller has
// read, and then the blocks up to the first packet, so that LinkType
// knows the first interface. An error after the section header is kept
// for the first ReadPacket.
func (pr *Reader) ngStart() error {
	pr.format = FormatPcapng
	if err := pr.ngSection(false); err != nil {
		return err
	}
	for len(pr.ifaces) == 0 {
		typ, n, err := pr.ngBlockHeader()
		if err != nil {
			pr.pending = err
			return nil
		}
		if typ == blockEPB || typ == blockSPB || typ == blockPB {
			pr.ng.typ, pr.ng.len, pr.ng.have = typ, n, true
			return nil
		}
		if err := pr.ngBlock(typ, n); err != nil {
			pr.pending = err
			return nil
		}
	}
	return nil
}

// ngSection reads a Section Header Block after its type and, if
// haveLen, its length, which the caller read into pr.ng.shbLen: the
// byte-order magic, which says the byte order of the section and so of
// the length, and the rest. It starts a new list of interfaces.
func (pr *Reader) ngSection(haveLen bool) error {
	var h [8]byte
	if haveLen {
		copy(h[0:4], pr.ng.shbLen[:])
		if _, err := io.ReadFull(pr.r, h[4:8]); err != nil {
			return pr.errorf("read section header: %w", unexpected(err))
		}
	} else if _, err := io.ReadFull(pr.r, h[:]); err != nil {
		return pr.errorf("read section header: %w", unexpected(err))
	}
	switch {
	case binary.LittleEndian.Uint32(h[4:8]) == byteOrderMagic:
		pr.order = binary.LittleEndian
	case binary.BigEndian.Uint32(h[4:8]) == byteOrderMagic:
		pr.order = binary.BigEndian
	default:
		return pr.errorf("section header: bad byte-order magic %#08x", binary.BigEndian.Uint32(h[4:8]))
	}
	n := pr.order.Uint32(h[0:4])
	if err := pr.checkBlockLen(n, 28); err != nil {
		return err
	}
	body, err := pr.ngBody(int(n) - 12 - 4)
	if err != nil {
		return err
	}
	if major := pr.order.Uint16(body[0:2]); major != 1 {
		return pr.errorf("section header: unsupported version %d.%d", major, pr.order.Uint16(body[2:4]))
	}
	pr.ifaces, pr.ng.times = nil, nil
	return pr.ngEndBlock(n)
}

// ngBlockHeader reads the type and length of the next block. At the end
// of the file it returns io.EOF.
func (pr *Reader) ngBlockHeader() (typ, n uint32, err error) {
	h := pr.hdr[:8]
	if _, err := io.ReadFull(pr.r, h); err != nil {
		if err == io.EOF {
			return 0, 0, io.EOF
		}
		return 0, 0, pr.errorf("read block header: %w", err)
	}
	typ = pr.order.Uint32(h[0:4])
	if typ == blockSHB {
		// Its length is in the byte order its magic, next, says.
		copy(pr.ng.shbLen[:], h[4:8])
		return typ, 0, nil
	}
	n = pr.order.Uint32(h[4:8])
	return typ, n, pr.checkBlockLen(n, 12)
}

// checkBlockLen checks a block's total length: a multiple of 4, at least
// least bytes, at most maxBlockLen.
func (pr *Reader) checkBlockLen(n, least uint32) error {
	if n%4 != 0 || n < least || n > maxBlockLen {
		return pr.errorf("block length %d is not a multiple of 4 from %d to %d: corrupt file", n, least, maxBlockLen)
	}
	return nil
}

// ngBody reads n bytes of a block into a buffer the Reader reuses, grown
// only as the bytes arrive, so that a block length claiming more than the
// file holds allocates no more than the file.
func (pr *Reader) ngBody(n int) ([]byte, error) {
	b := pr.ng.body[:0]
	for len(b) < n {
		chunk := min(n-len(b), 64<<10)
		if cap(b)-len(b) < chunk {
			b = append(b, make([]byte, chunk)...)[:len(b)]
		}
		m, err := io.ReadFull(pr.r, b[len(b):len(b)+chunk])
		b = b[:len(b)+m]
		if err != nil {
			pr.ng.body = b
			return nil, pr.errorf("read %d bytes of block: %w", n, unexpected(err))
		}
	}
	pr.ng.body = b
	return b, nil
}

// ngEndBlock reads a block's trailing copy of its length, n, and counts
// the block.
func (pr *Reader) ngEndBlock(n uint32) error {
	t := pr.hdr[:4]
	if _, err := io.ReadFull(pr.r, t); err != nil {
		return pr.errorf("read block trailer: %w", unexpected(err))
	}
	if m := pr.order.Uint32(t); m != n {
		return pr.errorf("block length %d at the end, %d at the start: corrupt file", m, n)
	}
	pr.ng.blocks++
	pr.off += int64(n)
	return nil
}

// ngBlock reads a block that is not a packet: an interface description,
// a new section, or another block, which it skips.
func (pr *Reader) ngBlock(typ, n uint32) error {
	switch typ {
	case blockSHB:
		return pr.ngSection(true)
	case blockIDB:
		return pr.ngInterface(n)
	}
	if err := pr.discard(int64(n) - 12); err != nil {
		return pr.errorf("skip block of type %#x: %w", typ, err)
	}
	return pr.ngEndBlock(n)
}

// ngInterface reads an Interface Description Block of length n.
func (pr *Reader) ngInterface(n uint32) error {
	if n < 20 {
		return pr.errorf("interface description of %d bytes, less than 20: corrupt file", n)
	}
	body, err := pr.ngBody(int(n) - 12)
	if err != nil {
		return err
	}
	iface := Interface{
		LinkType: linkTypeFromPcap(pr.order.Uint16(body[0:2])),
		Snaplen:  int(min(pr.order.Uint32(body[4:8]), math.MaxInt32)),
	}
	tm := ngTime{unitsPerSec: 1e6}
	err = pr.ngOptions(body[8:], func(code uint16, v []byte) error {
		switch code {
		case optIfName:
			iface.Name = string(v)
		case optIfDesc:
			iface.Description = string(v)
		case optIfTSResol:
			if len(v) != 1 {
				return pr.errorf("if_tsresol of %d bytes, not 1", len(v))
			}
			ups, ok := unitsPerSecond(v[0])
			if !ok {
				return pr.errorf("if_tsresol %#02x: a resolution finer than the reader takes (10^-19 s, 2^-63 s)", v[0])
			}
			tm.unitsPerSec = ups
		case optIfTSOffset:
			if len(v) != 8 {
				return pr.errorf("if_tsoffset of %d bytes, not 8", len(v))
			}
			tm.offset = int64(pr.order.Uint64(v))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !pr.ng.haveFirst {
		pr.ng.firstLink, pr.ng.haveFirst = iface.LinkType, true
	}
	pr.ifaces = append(pr.ifaces, iface)
	pr.ng.times = append(pr.ng.times, tm)
	return pr.ngEndBlock(n)
}

// unitsPerSecond returns the time stamp units per second of an if_tsresol
// value: 10^v, or 2^(v&0x7f) when the top bit is set.
func unitsPerSecond(v uint8) (uint64, bool) {
	if v&0x80 != 0 {
		if v&0x7f > 63 {
			return 0, false
		}
		return 1 << (v & 0x7f), true
	}
	if v > 19 {
		return 0, false
	}
	ups := uint64(1)
	for range v {
		ups *= 10
	}
	return ups, true
}

// ngOptions walks the options in b, calling f with each one's code and
// value, up to opt_endofopt or the end of b.
func (pr *Reader) ngOptions(b []byte, f func(code uint16, v []byte) error) error {
	for len(b) >= 4 {
		code, n := pr.order.Uint16(b[0:2]), int(pr.order.Uint16(b[2:4]))
		if code == optEndOfOpt {
			return nil
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(b) {
			return pr.errorf("option %d of %d bytes runs past its block", code, n)
		}
		if err := f(code, b[4:4+n]); err != nil {
			return err
		}
		b = b[4+padded:]
	}
	return nil
}

// ngReadPacket reads blocks up to the next packet, and the packet.
func (pr *Reader) ngReadPacket(buf []byte, info *packet.Info) ([]byte, error) {
	if pr.pending != nil {
		return buf[:0], pr.pending
	}
	for {
		typ, n := pr.ng.typ, pr.ng.len
		if pr.ng.have {
			pr.ng.have = false
		} else {
			var err error
			if typ, n, err = pr.ngBlockHeader(); err != nil {
				return buf[:0], err
			}
		}
		switch typ {
		case blockEPB, blockPB:
			return pr.ngEnhanced(typ, n, buf, info)
		case blockSPB:
			return pr.ngSimple(n, buf, info)
		}
		if err := pr.ngBlock(typ, n); err != nil {
			return buf[:0], err
		}
	}
}

// ngEnhanced reads an Enhanced Packet Block, or an obsolete Packet Block,
// of length n.
func (pr *Reader) ngEnhanced(typ, n uint32, buf []byte, info *packet.Info) ([]byte, error) {
	h := pr.hdr[:20]
	if n < 12+20 {
		return buf[:0], pr.errorf("packet block of %d bytes, less than 32: corrupt file", n)
	}
	if _, err := io.ReadFull(pr.r, h); err != nil {
		return buf[:0], pr.errorf("read packet block: %w", unexpected(err))
	}
	id := int(pr.order.Uint32(h[0:4]))
	if typ == blockPB {
		id = int(pr.order.Uint16(h[0:2])) // then a 16-bit drops count
	}
	capLen := int64(pr.order.Uint32(h[12:16]))
	wireLen := int64(pr.order.Uint32(h[16:20]))
	room := int64(n) - 12 - 20
	if capLen > room {
		return buf[:0], pr.errorf("captured length %d exceeds the %d bytes of its block: corrupt file", capLen, room)
	}
	if err := pr.ngPacketTime(id, h[4:12], info); err != nil {
		return buf[:0], err
	}
	buf, skip, err := pr.readData(buf, capLen, pr.ifaces[id].Snaplen)
	if err != nil {
		return buf[:0], err
	}
	opts, err := pr.ngBody(int(room - capLen))
	if err != nil {
		return buf[:0], err
	}
	if pad := int((capLen+3)&^3 - capLen); pad <= len(opts) {
		opts = opts[pad:]
	} else {
		opts = nil
	}
	if typ == blockEPB {
		err = pr.ngOptions(opts, func(code uint16, v []byte) error {
			if code == optEPBFlags && len(v) == 4 {
				info.Direction = directionFromFlags(pr.order.Uint32(v))
			}
			return nil
		})
		if err != nil {
			return buf[:0], err
		}
	}
	info.Length = int(max(wireLen, int64(len(buf)+skip)))
	pr.cur = id
	pr.n++
	return buf, pr.ngEndBlock(n)
}

// ngSimple reads a Simple Packet Block of length n: a packet of the
// section's first interface, with no time stamp, cut to the block or the
// interface's snap length.
func (pr *Reader) ngSimple(n uint32, buf []byte, info *packet.Info) ([]byte, error) {
	h := pr.hdr[:4]
	if n < 16 {
		return buf[:0], pr.errorf("simple packet block of %d bytes, less than 16: corrupt file", n)
	}
	if len(pr.ifaces) == 0 {
		return buf[:0], pr.errorf("simple packet block before any interface description: corrupt file")
	}
	if _, err := io.ReadFull(pr.r, h); err != nil {
		return buf[:0], pr.errorf("read simple packet block: %w", unexpected(err))
	}
	wireLen := int64(pr.order.Uint32(h))
	room := int64(n) - 16
	capLen := min(wireLen, room)
	buf, skip, err := pr.readData(buf, capLen, pr.ifaces[0].Snaplen)
	if err != nil {
		return buf[:0], err
	}
	if err := pr.discard(room - capLen); err != nil {
		return buf[:0], pr.errorf("read simple packet block: %w", err)
	}
	info.Length = int(max(wireLen, int64(len(buf)+skip)))
	pr.cur = 0
	pr.n++
	return buf, pr.ngEndBlock(n)
}

// ngPacketTime sets info.Time from a packet block's 64-bit time stamp ts
// (high word first) in the units of interface id.
func (pr *Reader) ngPacketTime(id int, ts []byte, info *packet.Info) error {
	if id >= len(pr.ifaces) {
		return pr.errorf("packet of interface %d, of which the section has no description (%d interfaces): corrupt file", id, len(pr.ifaces))
	}
	tm := pr.ng.times[id]
	units := uint64(pr.order.Uint32(ts[0:4]))<<32 | uint64(pr.order.Uint32(ts[4:8]))
	sec, frac := units/tm.unitsPerSec, units%tm.unitsPerSec
	hi, lo := bits.Mul64(frac, 1e9)
	ns, _ := bits.Div64(hi, lo, tm.unitsPerSec) // frac < unitsPerSec: no overflow
	// Far past any time stamp, and far from where time.Unix overflows.
	const maxSec = math.MaxInt64 / 2
	if sec > maxSec || tm.offset > maxSec-int64(sec) {
		return pr.errorf("time stamp %d at %d units a second, plus %d s, is out of range", units, tm.unitsPerSec, tm.offset)
	}
	info.Time = time.Unix(int64(sec)+tm.offset, int64(ns))
	return nil
}

// directionFromFlags returns the Direction an epb_flags word says: its
// bits 0-1, inbound (1) or outbound (2), and for inbound packets its
// reception type, bits 2-4: unicast, multicast, broadcast, promiscuous. An
// inbound packet of no stated reception type is DirectionHost.
func directionFromFlags(f uint32) packet.Direction {
	switch f & 3 {
	case 1:
		switch f >> 2 & 7 {
		case 2:
			return packet.DirectionMulticast
		case 3:
			return packet.DirectionBroadcast
		case 4:
			return packet.DirectionOtherHost
		}
		return packet.DirectionHost
	case 2:
		return packet.DirectionOutgoing
	}
	return packet.DirectionUnknown
}

// flagsFromDirection returns the epb_flags word for d, and false for
// DirectionUnknown, which has none.
func flagsFromDirection(d packet.Direction) (uint32, bool) {
	switch d {
	case packet.DirectionHost:
		return 1 | 1<<2, true
	case packet.DirectionMulticast:
		return 1 | 2<<2, true
	case packet.DirectionBroadcast:
		return 1 | 3<<2, true
	case packet.DirectionOtherHost:
		return 1 | 4<<2, true
	case packet.DirectionOutgoing:
		return 2, true
	}
	return 0, false
}

// errNoInterfaces is returned by NewNgWriter when given none.
var errNoInterfaces = errors.New("pcapng writer: no interface to write packets of: give at least one")
