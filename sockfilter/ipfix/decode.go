package ipfix

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// ErrMalformed is matched (errors.Is) by the Decoder's errors for messages
// that break RFC 7011's rules.
var ErrMalformed = errors.New("malformed IPFIX message")

// Message is one decoded IPFIX message.
type Message struct {
	// ExportTime, Sequence and ObservationDomain are the header's fields
	// (RFC 7011 §3.1).
	ExportTime        time.Time
	Sequence          uint32
	ObservationDomain uint32
	// Templates are the template and options template records of the
	// message, withdrawals (no fields) included.
	Templates []Template
	// Flows are its data records of (non-options) templates, decoded as
	// flow records: the elements the package names fill their fields (see
	// Decoder), the others are skipped.
	Flows []flow.Flow
	// Records counts its data records: those in Flows and those of
	// options templates.
	Records int
	// UnknownSets counts its data sets whose template the Decoder has not
	// seen, which it skipped: a collector that joins a UDP export late
	// misses records until the templates come again.
	UnknownSets int
}

// Decoder decodes IPFIX messages, keeping the templates they define for
// the data sets that follow, per observation domain. Give it the messages
// of one transport session — one file, one TCP connection, or the
// datagrams from one exporter's address — in order.
//
// A data record becomes a flow.Flow by its elements: the addresses,
// ports and protocolIdentifier make the Key, with EtherType 0x0800 or
// 0x86dd from the address family (or ethernetType), and ICMP's type and
// code from icmpTypeCodeIPv4/IPv6 in DstPort; ingressInterface (or, when 0,
// egressInterface) gives Ifindex; flowDirection 0 gives
// packet.DirectionHost and 1 packet.DirectionOutgoing (IPFIX does not tell
// host from broadcast, multicast or other-host packets); the counts,
// times, tcpControlBits and flowEndReason fill the rest. Unsigned elements
// may come in fewer octets than their type's (reduced-size encoding, RFC
// 7011 §6.2).
type Decoder struct {
	templates map[templateKey]*Template
}

type templateKey struct {
	domain uint32
	id     uint16
}

// NewDecoder returns a Decoder that knows no templates yet.
func NewDecoder() *Decoder {
	return &Decoder{templates: make(map[templateKey]*Template)}
}

