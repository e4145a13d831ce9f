package sockfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/internal/kparse"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// FlowConn is a flow table kept by a socket filter: an AF_PACKET socket
// whose program parses each frame it accepts in the kernel, as a
// RecordConn's does, and counts it in the flow the frame belongs to (the
// flow.Key that flow.KeyOf gives its record) in a BPF LRU hash map, and
// returns 0, so that the kernel queues and copies nothing. ReadFlows reads
// the table and turns it into flow records with a flow.Meter. See
// ListenFlows.
//
// The methods may be called from several goroutines; ReadFlows, Flush,
// Table and Stats take turns. Once the FlowConn is closed they return an
// error matching ErrClosed.
type FlowConn struct {
	sock     *ksocket
	flows    *Map
	counters *Map
	clock    KernelClock
	clk      kparse.Clock // fixed: the Meter tells entries apart by First
	perCPU   bool
	cpus     int // values per key: possible CPUs for a per-CPU table, else 1

	mu      sync.Mutex // serialises readings and Close
	closed  atomic.Bool
	meter   *flow.Meter
	keys    []byte // batch buffers
	values  []byte
	noBatch bool   // the kernel has no BPF_MAP_LOOKUP_BATCH
	key     []byte // a key and a value for del
	value   []byte
	del     flow.DeleteFunc
	stats   FlowStats
}

// ListenFlows opens an AF_PACKET socket on the interface named ifname and
// attaches a program made of filter, a socket filter (as ListenRecords
// takes it; nil accepts every frame), followed by the kernel's parser and
// the update of a flow table: for each frame filter accepts, the entry of
// its flow gains a packet and the frame's bytes (its length on the wire),
// its last time stamp, and the TCP flags OR'd in; a new flow's entry is
// made with its first time stamp. A nil cfg gives the defaults.
//
// The table is a BPF_MAP_TYPE_LRU_HASH (Linux 4.10) updated with atomic
// operations (Linux 5.12), or with FlowConfig.PerCPU a
// BPF_MAP_TYPE_LRU_PERCPU_HASH. Reading it needs BPF_MAP_LOOKUP_BATCH
// (Linux 5.6) and, to delete a flow with the packets counted in it up to
// the moment it goes, BPF_MAP_LOOKUP_AND_DELETE_ELEM on hash maps (Linux
// 5.14). Beside it the program counts every packet and its bytes in a
// per-CPU array, so that packets lost with a flow the LRU evicted are
// reported (FlowStats.EvictedPackets), not lost silently. It needs Linux
// 5.12 for the atomic OR of a shared table (5.1 for a per-CPU one), and
// CAP_BPF and CAP_NET_RAW; before Linux 5.14 a flow is deleted without
// being read at once, and the packets the kernel counts between the
// reading and the deletion are lost with it. Interfaces are ListenRecords'.
func ListenFlows(ifname string, filter asm.Instructions, cfg *FlowConfig) (*FlowConn, error) {
	c, err := listenFlows(ifname, filter, cfg)
	if err != nil {
		return nil, fmt.Errorf("listen for flows on interface %q: %w", ifname, err)
	}
	return c, nil
}

