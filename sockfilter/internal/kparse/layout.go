package kparse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// Version is the version of the record layout, its first byte. A decoder
// refuses records of another version.
const Version = 1

// RecordSize is the size in bytes of a record: a multiple of 8, so that a
// ring buffer's records stay 8-byte aligned with no padding.
const RecordSize = 104

// The record's fields, by byte offset. Numbers the kernel computes or
// copies from a header are in host byte order; addresses are bytes, in
// network order, as in the headers. Every field the parser did not reach
// is zero.
//
//	off size field
//	  0  u8  version (Version)
//	  1  u8  flags (Flag*)
//	  2  u8  status (packet.Status)
//	  3  u8  error layer (packet.Layer)
//	  4  u8  pkt_type (PACKET_HOST 0 ... PACKET_OUTGOING 4)
//	  5  u8  VLAN tags in the frame
//	  6  u8  IP version (4, 6 or 0)
//	  7  u8  IP protocol of the payload
//	  8  u64 time, ns on the program's clock (see Clock)
//	 16  u32 ifindex
//	 20  u32 length of the frame from its link-layer header
//	 24  u16 EtherType after the VLAN tags
//	 26  u16 VLAN ID of the outer tag in the frame
//	 28  u16 VLAN ID of the second tag in the frame
//	 30  u16 TCI of the tag the device removed (skb->vlan_tci)
//	 32  u16 TPID of that tag (skb->vlan_proto)
//	 34  u8  TTL or hop limit
//	 35  u8  ICMP or ICMPv6 type
//	 36  u8  ICMP or ICMPv6 code
//	 37  u8  zero
//	 38  u16 ARP operation
//	 40  16  source address (IPv4: the first 4 bytes)
//	 56  16  destination address
//	 72  u16 source port
//	 74  u16 destination port
//	 76  u16 fragment offset in bytes
//	 78  u16 TCP window
//	 80  u32 fragment identification
//	 84  u32 IP payload length
//	 88  u32 transport payload length
//	 92  u16 TCP flags (packet.TCPFlags)
//	 94  u16 zero
//	 96  u32 TCP sequence number
//	100  u32 TCP acknowledgment number
const (
	OffVersion   = 0
	OffFlags     = 1
	OffStatus    = 2 // and the error layer after it, stored together as a u16
	OffErrLayer  = 3
	OffPktType   = 4
	OffVLANs     = 5
	OffIPVersion = 6
	OffIPProto   = 7
	OffTime      = 8
	OffIfindex   = 16
	OffLength    = 20
	OffEtherType = 24
	OffVLAN      = 26
	OffInnerVLAN = 28
	OffVLANTCI   = 30
	OffVLANTPID  = 32
	OffTTL       = 34
	OffICMPType  = 35
	OffICMPCode  = 36
	OffARPOp     = 38
	OffSrc       = 40
	OffDst       = 56
	OffSrcPort   = 72
	OffDstPort   = 74
	OffFragOff   = 76
	OffWindow    = 78
	OffFragID    = 80
	OffIPPayload = 84
	OffPayload   = 88
	OffTCPFlags  = 92
	OffSeq       = 96
	OffAck       = 100
)

// The bits of the flags byte.
const (
	FlagFragment  = 1 << 0 // the packet is an IP fragment
	FlagMoreFrags = 1 << 1 // More Fragments (IPv4 MF, IPv6 M)
	FlagDontFrag  = 1 << 2 // IPv4 Don't Fragment
	FlagTransport = 1 << 3 // the TCP, UDP, ICMP or ICMPv6 header was decoded
	FlagAddrs     = 1 << 4 // the address fields hold addresses
	FlagVLANStrip = 1 << 5 // the device removed a VLAN tag: the TCI and TPID fields hold it
	knownFlags    = FlagFragment | FlagMoreFrags | FlagDontFrag | FlagTransport | FlagAddrs | FlagVLANStrip
)

// ErrRecord is wrapped by the error of a record that is not one the
// program writes: of another size or version, or with impossible fields.
var ErrRecord = errors.New("malformed kernel record")

// Clock converts the program's time stamps to wall-clock time by adding a
// fixed offset: the wall-clock time at which the program's clock read
// zero.
type Clock struct {
	// Offset is added to a stamp, in ns.
	Offset int64
}

// Time returns the wall-clock time of stamp ns.
func (c Clock) Time(ns uint64) time.Time { return time.Unix(0, int64(ns)+c.Offset) }

