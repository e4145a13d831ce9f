package sockfilter

import (
	"strconv"
	"time"

	"github.com/purebpf/purebpf/sockfilter/flow"
)

// KernelClock names the clock the kernel stamps records and flows with:
// the bpf_ktime_get_*_ns helper the program calls.
type KernelClock uint8

// The clocks. ListenRecords takes the first of the precise ones the
// kernel has, unless RecordConfig.Clock says otherwise; ListenFlows takes
// ClockCoarse.
const (
	// ClockTAI is bpf_ktime_get_tai_ns (Linux 6.1): CLOCK_TAI, which is
	// CLOCK_REALTIME plus the kernel's TAI offset (adjtimex(2)). A stamp
	// converts to wall-clock time exactly, with no drift, for as long as
	// the TAI offset holds (it changes at a leap second, or when a time
	// daemon sets it).
	ClockTAI KernelClock = 1
	// ClockBoot is bpf_ktime_get_boot_ns (Linux 5.8): CLOCK_BOOTTIME,
	// converted with the offset to CLOCK_REALTIME read at Listen. The
	// conversion drifts as NTP slews the wall clock, and jumps are not
	// followed.
	ClockBoot KernelClock = 2
	// ClockMonotonic is bpf_ktime_get_ns (Linux 4.1): CLOCK_MONOTONIC,
	// converted as ClockBoot is; it stops while the machine is suspended.
	ClockMonotonic KernelClock = 3
	// ClockCoarse is bpf_ktime_get_coarse_ns (Linux 5.11):
	// CLOCK_MONOTONIC_COARSE, which advances once a timer tick (every 1
	// to 10 ms, as CONFIG_HZ has it) and costs the program about a third
	// of the others (13 ns where bpf_ktime_get_tai_ns takes 38, measured
	// by BenchmarkKernelPrograms); converted as ClockMonotonic. It is the
	// flow table's default: flows are timed in milliseconds (IPFIX
	// flowStartMilliseconds) and expire in seconds.
	ClockCoarse KernelClock = 4
)

// String returns "tai", "boottime", "monotonic" or "coarse".
func (c KernelClock) String() string {
	switch c {
	case ClockTAI:
		return "tai"
	case ClockBoot:
		return "boottime"
	case ClockMonotonic:
		return "monotonic"
	case ClockCoarse:
		return "coarse"
	}
	return "KernelClock(" + strconv.Itoa(int(c)) + ")"
}

// The defaults of RecordConfig.
const (
	// DefaultRecordRingSize is the size of the ring buffer: 4 MiB holds
	// 37,000 records of 112 bytes (a record and its header), 37 ms of a
	// million frames a second.
	DefaultRecordRingSize = 4 << 20
	// DefaultRecordTimeout is the longest a record waits in the ring
	// buffer before the reader wakes for it when fewer than the watermark
	// wait: the TPACKET_V3 ring's block timeout on lo.
	DefaultRecordTimeout = 8 * time.Millisecond
)

// RecordConfig tunes a RecordConn. The zero RecordConfig, like a nil
// *RecordConfig, gives the defaults: frames in both directions (each
// packet on a loopback device once), records in a
// ring buffer of DefaultRecordRingSize bytes, the reader woken when a
// quarter of it is full or DefaultRecordTimeout has passed, time stamps
// from the most precise clock the kernel has.
type RecordConfig struct {
	// Direction, LoopbackOutgoing and Promiscuous are Config's: the
	// frames received, sent or both (each packet on a loopback device
	// once, by default), and frames for other hosts. Frames the socket is
	// not to see are dropped in the kernel: with PACKET_IGNORE_OUTGOING
	// where Listen uses it, and otherwise by the program, which tests
	// skb->pkt_type before the filter runs.
	Direction        Direction
	LoopbackOutgoing bool
	Promiscuous      bool

	// RingSize is the size in bytes of the BPF ring buffer the program
	// writes the records to (BPF_MAP_TYPE_RINGBUF, Linux 5.8): a
	// power-of-two multiple of the page size; 0 means
	// DefaultRecordRingSize. Each record takes 112 bytes of it. A record
	// that finds it full is lost and counted in RecordStats.Lost.
	RingSize int
	// Watermark is how many bytes of records must wait in the ring buffer
	// before the kernel wakes a sleeping reader (the record that crosses
	// it commits with BPF_RB_FORCE_WAKEUP, the others with
	// BPF_RB_NO_WAKEUP); below it the reader wakes every Timeout. 0 means
	// RingSize/4; -1 wakes the reader for every record the kernel writes
	// while the reader has caught up, the kernel's own policy, which costs
	// a wake-up for every few records in a flood.
	Watermark int
	// Timeout is how often the reader wakes to read records below the
	// watermark: the most a record waits to be read; 0 means
	// DefaultRecordTimeout.
	Timeout time.Duration

	// Clock is the clock the kernel stamps the records with; 0 means the
	// best the kernel has of ClockTAI, ClockBoot and ClockMonotonic. A
	// clock the kernel lacks is an error.
	Clock KernelClock

	// Perf writes the records to per-CPU perf event buffers
	// (BPF_MAP_TYPE_PERF_EVENT_ARRAY and bpf_perf_event_output, Linux 4.4)
	// instead of a ring buffer, as ListenRecords does by itself on kernels
	// without ring buffers. Each CPU's buffer has PerfBufferSize bytes
	// (0 means DefaultPerfBufferSize), and Watermark applies to each;
	// reading it needs CAP_PERFMON. Records of different CPUs come in no
	// particular order.
	Perf           bool
	PerfBufferSize int
}