func listenFlows(ifname string, filter asm.Instructions, cfg *FlowConfig) (*FlowConn, error) {
	var conf FlowConfig
	if cfg != nil {
		conf = *cfg
	}
	if conf.MaxFlows == 0 {
		conf.MaxFlows = DefaultMaxFlows
	}
	if conf.MaxFlows < 0 || conf.MaxFlows > 1<<24 {
		return nil, fmt.Errorf("max flows %d: from 1 to %d", conf.MaxFlows, 1<<24)
	}
	meter, err := flow.NewMeter(&flow.Config{ActiveTimeout: conf.ActiveTimeout, IdleTimeout: conf.IdleTimeout})
	if err != nil {
		return nil, err
	}
	if filter == nil {
		filter = acceptEvery
	}
	clock, err := kernelClock(conf.Clock, flowClocks...)
	if err != nil {
		return nil, fmt.Errorf("find the kernel's clock: %w", err)
	}
	clk, err := clockOffset(clock)
	if err != nil {
		return nil, err
	}
	s, fd, err := openKSocket(ifname)
	if err != nil {
		return nil, err
	}
	c := &FlowConn{sock: s, clock: clock, clk: clk, perCPU: conf.PerCPU, cpus: 1, meter: meter}
	ok, fdOwned := false, true
	defer func() {
		if !ok {
			if fdOwned {
				unix.Close(fd)
			}
			c.release()
		}
	}()
	skip, err := s.configureDirection(fd, conf.Direction, conf.LoopbackOutgoing)
	if err != nil {
		return nil, err
	}
	if err := c.makeMaps(&conf); err != nil {
		return nil, err
	}
	prog, err := loadFlowProgram(filter, s.link, 0, skip, c.flows, c.counters, conf.PerCPU, clock)
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	fdOwned = false // start closes it if it fails
	if err := s.start(fd, prog, conf.Promiscuous); err != nil {
		return nil, err
	}
	c.key = make([]byte, kparse.FlowKeySize)
	c.value = make([]byte, c.flows.ValueBufSize())
	c.del = c.lookupAndDelete
	ok = true
	return c, nil
}

// makeMaps creates the flow table and the per-CPU totals.
func (c *FlowConn) makeMaps(cfg *FlowConfig) error {
	var err error
	c.counters, err = NewMap(&MapSpec{Type: PerCPUArray, Name: "kflow_counters", ValueSize: kparse.FlowCountersSize, MaxEntries: 1})
	if err != nil {
		return err
	}
	typ := LRUHash
	if cfg.PerCPU {
		typ = LRUPerCPUHash
		if c.cpus, err = PossibleCPUs(); err != nil {
			return err
		}
	}
	c.flows, err = NewMap(&MapSpec{Type: typ, Name: "kflow_table", KeySize: kparse.FlowKeySize, ValueSize: kparse.FlowValueSize, MaxEntries: uint32(cfg.MaxFlows)})
	return err
}

// loadFlowProgram loads filter spliced in front of the flow table's
// update for link, reading frames base bytes before skb->data.
func loadFlowProgram(filter asm.Instructions, link packet.LinkType, base int, skip kparse.Skip, flows, counters *Map, perCPU bool, clock KernelClock) (*Program, error) {
	o := kparse.FlowOptions{Options: kparse.Options{Link: link, Base: base, Clock: clock.helper(), Skip: skip}, PerCPU: perCPU}
	insns, err := kparse.Flows(filter, &o)
	if err != nil {
		return nil, fmt.Errorf("make the flow program: %w", err)
	}
	p, err := Load(insns, &LoadOptions{
		Name: "kflows",
		Maps: map[string]*Map{kparse.MapFlows: flows, kparse.MapCounters: counters},
	})
	return p, filterError(filter, err)
}

// Interface returns the name of the interface the FlowConn is bound to.
func (c *FlowConn) Interface() string { return c.sock.ifname }

// Ifindex returns the index of the interface the FlowConn is bound to.
func (c *FlowConn) Ifindex() int { return c.sock.ifindex }

// LinkType returns the link type of the interface's frames.
func (c *FlowConn) LinkType() packet.LinkType { return c.sock.link }

// Clock returns the clock the kernel stamps the flows with. Its stamps are
// converted with one offset, taken at ListenFlows, as flow.Meter needs.
func (c *FlowConn) Clock() KernelClock { return c.clock }

// Now returns the time now on the clock the flows' First and Last are on,
// converted as they are: the time ReadFlows expires flows at.
func (c *FlowConn) Now() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(c.clock.clockid(), &ts); err != nil {
		return time.Now()
	}
	return c.clk.Time(uint64(ts.Nano()))
}

