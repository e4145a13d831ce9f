package flow

import (
	"fmt"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The default timeouts. RFC 5470 (Flow Expiration) defines both and
// leaves their values to the metering process; these are common defaults
// of flow exporters: a minute active (Juniper's IPFIX templates) and 15
// seconds idle (Cisco's NetFlow inactive timeout).
const (
	DefaultActiveTimeout = 60 * time.Second
	DefaultIdleTimeout   = 15 * time.Second
)

// Config configures a Meter. The zero Config, and a nil *Config, mean the
// defaults.
type Config struct {
	// ActiveTimeout is how long a flow may stay active before it is
	// exported with EndActive, and then again every ActiveTimeout after
	// its previous record's End; DefaultActiveTimeout if 0.
	ActiveTimeout time.Duration
	// IdleTimeout is how long a flow may see no packet before it ends
	// with EndIdle; DefaultIdleTimeout if 0.
	IdleTimeout time.Duration
}

// Meter turns successive readings of a flow table into flow records: it
// is the metering process's flow expiration (RFC 5470) for a table that
// counts in the kernel, where user space can only read cumulative
// counters and delete entries.
//
// A reading is a pass over the table: Observe for each entry read, then
// Expire, which compares the reading with the previous one and with the
// time, exports what is due and deletes what ended. A caller reads every
// second or so:
//
//	for range ticker.C {
//		for key, c := range table { // BPF_MAP_GET_NEXT_KEY + LOOKUP, or a batch lookup
//			m.Observe(key, c)
//		}
//		flows = m.Expire(time.Now(), table.LookupAndDelete, flows[:0])
//		export(flows)
//	}
//
// The records count every packet the table counted once: each record
// holds the delta since the flow's previous record. A flow ends
//
//   - with EndOfFlow at the first reading that shows a TCP FIN or RST (the
//     ACK a host sends after its FIN then makes a flow of its own, as with
//     every exporter that ends flows on FIN),
//   - with EndIdle when its Last is IdleTimeout or more before now,
//   - with EndLackOfResources when it vanished from the table without
//     being deleted (the kernel's LRU evicted it), or came back with
//     counters lower than before or another First (evicted and created
//     again): the record holds what the last reading showed, and packets
//     counted after that reading are lost with the entry (Stats.Evicted
//     counts such entries);
//   - with EndForced at Flush.
//
// and a flow that is still active after ActiveTimeout is exported with
// EndActive and goes on. Records with no packets are not exported.
//
// A Meter is not safe for concurrent use.
type Meter struct {
	active, idle time.Duration
	entries      map[Key]entry
	gen          uint64 // the number of the reading in progress
	pending      []Flow // records Observe made, for the next Expire
	stats        Stats
}

// Stats counts what a Meter has done.
type Stats struct {
	// Flows, Packets and Bytes count the records exported and what they
	// hold.
	Flows, Packets, Bytes uint64
	// Evicted counts the table entries that vanished without being
	// deleted, or were found created again: entries the kernel's LRU
	// dropped to make room.
	Evicted uint64
	// Revived counts the entries seen again after the meter took them for
	// gone: the delete function failed or deleted nothing, or a reading
	// missed an entry it should have shown (an iteration over a hash map
	// that changes while it is read can restart or skip).
	Revived uint64
}

// entry is what the Meter knows of one table entry.
type entry struct {
	seen  Counters  // cumulative, as last read (or as deleted)
	base  Counters  // cumulative Packets and Bytes already exported
	start time.Time // Start of the next record
	gen   uint64    // the reading it was last seen in
	// gone says the entry was exported as ended: deleted, or lost. The
	// entry stays as a tombstone until two readings in a row have not
	// shown it and IdleTimeout has passed since endedAt, so that an entry
	// that is still in the table (the delete failed, or a reading missed
	// it) is not counted again from zero.
	gone    bool
	misses  uint8 // readings in a row that have not shown it, since it was gone
	endedAt time.Time
}

// NewMeter returns a Meter with the timeouts cfg gives.
func NewMeter(cfg *Config) (*Meter, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.ActiveTimeout < 0 || c.IdleTimeout < 0 {
		return nil, fmt.Errorf("flow meter: negative timeout (active %v, idle %v): use 0 for the defaults", c.ActiveTimeout, c.IdleTimeout)
	}
	if c.ActiveTimeout == 0 {
		c.ActiveTimeout = DefaultActiveTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	return &Meter{active: c.ActiveTimeout, idle: c.IdleTimeout, entries: make(map[Key]entry), gen: 1}, nil
}

// ActiveTimeout and IdleTimeout return the timeouts in effect.
func (m *Meter) ActiveTimeout() time.Duration { return m.active }

// IdleTimeout returns the idle timeout in effect.
func (m *Meter) IdleTimeout() time.Duration { return m.idle }

// Stats returns what the Meter has counted so far.
func (m *Meter) Stats() Stats { return m.stats }

// Len returns the number of table entries the Meter keeps state for,
// tombstones of recently ended ones included.
func (m *Meter) Len() int { return len(m.entries) }

// Observe records one entry of the reading in progress: key's cumulative
// counters c, as read from the table. Counters must carry First and Last,
// converted from the kernel's clock the same way at every reading (with
// one fixed offset): an entry whose First changed, or whose Packets or
// Bytes went down, is taken to be a new entry in place of an evicted one.
// Observing a key twice in a reading keeps the later counters.
func (m *Meter) Observe(key Key, c Counters) {
	e, ok := m.entries[key]
	switch {
	case !ok:
		e = newEntry(c)
	case recreated(&e, c):
		if !e.gone {
			// The entry we knew was evicted since the last reading, and
			// the kernel made a new one for the same key.
			m.stats.Evicted++
			m.pending = m.export(m.pending, key, &e, EndLackOfResources)
		}
		e = newEntry(c)
	default:
		if e.gone {
			m.stats.Revived++
			e.gone, e.misses = false, 0
		}
		e.seen = c
	}
	e.gen = m.gen
	m.entries[key] = e
}

// newEntry returns the state of a table entry first read as c.
func newEntry(c Counters) entry {
	start := c.First
	if start.IsZero() {
		start = c.Last
	}
	return entry{seen: c, start: start}
}

// recreated reports whether c, read for e's key, is from another table
// entry than the one e describes.
func recreated(e *entry, c Counters) bool {
	return !c.First.Equal(e.seen.First) || c.Packets < e.seen.Packets || c.Bytes < e.seen.Bytes
}

// DeleteFunc deletes key's entry from the flow table. When it can read
// the entry as it deletes it — BPF_MAP_LOOKUP_AND_DELETE_ELEM, Linux 5.14
// for hash maps — it returns the entry's counters and true, so that the
// packets the kernel counted between the reading and the deletion are in
// the flow's last record. Otherwise (a plain BPF_MAP_DELETE_ELEM, the
// entry already gone, an error) it returns false, and the record holds
// what the reading saw; packets counted in between are lost with the
// entry. A DeleteFunc that records its errors somewhere may ignore them
// here: an entry that is still in the table at the next reading is
// continued, not counted twice.
type DeleteFunc func(key Key) (Counters, bool)

// Expire ends the reading in progress at time now: it appends to flows the
// records that are due and returns the extended slice, calls del for each
// flow that ended (del may be nil, when the caller deletes nothing), and
// forgets what it no longer needs. now is on the clock of Counters' First
// and Last. The reading is taken to be whole: an entry that Observe was
// not given is taken to have vanished from the table, so a caller whose
// reading failed should skip Expire (an entry wrongly taken for gone is
// revived when it is seen again, without counting a packet twice, but its
// flow has had a record with EndLackOfResources).
func (m *Meter) Expire(now time.Time, del DeleteFunc, flows []Flow) []Flow {
	flows = append(flows, m.pending...)
	m.pending = m.pending[:0]
	for key, e := range m.entries {
		if e.gen != m.gen {
			// Not in this reading.
			switch {
			case !e.gone:
				m.stats.Evicted++
				flows = m.end(flows, key, &e, EndLackOfResources, now)
				m.entries[key] = e
			case e.misses >= 1 && now.Sub(e.endedAt) >= m.idle:
				delete(m.entries, key)
			default:
				e.misses++
				m.entries[key] = e
			}
			continue
		}
		if e.gone {
			continue
		}
		switch {
		case e.seen.TCPFlags&(packet.TCPFin|packet.TCPRst) != 0:
			flows = m.delete(flows, key, &e, EndOfFlow, now, del)
		case now.Sub(e.seen.Last) >= m.idle:
			flows = m.delete(flows, key, &e, EndIdle, now, del)
		case now.Sub(e.start) >= m.active:
			flows = m.export(flows, key, &e, EndActive)
		default:
			continue
		}
		m.entries[key] = e
	}
	m.gen++
	return flows
}

// Flush ends every flow the Meter tracks with EndForced, as a metering
// process does when it stops: it appends their records (from the latest
// counters Observe gave) to flows, calls del for each, and returns the
// extended slice. The records of a reading in progress (Observe without
// Expire) are exported as Expire would, before.
func (m *Meter) Flush(now time.Time, del DeleteFunc, flows []Flow) []Flow {
	flows = append(flows, m.pending...)
	m.pending = m.pending[:0]
	for key, e := range m.entries {
		if !e.gone {
			flows = m.delete(flows, key, &e, EndForced, now, del)
		}
		delete(m.entries, key)
	}
	m.gen++
	return flows
}

// delete deletes key's entry from the table with del and ends the flow.
func (m *Meter) delete(flows []Flow, key Key, e *entry, reason EndReason, now time.Time, del DeleteFunc) []Flow {
	if del != nil {
		if final, ok := del(key); ok {
			if !recreated(e, final) {
				e.seen = final
			} else {
				// The entry we read was evicted between the reading and
				// del, and del deleted its successor: export both.
				m.stats.Evicted++
				flows = m.export(flows, key, e, EndLackOfResources)
				next := newEntry(final)
				flows = m.export(flows, key, &next, reason)
				*e = next
			}
		}
	}
	return m.end(flows, key, e, reason, now)
}

// end exports the rest of e's flow and makes e a tombstone.
func (m *Meter) end(flows []Flow, key Key, e *entry, reason EndReason, now time.Time) []Flow {
	flows = m.export(flows, key, e, reason)
	e.gone = true
	e.endedAt = now
	return flows
}

// export appends the record of e's packets since its previous record, if
// there are any, and moves e's base past them.
func (m *Meter) export(flows []Flow, key Key, e *entry, reason EndReason) []Flow {
	p := e.seen.Packets - e.base.Packets
	b := e.seen.Bytes - e.base.Bytes
	if p == 0 && b == 0 {
		return flows
	}
	start := e.start
	if start.After(e.seen.Last) {
		start = e.seen.Last
	}
	flows = append(flows, Flow{
		Key: key, Packets: p, Bytes: b, TCPFlags: e.seen.TCPFlags,
		Start: start, End: e.seen.Last, EndReason: reason,
	})
	m.stats.Flows++
	m.stats.Packets += p
	m.stats.Bytes += b
	e.base = e.seen
	e.start = e.seen.Last
	return flows
}