// RecordStats are a RecordConn's counters since ListenRecords.
type RecordStats struct {
	// Records counts the records NextRecords has returned.
	Records uint64
	// Lost counts the frames the filter accepted whose records the kernel
	// could not write because the ring buffer (or, with perf buffers, the
	// CPU's buffer) was full: counted by the program in a per-CPU array,
	// exactly.
	Lost uint64
	// Unreadable counts frames whose bytes the kernel refused to copy to
	// the program (bpf_skb_load_bytes failed within skb->len, which it
	// does not do): their records are marked truncated at LayerFrame.
	Unreadable uint64
	// Socket is the packet socket's own counters (PACKET_STATISTICS). The
	// program returns 0 for every frame, so the socket queues none and
	// they stay zero: the frames are counted above instead.
	Socket Stats
}

// FlowEntry is a flow of a FlowConn's table as it is: its key and its
// counters, cumulative since the kernel made the entry.
type FlowEntry struct {
	Key flow.Key
	flow.Counters
}

// DefaultMaxFlows is the size of a flow table unless FlowConfig says
// otherwise.
const DefaultMaxFlows = 65536

// FlowConfig tunes a FlowConn. The zero FlowConfig, like a nil
// *FlowConfig, gives the defaults: frames in both directions (each packet
// on a loopback device once), a shared LRU
// table of DefaultMaxFlows flows, time stamps from ClockCoarse, and
// flow.Meter's timeouts (60 s active, 15 s idle).
type FlowConfig struct {
	// Direction, LoopbackOutgoing and Promiscuous are Config's, as in
	// RecordConfig.
	Direction        Direction
	LoopbackOutgoing bool
	Promiscuous      bool
	// MaxFlows is how many flows the table holds (max_entries); 0 means
	// DefaultMaxFlows. When it is full the kernel evicts the least
	// recently used flow to make room; the packets it counted after the
	// flow's last reading are lost with it and counted in
	// FlowStats.EvictedPackets.
	MaxFlows int
	// PerCPU keeps the table as a BPF_MAP_TYPE_LRU_PERCPU_HASH, one
	// value for each CPU under each key, which the program updates
	// without atomic operations: no contention between CPUs counting the
	// same flow, at the price of a value per possible CPU in every entry
	// and in every read. The default is a BPF_MAP_TYPE_LRU_HASH updated
	// with atomic adds.
	PerCPU bool
	// Clock is the clock the kernel stamps the flows with; 0 means
	// ClockCoarse, or where the kernel lacks it (before Linux 5.11) the
	// best of the others.
	Clock KernelClock
	// ActiveTimeout and IdleTimeout are flow.Config's: how long a flow
	// may last before a record of it is exported, and how long it may be
	// idle before it ends (RFC 5470). 0 means flow.DefaultActiveTimeout
	// and flow.DefaultIdleTimeout.
	ActiveTimeout time.Duration
	IdleTimeout   time.Duration
}

// FlowStats are a FlowConn's counters since ListenFlows. The kernel counts
// every packet the filter accepts, and each is in exactly one of:
// Exported, Pending, EvictedPackets and Failed.
type FlowStats struct {
	// Packets and Bytes count the packets the filter accepted, and their
	// bytes on the wire: the program's per-CPU totals, read at the last
	// reading of the table.
	Packets, Bytes uint64
	// Flows, ExportedPackets and ExportedBytes count the flow records
	// ReadFlows and Flush have returned, and what they hold.
	Flows, ExportedPackets, ExportedBytes uint64
	// PendingPackets and PendingBytes are counted in the table's flows
	// but not yet in a record, as of the last reading.
	PendingPackets, PendingBytes uint64
	// Evicted counts the flows the kernel's LRU evicted after a reading
	// had seen them (their last records end with
	// flow.EndLackOfResources). EvictedPackets and EvictedBytes count
	// what was lost with evicted flows: the packets the kernel counted
	// that no record holds nor will hold, Packets less the others above.
	// A packet counted while a reading was in progress may show here
	// until the next reading.
	Evicted                      uint64
	EvictedPackets, EvictedBytes uint64
	// Failed counts the packets the program could not put in any flow:
	// the table refused a new entry (it could not allocate one).
	Failed uint64
	// Unreadable counts frames whose bytes the kernel refused to copy to
	// the program; they are counted in a flow of their interface and
	// direction only.
	Unreadable uint64
	// Socket is the packet socket's own counters, zero as for records.
	Socket Stats
}