// ReadFlows reads the flow table once and appends to dst the flow records
// that are due, as flow.Meter.Expire makes them: flows that ended (TCP
// FIN or RST seen, idle for the idle timeout, or evicted by the kernel's
// LRU since the last reading), and flows active for longer than the
// active timeout; each record holds the packets counted since the flow's
// previous one. Ended flows are deleted from the table with
// BPF_MAP_LOOKUP_AND_DELETE_ELEM, so that their last packets are in their
// records. Call it every second or so: a flow evicted between two
// readings loses what it counted since the first.
func (c *FlowConn) ReadFlows(dst []flow.Flow) ([]flow.Flow, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return dst, fmt.Errorf("read flows: %w", ErrClosed)
	}
	err := c.walk(func(k flow.Key, cnt *flow.Counters) { c.meter.Observe(k, *cnt) })
	if err != nil {
		return dst, fmt.Errorf("read flows: %w", err)
	}
	dst = c.meter.Expire(c.Now(), c.del, dst)
	if err := c.updateStats(); err != nil {
		return dst, fmt.Errorf("read flows: %w", err)
	}
	return dst, nil
}

// Flush ends every flow the table holds with flow.EndForced, deletes it,
// and appends the records to dst: what a capture does when it stops.
func (c *FlowConn) Flush(dst []flow.Flow) ([]flow.Flow, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return dst, fmt.Errorf("flush flows: %w", ErrClosed)
	}
	err := c.walk(func(k flow.Key, cnt *flow.Counters) { c.meter.Observe(k, *cnt) })
	if err != nil {
		return dst, fmt.Errorf("flush flows: %w", err)
	}
	dst = c.meter.Flush(c.Now(), c.del, dst)
	if err := c.updateStats(); err != nil {
		return dst, fmt.Errorf("flush flows: %w", err)
	}
	return dst, nil
}

// Table appends the flows of the table as they are now to dst, for a view
// of the live flows: their cumulative counters, unchanged by ReadFlows'
// records. It reads with BPF_MAP_LOOKUP_BATCH and deletes nothing.
func (c *FlowConn) Table(dst []FlowEntry) ([]FlowEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return dst, fmt.Errorf("read flow table: %w", ErrClosed)
	}
	err := c.walk(func(k flow.Key, cnt *flow.Counters) { dst = append(dst, FlowEntry{Key: k, Counters: *cnt}) })
	if err != nil {
		return dst, fmt.Errorf("read flow table: %w", err)
	}
	return dst, nil
}