// Decode decodes a record the program wrote into r and info, as
// packet.Parse would decode the frame it describes with the packet.Info a
// live socket gives: the same fields, Status and ErrLayer, and the tag
// the device removed counted as the outer VLAN tag. info may be nil. It
// does not allocate.
func Decode(b []byte, clk Clock, r *packet.Record, info *packet.Info) error {
	if len(b) < RecordSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrRecord, len(b), RecordSize)
	}
	b = b[:RecordSize]
	if b[OffVersion] != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrRecord, b[OffVersion], Version)
	}
	flags := b[OffFlags]
	if flags&^knownFlags != 0 || packet.Status(b[OffStatus]) > packet.StatusMalformed || packet.Layer(b[OffErrLayer]) > packet.LayerARP {
		return fmt.Errorf("%w: flags %#x, status %d, layer %d", ErrRecord, flags, b[OffStatus], b[OffErrLayer])
	}
	ne := binary.NativeEndian
	length := int(ne.Uint32(b[OffLength:]))
	// Field by field rather than a composite literal: copying a Record
	// literal, which holds pointers, costs twice as much.
	r.Time = clk.Time(ne.Uint64(b[OffTime:]))
	r.Ifindex = int(int32(ne.Uint32(b[OffIfindex:])))
	r.Direction = direction(b[OffPktType])
	r.Status = packet.Status(b[OffStatus])
	r.ErrLayer = packet.Layer(b[OffErrLayer])
	r.EtherType = ne.Uint16(b[OffEtherType:])
	r.IPVersion = b[OffIPVersion]
	r.IPProto = b[OffIPProto]
	r.TTL = b[OffTTL]
	r.PortsOnly = false
	r.VLANs = b[OffVLANs]
	r.VLAN = ne.Uint16(b[OffVLAN:])
	r.InnerVLAN = ne.Uint16(b[OffInnerVLAN:])
	r.Fragment = flags&FlagFragment != 0
	r.MoreFragments = flags&FlagMoreFrags != 0
	r.DontFragment = flags&FlagDontFrag != 0
	r.FragOffset = ne.Uint16(b[OffFragOff:])
	r.FragID = ne.Uint32(b[OffFragID:])
	r.Transport = flags&FlagTransport != 0
	r.Length = length
	r.CapLen = length
	r.IPPayloadLen = int(ne.Uint32(b[OffIPPayload:]))
	r.PayloadLen = int(ne.Uint32(b[OffPayload:]))
	r.TCPFlags = packet.TCPFlags(ne.Uint16(b[OffTCPFlags:]))
	r.Seq = ne.Uint32(b[OffSeq:])
	r.Ack = ne.Uint32(b[OffAck:])
	r.Window = ne.Uint16(b[OffWindow:])
	r.ICMPType = b[OffICMPType]
	r.ICMPCode = b[OffICMPCode]
	r.ARPOp = ne.Uint16(b[OffARPOp:])
	r.Proto = proto(r)
	r.Src, r.Dst = netip.AddrPort{}, netip.AddrPort{}
	if flags&FlagAddrs != 0 {
		var sport, dport uint16
		if r.HasPorts() {
			sport, dport = ne.Uint16(b[OffSrcPort:]), ne.Uint16(b[OffDstPort:])
		}
		if r.IPVersion == 6 {
			r.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[OffSrc:OffSrc+16])), sport)
			r.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[OffDst:OffDst+16])), dport)
		} else {
			r.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[OffSrc:OffSrc+4])), sport)
			r.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[OffDst:OffDst+4])), dport)
		}
	}
	strip := flags&FlagVLANStrip != 0
	var tci, tpid uint16
	if strip {
		tci, tpid = ne.Uint16(b[OffVLANTCI:]), ne.Uint16(b[OffVLANTPID:])
		// As packet.Parse counts a tag the device removed.
		r.InnerVLAN = r.VLAN
		r.VLAN = tci & 0x0fff
		if r.VLANs < 255 {
			r.VLANs++
		}
	}
	if info != nil {
		info.Time = r.Time
		info.Ifindex = r.Ifindex
		info.Direction = r.Direction
		info.Length = length
		info.VLANTCI, info.VLANTPID, info.HasVLAN = tci, tpid, strip
	}
	return nil
}

// direction converts a pkt_type to a Direction, as a packet socket's
// sll_pkttype is.
func direction(pkttype uint8) packet.Direction {
	if pkttype > 4 { // PACKET_OUTGOING
		return packet.DirectionUnknown
	}
	return packet.Direction(pkttype + 1)
}

// proto names the traffic as packet.Parse does, from what the record
// says: Parse names it once it has the EtherType, and for IP once the IP
// header's checks have passed (IPVersion is then set).
func proto(r *packet.Record) packet.Proto {
	switch r.ErrLayer {
	case packet.LayerFrame, packet.LayerEthernet, packet.LayerSLL, packet.LayerSLL2, packet.LayerVLAN, packet.LayerIP:
		return packet.ProtoUnknown // Parse stopped before the EtherType
	}
	switch r.EtherType {
	case wire.EtherTypeIPv4, wire.EtherTypeIPv6:
		if r.IPVersion == 0 {
			return packet.ProtoUnknown
		}
		switch r.IPProto {
		case wire.IPProtoTCP:
			return packet.ProtoTCP
		case wire.IPProtoUDP:
			return packet.ProtoUDP
		case wire.IPProtoICMP:
			return packet.ProtoICMP
		case wire.IPProtoICMPv6:
			return packet.ProtoICMPv6
		}
		if r.IPVersion == 4 {
			return packet.ProtoIPv4
		}
		return packet.ProtoIPv6
	case wire.EtherTypeARP:
		return packet.ProtoARP
	}
	return packet.ProtoOther
}
