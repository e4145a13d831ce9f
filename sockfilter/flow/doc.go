// Package flow is the vocabulary of flow accounting that the kernel's flow
// table, lo-capture and the IPFIX exporter (package ipfix) share: the Key
// that says which flow a packet belongs to, the cumulative Counters a flow
// table keeps for it, the Flow record an exporter sends, and the Meter
// that turns successive readings of a table into records, with the active
// and idle timeouts of RFC 5470 and the end reasons of the IANA
// IPFIX registry (flowEndReason).
//
// It needs only the standard library and builds on every GOOS; the Meter
// does not know where the table is, so it serves a BPF map read with
// bpf(2) as well as a Go map.
//
// # A worked example
//
// Count packets in a Go map, as the kernel's flow table does, and expire
// them with a Meter:
//
//	table := map[flow.Key]flow.Counters{}
//	count := func(r *packet.Record) {
//		k := flow.KeyOf(r)
//		c := table[k]
//		c.Add(r.Length, r.Time, r.TCPFlags)
//		table[k] = c
//	}
//	del := func(k flow.Key) (flow.Counters, bool) {
//		c, ok := table[k]
//		delete(table, k)
//		return c, ok
//	}
//	m, _ := flow.NewMeter(nil) // 60 s active, 15 s idle
//	var flows []flow.Flow
//	for now := range ticker.C { // every second
//		for k, c := range table {
//			m.Observe(k, c)
//		}
//		flows = m.Expire(now, del, flows[:0])
//		for _, f := range flows {
//			fmt.Println(f.Key, f.Packets, f.Bytes, f.EndReason)
//		}
//	}
//
// # The kernel's clock
//
// Counters' First and Last, and the now given to Expire, must be on one
// clock. The kernel stamps packets with bpf_ktime_get_boot_ns
// (CLOCK_BOOTTIME, Linux 5.8) or bpf_ktime_get_ns (CLOCK_MONOTONIC); user
// space converts a stamp to a time.Time by adding one fixed offset, the
// wall-clock time at which that clock read zero, taken once
// (time.Now() minus clock_gettime(2) of the same clock, read together), and
// passes Expire the same clock converted the same way. The Meter tells a
// table entry from its successor by First, so the offset must not change
// between readings.
package flow
