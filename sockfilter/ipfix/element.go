package ipfix

import "strconv"

// Element is an IPFIX information element identifier from the IANA
// registry "IPFIX Information Elements" (RFC 7012 defines the model;
// the registry holds the current list). The constants are the elements the
// Exporter sends and the Decoder understands.
type Element uint16

// The information elements of the Exporter's templates, with their IANA
// numbers. The type and length each is sent with is in Templates.
const (
	OctetDeltaCount          Element = 1   // unsigned64: bytes in the record (see Exporter)
	PacketDeltaCount         Element = 2   // unsigned64: packets in the record
	ProtocolIdentifier       Element = 4   // unsigned8: the IP protocol number
	TCPControlBits           Element = 6   // unsigned16: TCP flags OR'd, RFC 7125 bit order (FIN = 0x01 ... NS = 0x100)
	SourceTransportPort      Element = 7   // unsigned16
	SourceIPv4Address        Element = 8   // ipv4Address
	IngressInterface         Element = 10  // unsigned32: ifindex of an ingress flow
	DestinationTransportPort Element = 11  // unsigned16
	DestinationIPv4Address   Element = 12  // ipv4Address
	EgressInterface          Element = 14  // unsigned32: ifindex of an egress flow
	SourceIPv6Address        Element = 27  // ipv6Address
	DestinationIPv6Address   Element = 28  // ipv6Address
	ICMPTypeCodeIPv4         Element = 32  // unsigned16: type*256 + code
	VLANID                   Element = 58  // unsigned16: the 12-bit VLAN ID
	FlowDirection            Element = 61  // unsigned8: 0 ingress, 1 egress
	FlowEndReason            Element = 136 // unsigned8: flow.EndReason
	ICMPTypeCodeIPv6         Element = 139 // unsigned16: type*256 + code
	FlowStartMilliseconds    Element = 152 // dateTimeMilliseconds: milliseconds since the Unix epoch
	FlowEndMilliseconds      Element = 153 // dateTimeMilliseconds
	EthernetType             Element = 256 // unsigned16: the EtherType of a flow that is not IP
)

var elementNames = map[Element]string{
	OctetDeltaCount:          "octetDeltaCount",
	PacketDeltaCount:         "packetDeltaCount",
	ProtocolIdentifier:       "protocolIdentifier",
	TCPControlBits:           "tcpControlBits",
	SourceTransportPort:      "sourceTransportPort",
	SourceIPv4Address:        "sourceIPv4Address",
	IngressInterface:         "ingressInterface",
	DestinationTransportPort: "destinationTransportPort",
	DestinationIPv4Address:   "destinationIPv4Address",
	EgressInterface:          "egressInterface",
	SourceIPv6Address:        "sourceIPv6Address",
	DestinationIPv6Address:   "destinationIPv6Address",
	ICMPTypeCodeIPv4:         "icmpTypeCodeIPv4",
	VLANID:                   "vlanId",
	FlowDirection:            "flowDirection",
	FlowEndReason:            "flowEndReason",
	ICMPTypeCodeIPv6:         "icmpTypeCodeIPv6",
	FlowStartMilliseconds:    "flowStartMilliseconds",
	FlowEndMilliseconds:      "flowEndMilliseconds",
	EthernetType:             "ethernetType",
}

// String returns the element's IANA name, "octetDeltaCount", or
// "element(N)" for the elements the package does not name.
func (e Element) String() string {
	if s, ok := elementNames[e]; ok {
		return s
	}
	return "element(" + strconv.Itoa(int(e)) + ")"
}

// VarLen is the field length of a variable-length element in a template
// (RFC 7011 §7): the record then gives the length before the value.
const VarLen = 0xffff

// FieldSpec is one field of a template (RFC 7011 §3.2, "Field Specifier
// Format").
type FieldSpec struct {
	// Element is the information element. With Enterprise not 0 it is an
	// enterprise-specific element of that enterprise.
	Element Element
	// Length is the field's length in octets, or VarLen.
	Length uint16
	// Enterprise is the IANA Private Enterprise Number of an
	// enterprise-specific element, 0 for the elements of the IANA
	// registry.
	Enterprise uint32
}

// Template is a template record (RFC 7011 §3.4.1) or an options template
// record (§3.4.2): the layout of the data records of a data set whose Set
// ID is the template's ID.
type Template struct {
	// ID is the Template ID, 256 to 65535.
	ID uint16
	// Scope is the number of scope fields, at the start of Fields, of an
	// options template; 0 for a template.
	Scope int
	// Fields are the fields of its records, in order.
	Fields []FieldSpec
}

// The Template IDs of the Exporter's templates.
const (
	TemplateIPv4  uint16 = 256 // flows of EtherType 0x0800
	TemplateIPv6  uint16 = 257 // flows of EtherType 0x86dd
	TemplateOther uint16 = 258 // flows that are not IP: ethernetType instead of addresses and ports
)

// The fields the templates share, after the addresses and ports.
var (
	timeFields = []FieldSpec{
		{Element: OctetDeltaCount, Length: 8},
		{Element: PacketDeltaCount, Length: 8},
		{Element: FlowStartMilliseconds, Length: 8},
		{Element: FlowEndMilliseconds, Length: 8},
		{Element: FlowEndReason, Length: 1},
	}
	linkFields = []FieldSpec{
		{Element: VLANID, Length: 2},
		{Element: IngressInterface, Length: 4},
		{Element: EgressInterface, Length: 4},
		{Element: FlowDirection, Length: 1},
	}
)

// templates are the Exporter's templates, in the order of TemplateIPv4,
// TemplateIPv6, TemplateOther.
var templates = [...]Template{
	{ID: TemplateIPv4, Fields: concat([]FieldSpec{
		{Element: SourceIPv4Address, Length: 4},
		{Element: DestinationIPv4Address, Length: 4},
		{Element: SourceTransportPort, Length: 2},
		{Element: DestinationTransportPort, Length: 2},
		{Element: ICMPTypeCodeIPv4, Length: 2},
		{Element: ProtocolIdentifier, Length: 1},
		{Element: TCPControlBits, Length: 2},
	}, linkFields, timeFields)},
	{ID: TemplateIPv6, Fields: concat([]FieldSpec{
		{Element: SourceIPv6Address, Length: 16},
		{Element: DestinationIPv6Address, Length: 16},
		{Element: SourceTransportPort, Length: 2},
		{Element: DestinationTransportPort, Length: 2},
		{Element: ICMPTypeCodeIPv6, Length: 2},
		{Element: ProtocolIdentifier, Length: 1},
		{Element: TCPControlBits, Length: 2},
	}, linkFields, timeFields)},
	{ID: TemplateOther, Fields: concat([]FieldSpec{
		{Element: EthernetType, Length: 2},
	}, linkFields, timeFields)},
}

func concat(parts ...[]FieldSpec) []FieldSpec {
	var all []FieldSpec
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// Templates returns the templates the Exporter sends, TemplateIPv4,
// TemplateIPv6 and TemplateOther, as copies the caller may change.
func Templates() []Template {
	out := make([]Template, len(templates))
	for i, t := range templates {
		out[i] = Template{ID: t.ID, Fields: append([]FieldSpec(nil), t.Fields...)}
	}
	return out
}

// recordLen returns the length of t's data records, with variable-length
// fields counted as their shortest, one octet.
func (t *Template) recordLen() int {
	n := 0
	for _, f := range t.Fields {
		if f.Length == VarLen {
			n++
		} else {
			n += int(f.Length)
		}
	}
	return n
}