// Decode decodes the message at the start of b into m, reusing m's slices,
// and returns the message's length: b may hold more messages after it, as
// a file does. It returns an error matching ErrMalformed for a message
// that breaks RFC 7011's rules; the templates of the sets before the bad
// one are kept.
func (d *Decoder) Decode(b []byte, m *Message) (int, error) {
	*m = Message{Templates: m.Templates[:0], Flows: m.Flows[:0]}
	if len(b) < messageHeaderLen {
		return 0, fmt.Errorf("ipfix: %d octets, less than a message header: %w", len(b), ErrMalformed)
	}
	if v := binary.BigEndian.Uint16(b[0:2]); v != version {
		return 0, fmt.Errorf("ipfix: version %d, want 10: %w", v, ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < messageHeaderLen || n > len(b) {
		return 0, fmt.Errorf("ipfix: message length %d, with %d octets at hand: %w", n, len(b), ErrMalformed)
	}
	m.ExportTime = time.Unix(int64(binary.BigEndian.Uint32(b[4:8])), 0).UTC()
	m.Sequence = binary.BigEndian.Uint32(b[8:12])
	m.ObservationDomain = binary.BigEndian.Uint32(b[12:16])
	for off := messageHeaderLen; off < n; {
		if n-off < setHeaderLen {
			return n, fmt.Errorf("ipfix: %d octets after the last set at offset %d: %w", n-off, off, ErrMalformed)
		}
		id := binary.BigEndian.Uint16(b[off:])
		l := int(binary.BigEndian.Uint16(b[off+2:]))
		if l < setHeaderLen || off+l > n {
			return n, fmt.Errorf("ipfix: set %d at offset %d: length %d runs out of the message of %d octets: %w", id, off, l, n, ErrMalformed)
		}
		body := b[off+setHeaderLen : off+l]
		var err error
		switch {
		case id == templateSetID || id == optionsSetID:
			err = d.templateSet(body, id == optionsSetID, m)
		case id >= minDataSetID:
			err = d.dataSet(body, id, m)
		default:
			err = fmt.Errorf("reserved set ID: %w", ErrMalformed)
		}
		if err != nil {
			return n, fmt.Errorf("ipfix: set %d at offset %d: %w", id, off, err)
		}
		off += l
	}
	return n, nil
}

// templateSet decodes the records of a template or options template set.
func (d *Decoder) templateSet(b []byte, options bool, m *Message) error {
	// What is left after the last record is padding, shorter than a
	// record header.
	for len(b) >= 4 {
		t := Template{ID: binary.BigEndian.Uint16(b[0:2])}
		count := int(binary.BigEndian.Uint16(b[2:4]))
		b = b[4:]
		if options && count > 0 {
			if len(b) < 2 {
				return fmt.Errorf("options template %d: scope field count runs out of the set: %w", t.ID, ErrMalformed)
			}
			t.Scope = int(binary.BigEndian.Uint16(b[0:2]))
			b = b[2:]
			if t.Scope == 0 || t.Scope > count {
				return fmt.Errorf("options template %d: scope field count %d of %d fields: %w", t.ID, t.Scope, count, ErrMalformed)
			}
		}
		var err error
		if t.Fields, b, err = fieldSpecs(b, count); err != nil {
			return fmt.Errorf("template %d: %w", t.ID, err)
		}
		if err := d.define(t, options, m.ObservationDomain); err != nil {
			return err
		}
		m.Templates = append(m.Templates, t)
	}
	return nil
}

// fieldSpecs decodes count field specifiers from the start of b.
func fieldSpecs(b []byte, count int) ([]FieldSpec, []byte, error) {
	if count == 0 {
		return nil, b, nil
	}
	if len(b) < 4*count {
		return nil, b, fmt.Errorf("%d field specifiers run out of the set: %w", count, ErrMalformed)
	}
	fields := make([]FieldSpec, 0, count)
	for range count {
		if len(b) < 4 {
			return nil, b, fmt.Errorf("field specifiers run out of the set: %w", ErrMalformed)
		}
		f := FieldSpec{Element: Element(binary.BigEndian.Uint16(b[0:2]) & 0x7fff), Length: binary.BigEndian.Uint16(b[2:4])}
		enterprise := b[0]&0x80 != 0
		b = b[4:]
		if enterprise {
			if len(b) < 4 {
				return nil, b, fmt.Errorf("enterprise number runs out of the set: %w", ErrMalformed)
			}
			f.Enterprise = binary.BigEndian.Uint32(b[0:4])
			b = b[4:]
		}
		fields = append(fields, f)
	}
	return fields, b, nil
}

// define remembers t, or withdraws templates for a record with no fields
// (RFC 7011 §8.1: the set's own ID as Template ID withdraws all the
// templates, or options templates, of the domain).
func (d *Decoder) define(t Template, options bool, domain uint32) error {
	if len(t.Fields) == 0 {
		if t.ID == templateSetID || t.ID == optionsSetID {
			for k, old := range d.templates {
				if k.domain == domain && (old.Scope > 0) == options {
					delete(d.templates, k)
				}
			}
			return nil
		}
		if t.ID < minDataSetID {
			return fmt.Errorf("withdrawal of template %d: %w", t.ID, ErrMalformed)
		}
		delete(d.templates, templateKey{domain, t.ID})
		return nil
	}
	if t.ID < minDataSetID {
		return fmt.Errorf("template ID %d below 256: %w", t.ID, ErrMalformed)
	}
	if t.recordLen() == 0 {
		return fmt.Errorf("template %d: records of no octets: %w", t.ID, ErrMalformed)
	}
	d.templates[templateKey{domain, t.ID}] = &t
	return nil
}

// dataSet decodes the records of a data set.
func (d *Decoder) dataSet(b []byte, id uint16, m *Message) error {
	t := d.templates[templateKey{m.ObservationDomain, id}]
	if t == nil {
		m.UnknownSets++
		return nil
	}
	shortest := t.recordLen()
	for len(b) >= shortest {
		var f flow.Flow
		var fields fieldsSeen
		for _, fs := range t.Fields {
			l := int(fs.Length)
			if fs.Length == VarLen {
				var err error
				if l, b, err = varLen(b); err != nil {
					return fmt.Errorf("template %d: %w", id, err)
				}
			}
			if len(b) < l {
				return fmt.Errorf("template %d: record runs out of the set: %w", id, ErrMalformed)
			}
			if fs.Enterprise == 0 {
				setField(&f, &fields, fs.Element, b[:l])
			}
			b = b[l:]
		}
		m.Records++
		if t.Scope == 0 {
			fields.finish(&f)
			m.Flows = append(m.Flows, f)
		}
	}
	// The rest is padding (RFC 7011 §3.3.1).
	return nil
}

// varLen reads the length of a variable-length field (RFC 7011 §7): one
// octet, or 255 and two more.
func varLen(b []byte) (int, []byte, error) {
	if len(b) < 1 {
		return 0, b, fmt.Errorf("variable-length field runs out of the set: %w", ErrMalformed)
	}
	if b[0] < 255 {
		return int(b[0]), b[1:], nil
	}
	if len(b) < 3 {
		return 0, b, fmt.Errorf("variable-length field runs out of the set: %w", ErrMalformed)
	}
	return int(binary.BigEndian.Uint16(b[1:3])), b[3:], nil
}

// fieldsSeen is what a record said that Flow has no field for.
type fieldsSeen struct {
	v4, v6        bool   // it had IPv4 or IPv6 addresses
	icmp          bool   // it had an icmpTypeCode element
	icmpTypeCode  uint16 // its value
	ingress       uint64 // ingressInterface
	egress        uint64 // egressInterface
	direction     uint64 // flowDirection, when haveDirection
	haveDirection bool
}

// setField stores one field's value v in f.
func setField(f *flow.Flow, s *fieldsSeen, el Element, v []byte) {
	k := &f.Key
	switch el {
	case SourceIPv4Address, DestinationIPv4Address, SourceIPv6Address, DestinationIPv6Address:
		a, ok := netip.AddrFromSlice(v)
		if !ok {
			return
		}
		switch el {
		case SourceIPv4Address, SourceIPv6Address:
			k.Src = a
		default:
			k.Dst = a
		}
		s.v4 = s.v4 || a.Is4()
		s.v6 = s.v6 || a.Is6()
		return
	}
	if len(v) > 8 {
		return // not an unsigned integer
	}
	var u uint64
	for _, c := range v {
		u = u<<8 | uint64(c)
	}
	switch el {
	case SourceTransportPort:
		k.SrcPort = uint16(u)
	case DestinationTransportPort:
		k.DstPort = uint16(u)
	case ICMPTypeCodeIPv4, ICMPTypeCodeIPv6:
		s.icmp, s.icmpTypeCode = true, uint16(u)
	case ProtocolIdentifier:
		k.IPProto = uint8(u)
	case TCPControlBits:
		f.TCPFlags = packet.TCPFlags(u)
	case VLANID:
		k.VLAN = uint16(u) & 0x0fff
	case IngressInterface:
		s.ingress = u
	case EgressInterface:
		s.egress = u
	case FlowDirection:
		s.direction, s.haveDirection = u, true
	case OctetDeltaCount:
		f.Bytes = u
	case PacketDeltaCount:
		f.Packets = u
	case FlowStartMilliseconds:
		f.Start = fromMillis(u)
	case FlowEndMilliseconds:
		f.End = fromMillis(u)
	case FlowEndReason:
		f.EndReason = flow.EndReason(u)
	case EthernetType:
		k.EtherType = uint16(u)
	}
}

// fromMillis returns dateTimeMilliseconds v as a time, in UTC.
func fromMillis(v uint64) time.Time {
	if v > 1<<62 {
		v = 1 << 62
	}
	return time.UnixMilli(int64(v)).UTC()
}

// finish fills the fields of f's Key that depend on more than one element.
func (s *fieldsSeen) finish(f *flow.Flow) {
	k := &f.Key
	switch {
	case s.v6:
		k.EtherType = wire.EtherTypeIPv6
	case s.v4:
		k.EtherType = wire.EtherTypeIPv4
	}
	if s.icmp && k.IsICMP() {
		k.SrcPort, k.DstPort = 0, s.icmpTypeCode
	}
	if i := s.ingress; i != 0 || s.egress == 0 {
		k.Ifindex = int(min(i, 1<<31-1))
	} else {
		k.Ifindex = int(min(s.egress, 1<<31-1))
	}
	switch {
	case !s.haveDirection:
	case s.direction == 1:
		k.Direction = packet.DirectionOutgoing
	default:
		k.Direction = packet.DirectionHost
	}
}
