package flow

import (
	"testing"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// fuzzTable is a kernel flow table for FuzzMeter: it counts packets,
// evicts and recreates entries, and knows how many packets of each entry
// the Meter was shown, so that it can count exactly what is lost when an
// entry goes before the Meter read all of it.
type fuzzTable struct {
	now     time.Time
	entries map[Key]*fuzzEntry
	mode    deleteMode
	fed     Counters // Packets and Bytes counted
	lost    Counters // counted, then gone before a reading or delete returned them
}

type fuzzEntry struct {
	c        Counters
	observed Counters // as last given to Observe
	skipped  bool     // the previous reading missed it
}

func (t *fuzzTable) tick() { t.now = t.now.Add(time.Microsecond) }

func (t *fuzzTable) count(k Key, size int, flags packet.TCPFlags) {
	t.tick()
	e := t.entries[k]
	if e == nil {
		e = &fuzzEntry{}
		t.entries[k] = e
	}
	e.c.Add(size, t.now, flags)
	t.fed.Packets++
	t.fed.Bytes += uint64(size)
}

// drop removes k's entry; what the Meter was not shown is lost.
func (t *fuzzTable) drop(k Key) {
	e := t.entries[k]
	t.lost.Packets += e.c.Packets - e.observed.Packets
	t.lost.Bytes += e.c.Bytes - e.observed.Bytes
	delete(t.entries, k)
}

func (t *fuzzTable) del(k Key) (Counters, bool) {
	e := t.entries[k]
	if e == nil {
		return Counters{}, false
	}
	switch t.mode {
	case deleteFails:
		return Counters{}, false
	case deleteRace, deleteRacePlain:
		t.count(k, 50, 0)
	case deleteRecreate:
		t.drop(k)
		t.count(k, 50, 0)
		e = t.entries[k]
	}
	returned := t.mode != deletePlain && t.mode != deleteRacePlain
	if returned {
		e.observed = e.c
	}
	c := e.c
	t.drop(k)
	return c, returned
}

// read shows the Meter the table, missing skip (unless the previous
// reading missed it too: readings miss an entry now and then, never for
// long) and showing dup twice.
func (t *fuzzTable) read(m *Meter, skip, dup *Key) {
	for k, e := range t.entries {
		if skip != nil && *skip == k && !e.skipped {
			e.skipped = true
			continue
		}
		e.skipped = false
		m.Observe(k, e.c)
		if dup != nil && *dup == k {
			m.Observe(k, e.c)
		}
		e.observed = e.c
	}
}

// FuzzMeter checks the Meter's accounting on a random life of a flow
// table: packets, readings (whole, missing an entry, or showing one
// twice), LRU evictions, deletes that return the counters, lose the
// packets counted since the reading, or fail. Whatever happens, the
// records hold every packet the table counted, once, but for those the
// table dropped before the Meter saw them; no record has negative or
// impossible counts, or ends before it starts.
func FuzzMeter(f *testing.F) {
	f.Add([]byte{0, 10, 1, 20, 16, 1, 32, 0, 0, 3, 16, 200, 32, 0})
	f.Add([]byte{2, 1, 2, 1, 2, 9, 48, 1, 16, 5, 32, 0, 64, 2, 16, 16, 32, 0, 80, 3, 0, 1, 32, 0})
	f.Add([]byte{1, 0, 32, 0, 96, 0, 0, 0, 32, 0, 112, 1, 0, 7, 32, 1, 64, 4, 16, 255, 32, 0})
	keys := [...]Key{tcpKey, udpKey, icmpKey, {EtherType: 0x0806}}
	f.Fuzz(func(t *testing.T, script []byte) {
		m, err := NewMeter(&Config{ActiveTimeout: 10 * time.Second, IdleTimeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		tab := &fuzzTable{now: t0, entries: map[Key]*fuzzEntry{}}
		var flows []Flow
		for i := 0; i+1 < len(script); i += 2 {
			kind, arg := script[i]>>4, script[i+1]
			k := keys[int(script[i]&0x0f)%len(keys)]
			switch kind {
			case 0: // a packet
				var flags packet.TCPFlags
				if k == tcpKey && arg%17 == 0 {
					flags = packet.TCPFin
				}
				tab.count(k, 40+int(arg), flags)
			case 1: // time passes: up to 25.5 s
				tab.now = tab.now.Add(time.Duration(arg) * 100 * time.Millisecond)
			case 2: // a reading
				tab.read(m, nil, nil)
				flows = m.Expire(tab.now, tab.del, flows)
			case 3: // a reading that misses k
				tab.read(m, &k, nil)
				flows = m.Expire(tab.now, tab.del, flows)
			case 4: // a reading that shows k twice
				tab.read(m, nil, &k)
				flows = m.Expire(tab.now, tab.del, flows)
			case 5: // the LRU evicts k
				if tab.entries[k] != nil {
					tab.drop(k)
				}
			case 6: // the delete function changes
				tab.mode = deleteMode(arg % uint8(numDeleteModes))
			case 7: // the LRU evicts k, and a packet creates it again
				if tab.entries[k] != nil {
					tab.drop(k)
				}
				tab.count(k, 40+int(arg), 0)
			}
		}
		tab.mode = deleteLookup
		tab.read(m, nil, nil)
		flows = m.Flush(tab.now, tab.del, flows)

		var got Counters
		for _, fl := range flows {
			if fl.Packets == 0 || fl.Packets > tab.fed.Packets || fl.Bytes > tab.fed.Bytes {
				t.Fatalf("impossible record: %s (%d packets, %d bytes fed)", flowLine(fl), tab.fed.Packets, tab.fed.Bytes)
			}
			if fl.End.Before(fl.Start) || fl.EndReason < EndIdle || fl.EndReason > EndLackOfResources {
				t.Fatalf("bad record: %s", flowLine(fl))
			}
			got.Packets += fl.Packets
			got.Bytes += fl.Bytes
		}
		if want := tab.fed.Packets - tab.lost.Packets; got.Packets != want {
			t.Errorf("records hold %d packets, want %d (%d counted, %d lost)", got.Packets, want, tab.fed.Packets, tab.lost.Packets)
		}
		if want := tab.fed.Bytes - tab.lost.Bytes; got.Bytes != want {
			t.Errorf("records hold %d bytes, want %d (%d counted, %d lost)", got.Bytes, want, tab.fed.Bytes, tab.lost.Bytes)
		}
		if st := m.Stats(); st.Packets != got.Packets || st.Bytes != got.Bytes || st.Flows != uint64(len(flows)) {
			t.Errorf("Stats = %+v, records: %d, %d packets, %d bytes", st, len(flows), got.Packets, got.Bytes)
		}
		if m.Len() != 0 || len(tab.entries) != 0 {
			t.Errorf("after Flush: Meter keeps %d entries, table %d", m.Len(), len(tab.entries))
		}
	})
}