// walk calls fn for every flow of the table, read in batches.
func (c *FlowConn) walk(fn func(flow.Key, *flow.Counters)) error {
	const batch = 256
	vsize := c.flows.ValueBufSize()
	if c.keys == nil {
		c.keys = make([]byte, batch*kparse.FlowKeySize)
		c.values = make([]byte, batch*vsize)
	}
	if c.noBatch {
		return c.iterate(fn)
	}
	var cur MapCursor
	var cnt flow.Counters
	for first := true; ; first = false {
		n, err := c.flows.LookupBatch(&cur, c.keys, c.values)
		if first && (errors.Is(err, unix.EINVAL) || errors.Is(err, errNotSupported)) {
			// No batch operations before Linux 5.6: key by key.
			c.noBatch = true
			return c.iterate(fn)
		}
		if errors.Is(err, unix.ENOSPC) && n == 0 {
			// A hash bucket holds more flows than the buffers: grow them.
			c.keys = make([]byte, 2*len(c.keys))
			c.values = make([]byte, 2*len(c.values))
			continue
		}
		for i := range n {
			k, kerr := kparse.DecodeKey(c.keys[i*kparse.FlowKeySize : (i+1)*kparse.FlowKeySize])
			if kerr != nil {
				return kerr
			}
			ok, verr := kparse.DecodeValue(c.values[i*vsize:(i+1)*vsize], c.cpus, c.clk, &cnt)
			if verr != nil {
				return verr
			}
			if ok {
				fn(k, &cnt)
			}
		}
		if errors.Is(err, ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// iterate calls fn for every flow of the table, read key by key
// (BPF_MAP_GET_NEXT_KEY and BPF_MAP_LOOKUP_ELEM).
func (c *FlowConn) iterate(fn func(flow.Key, *flow.Counters)) error {
	var cnt flow.Counters
	it := c.flows.Iterate()
	for it.Next() {
		k, err := kparse.DecodeKey(it.Key())
		if err != nil {
			return err
		}
		ok, err := kparse.DecodeValue(it.Value(), c.cpus, c.clk, &cnt)
		if err != nil {
			return err
		}
		if ok {
			fn(k, &cnt)
		}
	}
	return it.Err()
}

// lookupAndDelete is the Meter's DeleteFunc: BPF_MAP_LOOKUP_AND_DELETE_ELEM.
func (c *FlowConn) lookupAndDelete(k flow.Key) (flow.Counters, bool) {
	c.key = kparse.AppendKey(c.key[:0], k)
	if err := c.flows.LookupAndDelete(c.key, c.value); err != nil {
		if !errors.Is(err, ErrKeyNotExist) {
			// Without the command (before Linux 5.14): a plain delete.
			c.flows.Delete(c.key)
		}
		return flow.Counters{}, false
	}
	var cnt flow.Counters
	ok, err := kparse.DecodeValue(c.value, c.cpus, c.clk, &cnt)
	return cnt, ok && err == nil
}

// updateStats reads the kernel's totals, after the table: what the kernel
// counted meanwhile shows as evicted until the next reading.
func (c *FlowConn) updateStats() error {
	vals := make([]byte, c.counters.ValueBufSize())
	if err := c.counters.LookupInto(make([]byte, 4), vals); err != nil {
		return err
	}
	st := FlowStats{Socket: c.stats.Socket}
	stride := perCPUStride(kparse.FlowCountersSize)
	ne := binary.NativeEndian
	for off := 0; off < len(vals); off += stride {
		st.Packets += ne.Uint64(vals[off+kparse.CounterPackets:])
		st.Bytes += ne.Uint64(vals[off+kparse.CounterBytes:])
		st.Failed += ne.Uint64(vals[off+kparse.CounterFailed:])
		st.Unreadable += ne.Uint64(vals[off+kparse.CounterFlowUnreadable:])
	}
	ms := c.meter.Stats()
	st.Flows, st.ExportedPackets, st.ExportedBytes, st.Evicted = ms.Flows, ms.Packets, ms.Bytes, ms.Evicted
	st.PendingPackets, st.PendingBytes = c.meter.Pending()
	accounted := st.ExportedPackets + st.PendingPackets + st.Failed
	if st.Packets > accounted {
		st.EvictedPackets = st.Packets - accounted
	}
	if b := st.ExportedBytes + st.PendingBytes; st.Bytes > b {
		st.EvictedBytes = st.Bytes - b
	}
	c.stats = st
	return nil
}

// Stats returns the FlowConn's counters as of the last ReadFlows or Flush
// (the kernel's totals are read with the table, so that they agree with
// it), with the socket's PACKET_STATISTICS read now.
func (c *FlowConn) Stats() (FlowStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return FlowStats{}, fmt.Errorf("read statistics: %w", ErrClosed)
	}
	if err := c.sock.stats(&c.stats.Socket); err != nil {
		return FlowStats{}, fmt.Errorf("read statistics: %w", err)
	}
	return c.stats, nil
}

// Close closes the socket and the maps; flows not yet read are lost (call
// Flush first to have their records). Close is idempotent: later calls
// return nil.
func (c *FlowConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Swap(true) {
		return nil
	}
	if err := c.release(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

func (c *FlowConn) release() error {
	var err error
	if c.sock != nil {
		err = c.sock.close()
	}
	for _, m := range []*Map{c.flows, c.counters} {
		if m != nil {
			m.Close()
		}
	}
	return err
}
