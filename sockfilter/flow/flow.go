package flow

import (
	"strconv"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// Counters is what a flow table keeps for one flow: the value of the
// kernel's flow table entry, cumulative since the entry was created.
type Counters struct {
	// Packets is the number of packets counted.
	Packets uint64
	// Bytes is the sum of their lengths on the wire (packet.Info.Length,
	// the skb's length as the socket filter sees it), link-layer header
	// included.
	Bytes uint64
	// First and Last are when the first and the latest packet were seen.
	// First identifies the table entry: an entry deleted and created
	// again has a later First.
	First, Last time.Time
	// TCPFlags is the OR of the flags of the TCP packets counted.
	TCPFlags packet.TCPFlags
}

// Add counts one packet of length bytes on the wire seen at t, with TCP
// flags flags (0 for packets that are not TCP), as the kernel's flow table
// does: Packets and Bytes grow, First is set by the first packet, Last by
// every packet, and the flags are OR'd in.
func (c *Counters) Add(length int, t time.Time, flags packet.TCPFlags) {
	if c.Packets == 0 {
		c.First = t
	}
	c.Packets++
	c.Bytes += uint64(max(length, 0))
	c.Last = t
	c.TCPFlags |= flags
}

// Flow is one flow record: what a flow did between Start and End, as the
// Meter exports it and an IPFIX Exporter sends it (RFC 7011 §2, "Flow
// Record"). Packets and Bytes are deltas: the packets counted since the
// flow's previous record, so that the records of a flow add up to what the
// flow table counted, each packet in exactly one record (the
// octetDeltaCount and packetDeltaCount of RFC 7012).
type Flow struct {
	Key Key
	// Packets and Bytes are the packets and their bytes on the wire in
	// this record.
	Packets, Bytes uint64
	// TCPFlags is the OR of the TCP flags of the table entry's packets.
	// The table ORs them over the entry's whole life, so after an active
	// timeout the next record's flags include those of earlier records
	// (the SYN, typically).
	TCPFlags packet.TCPFlags
	// Start is when the record's first packet was seen: for the first
	// record of a table entry, the entry's First. A later record's first
	// packet came after the previous record's last one, but the table does
	// not say when: Start is then the previous record's End, which is no
	// later than the packet.
	Start time.Time
	// End is when the record's last packet was seen (Counters.Last).
	End time.Time
	// EndReason says why the record was exported.
	EndReason EndReason
}

// Duration returns End - Start.
func (f *Flow) Duration() time.Duration { return f.End.Sub(f.Start) }

// EndReason is why a flow record was exported: the IANA IPFIX registry's
// flowEndReason (information element 136, defined in RFC 5102, its values
// in the IANA "flowEndReason" subregistry).
type EndReason uint8

// The end reasons, with the IANA values.
const (
	// EndIdle: no packet was seen for the idle timeout (IANA:
	// "idle timeout").
	EndIdle EndReason = 1
	// EndActive: the flow lasted longer than the active timeout and was
	// exported while still active; its next record continues it ("active
	// timeout").
	EndActive EndReason = 2
	// EndOfFlow: the end of the flow was seen: a TCP FIN or RST ("end of
	// Flow detected").
	EndOfFlow EndReason = 3
	// EndForced: the meter was stopped (Meter.Flush) ("forced end").
	EndForced EndReason = 4
	// EndLackOfResources: the flow table dropped the entry — the kernel's
	// LRU evicted it to make room — before it expired ("lack of
	// resources").
	EndLackOfResources EndReason = 5
)

var endReasonNames = [...]string{
	EndIdle:            "idle timeout",
	EndActive:          "active timeout",
	EndOfFlow:          "end of flow detected",
	EndForced:          "forced end",
	EndLackOfResources: "lack of resources",
}

// String returns the IANA name of the reason in lower case: "idle
// timeout", "active timeout", "end of flow detected", "forced end", "lack
// of resources", or "EndReason(N)" for other values.
func (r EndReason) String() string {
	if int(r) < len(endReasonNames) && endReasonNames[r] != "" {
		return endReasonNames[r]
	}
	return "EndReason(" + strconv.Itoa(int(r)) + ")"
}
