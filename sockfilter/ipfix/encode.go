package ipfix

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The lengths of RFC 7011's headers.
const (
	messageHeaderLen = 16 // §3.1
	setHeaderLen     = 4  // §3.3.2
	version          = 10
	templateSetID    = 2
	optionsSetID     = 3
	minDataSetID     = 256
)

// templateFor returns the index in templates of the template for f's
// records, or an error saying why f cannot be sent.
func templateFor(f *flow.Flow) (int, error) {
	k := &f.Key
	if k.Ifindex < 0 || uint64(k.Ifindex) > math.MaxUint32 {
		return 0, fmt.Errorf("ipfix: flow %v: interface index %d out of the range of ingressInterface (0 to 2^32-1)", k, k.Ifindex)
	}
	if err := checkTime(f.Start); err != nil {
		return 0, fmt.Errorf("ipfix: flow %v: start: %w", k, err)
	}
	if err := checkTime(f.End); err != nil {
		return 0, fmt.Errorf("ipfix: flow %v: end: %w", k, err)
	}
	switch k.EtherType {
	case wire.EtherTypeIPv4:
		if !is4(k.Src) || !is4(k.Dst) {
			return 0, fmt.Errorf("ipfix: flow %v: EtherType 0x0800 (IPv4) with an IPv6 address", k)
		}
		return 0, nil
	case wire.EtherTypeIPv6:
		if !is6(k.Src) || !is6(k.Dst) {
			return 0, fmt.Errorf("ipfix: flow %v: EtherType 0x86dd (IPv6) with an IPv4 address", k)
		}
		return 1, nil
	}
	return 2, nil
}

// is4 and is6 report whether a can be sent as an IPv4 (IPv6) address: it
// is one, or it is the zero Addr, sent as 0.0.0.0 (::).
func is4(a netip.Addr) bool { return !a.IsValid() || a.Unmap().Is4() }

func is6(a netip.Addr) bool { return !a.IsValid() || a.Is6() && !a.Is4In6() }

// checkTime reports an error for a time dateTimeMilliseconds cannot hold
// (RFC 7011 §6.1.9: milliseconds since 1970 as unsigned64). The zero Time
// is sent as 0.
func checkTime(t time.Time) error {
	if !t.IsZero() && t.UnixMilli() < 0 {
		return fmt.Errorf("time %v is before 1970", t)
	}
	return nil
}

// millis returns t as dateTimeMilliseconds.
func millis(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixMilli())
}

// appendRecord appends f's data record in template t's layout.
func appendRecord(b []byte, t *Template, f *flow.Flow) []byte {
	for _, fs := range t.Fields {
		b = appendField(b, fs, f)
	}
	return b
}

// appendField appends the value of one field of f's record.
func appendField(b []byte, fs FieldSpec, f *flow.Flow) []byte {
	k := &f.Key
	egress := k.Direction == packet.DirectionOutgoing
	var v uint64
	switch fs.Element {
	case SourceIPv4Address:
		return appendAddr4(b, k.Src)
	case DestinationIPv4Address:
		return appendAddr4(b, k.Dst)
	case SourceIPv6Address:
		return appendAddr16(b, k.Src)
	case DestinationIPv6Address:
		return appendAddr16(b, k.Dst)
	case SourceTransportPort:
		if !k.IsICMP() {
			v = uint64(k.SrcPort)
		}
	case DestinationTransportPort:
		if !k.IsICMP() {
			v = uint64(k.DstPort)
		}
	case ICMPTypeCodeIPv4, ICMPTypeCodeIPv6:
		if k.IsICMP() {
			v = uint64(k.DstPort)
		}
	case ProtocolIdentifier:
		v = uint64(k.IPProto)
	case TCPControlBits:
		v = uint64(f.TCPFlags)
	case VLANID:
		v = uint64(k.VLAN & 0x0fff)
	case IngressInterface:
		if !egress {
			v = uint64(k.Ifindex)
		}
	case EgressInterface:
		if egress {
			v = uint64(k.Ifindex)
		}
	case FlowDirection:
		if egress {
			v = 1
		}
	case OctetDeltaCount:
		v = f.Bytes
	case PacketDeltaCount:
		v = f.Packets
	case FlowStartMilliseconds:
		v = millis(f.Start)
	case FlowEndMilliseconds:
		v = millis(f.End)
	case FlowEndReason:
		v = uint64(f.EndReason)
	case EthernetType:
		v = uint64(k.EtherType)
	}
	return appendUint(b, v, int(fs.Length))
}

// appendUint appends the n low octets of v, big-endian (RFC 7011 §6.1.1,
// and §6.2's reduced-size encoding for n < 8).
func appendUint(b []byte, v uint64, n int) []byte {
	switch n {
	case 1:
		return append(b, byte(v))
	case 2:
		return binary.BigEndian.AppendUint16(b, uint16(v))
	case 4:
		return binary.BigEndian.AppendUint32(b, uint32(v))
	case 8:
		return binary.BigEndian.AppendUint64(b, v)
	}
	for i := n - 1; i >= 0; i-- {
		if i >= 8 {
			b = append(b, 0)
			continue
		}
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func appendAddr4(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, 0, 0, 0, 0)
	}
	a4 := a.Unmap().As4()
	return append(b, a4[:]...)
}

func appendAddr16(b []byte, a netip.Addr) []byte {
	var a16 [16]byte
	if a.IsValid() {
		a16 = a.As16()
	}
	return append(b, a16[:]...)
}

// appendTemplateSet appends a template set holding ts.
func appendTemplateSet(b []byte, ts []Template) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, templateSetID)
	b = binary.BigEndian.AppendUint16(b, 0) // length, below
	for _, t := range ts {
		b = binary.BigEndian.AppendUint16(b, t.ID)
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.Fields)))
		for _, f := range t.Fields {
			id := uint16(f.Element)
			if f.Enterprise != 0 {
				id |= 0x8000
			}
			b = binary.BigEndian.AppendUint16(b, id)
			b = binary.BigEndian.AppendUint16(b, f.Length)
			if f.Enterprise != 0 {
				b = binary.BigEndian.AppendUint32(b, f.Enterprise)
			}
		}
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}
