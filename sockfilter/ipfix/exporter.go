package ipfix

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"time"

	"github.com/purebpf/purebpf/sockfilter/flow"
)

// The Exporter's defaults.
const (
	// DefaultDatagramSize is the largest message sent in a datagram when
	// Config.MaxMessageSize is 0: it and the UDP and IP headers (28 or 48
	// octets) fit an Ethernet MTU of 1500 with room for a tunnel.
	DefaultDatagramSize = 1400
	// MaxMessageSize is the largest IPFIX message, its Length field's
	// limit, and the default for a stream.
	MaxMessageSize = math.MaxUint16
	// DefaultTemplateRefresh and DefaultTemplateRefreshMessages are how
	// often an Exporter sends its templates again in datagrams: every 30
	// seconds, and at least every 20 messages.
	DefaultTemplateRefresh         = 30 * time.Second
	DefaultTemplateRefreshMessages = 20
)

// Config configures an Exporter. The zero Config, and a nil *Config, mean
// the defaults.
type Config struct {
	// ObservationDomain is the Observation Domain ID of the messages
	// (RFC 7011 §3.1): it tells apart, at a collector, the exporters that
	// share a source address. 0 is allowed but reserved for exporters that
	// have no domain to name.
	ObservationDomain uint32
	// Datagram makes the Exporter send each message in one Write, as a UDP
	// datagram, and send its templates again every TemplateRefresh and
	// TemplateRefreshMessages (RFC 7011 §8.4). It is implied when the
	// writer is a net.Conn whose local address is on a datagram network
	// ("udp", "udp4", "udp6", "unixgram"). Without it, the output is a
	// stream — a file (RFC 5655) or a TCP connection (RFC 7011 §10.4) —
	// and carries the templates once, in its first message.
	Datagram bool
	// MaxMessageSize is the largest message the Exporter writes, in
	// octets, IPFIX header included: DefaultDatagramSize for datagrams,
	// MaxMessageSize for streams if 0. For UDP it must leave room for the
	// UDP and IP headers within the path MTU (RFC 7011 §10.3.3). It must
	// hold the message header and the template set: at least 200.
	MaxMessageSize int
	// TemplateRefresh is the longest time between two messages that
	// carry the templates, in datagram mode; DefaultTemplateRefresh if 0.
	TemplateRefresh time.Duration
	// TemplateRefreshMessages is the most messages sent from one that
	// carries the templates to the next, in datagram mode;
	// DefaultTemplateRefreshMessages if 0.
	TemplateRefreshMessages int
	// Now returns the time for the messages' Export Time and for
	// TemplateRefresh; time.Now if nil.
	Now func() time.Time
}

// Exporter writes flow records as IPFIX messages (RFC 7011) to an
// io.Writer: a file, a TCP connection, or a UDP socket (a net.Conn from
// net.Dial("udp", "collector:4739"), the IANA port for IPFIX over UDP).
//
// Each record goes in the data set of the template of its flow's family:
// TemplateIPv4, TemplateIPv6, or TemplateOther for flows that are not IP.
// The templates are sent before any record, in the first message, and in
// datagram mode again every TemplateRefresh and TemplateRefreshMessages,
// at the head of a message. Records are packed into messages of at most
// MaxMessageSize octets, a record never split, with no padding: the sets
// are as long as their records (padding is optional in RFC 7011 §3.3.1,
// and nfcapd takes up to 3 octets of it only).
//
// The header's Sequence Number is the number of data records sent in
// earlier messages of the Exporter (its observation domain), modulo
// 2^32 (RFC 7011 §3.1). A message whose write failed counts as sent, so a
// collector sees the records lost as a gap in the sequence.
//
// Flow.Bytes is sent as octetDeltaCount. RFC 7012 counts that from the IP
// header; a flow table that counts frames on the wire, link-layer header
// included, exports those lengths.
//
// An Exporter does not own its writer: the caller closes it. It is not
// safe for concurrent use; records are buffered until a message is full
// or Flush is called.
type Exporter struct {
	w        io.Writer
	domain   uint32
	datagram bool
	max      int
	refresh  time.Duration
	refreshN int
	now      func() time.Time

	sets     [len(templates)][]byte // the pending records of each template
	records  [len(templates)]int
	size     int    // the length of a message holding the pending records (and the templates, if withTpl)
	withTpl  bool   // the message being built has room for the templates
	msg      []byte // the message being written
	tmplSet  []byte // the template set, encoded once
	seq      uint32 // data records sent before the next message
	sinceTpl int    // messages since the last one with templates; -1 before the first
	lastTpl  time.Time
	err      error // the first write error of a stream, sticky
	stats    Stats
}

// Stats counts what an Exporter has written.
type Stats struct {
	// Messages, Records and Bytes count the messages written, the data
	// records in them and their octets.
	Messages, Records, Bytes uint64
	// TemplateSets counts the messages that carried the templates.
	TemplateSets uint64
	// Errors counts the failed writes; the records of a failed message
	// are in Records.
	Errors uint64
}

var (
	// minMessageSize is the least MaxMessageSize: a message header and
	// the template set.
	minMessageSize = messageHeaderLen + len(appendTemplateSet(nil, templates[:]))
	// recordLens are the lengths of the templates' records.
	recordLens = [len(templates)]int{templates[0].recordLen(), templates[1].recordLen(), templates[2].recordLen()}
)

// NewExporter returns an Exporter writing to w. It writes nothing until
// the first Flush, or until the first message is full.
func NewExporter(w io.Writer, cfg *Config) (*Exporter, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.MaxMessageSize < 0 || c.TemplateRefresh < 0 || c.TemplateRefreshMessages < 0 {
		return nil, fmt.Errorf("ipfix exporter: negative setting in %+v: use 0 for the defaults", c)
	}
	if conn, ok := w.(net.Conn); ok && isDatagram(conn.LocalAddr()) {
		c.Datagram = true
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = MaxMessageSize
		if c.Datagram {
			c.MaxMessageSize = DefaultDatagramSize
		}
	}
	if c.MaxMessageSize < minMessageSize || c.MaxMessageSize > MaxMessageSize {
		return nil, fmt.Errorf("ipfix exporter: message size %d out of range: %d (a header and the templates) to %d", c.MaxMessageSize, minMessageSize, MaxMessageSize)
	}
	e := &Exporter{
		w: w, domain: c.ObservationDomain, datagram: c.Datagram, max: c.MaxMessageSize,
		refresh: c.TemplateRefresh, refreshN: c.TemplateRefreshMessages, now: c.Now,
		size: messageHeaderLen, msg: make([]byte, 0, c.MaxMessageSize),
		tmplSet: appendTemplateSet(nil, templates[:]), sinceTpl: -1,
	}
	if e.refresh == 0 {
		e.refresh = DefaultTemplateRefresh
	}
	if e.refreshN == 0 {
		e.refreshN = DefaultTemplateRefreshMessages
	}
	if e.now == nil {
		e.now = time.Now
	}
	for i := range e.sets {
		e.sets[i] = make([]byte, 0, c.MaxMessageSize)
	}
	return e, nil
}

// isDatagram reports whether a is an address on a datagram network.
func isDatagram(a net.Addr) bool {
	if a == nil {
		return false
	}
	switch a.Network() {
	case "udp", "udp4", "udp6", "unixgram":
		return true
	}
	return false
}

// Stats returns what the Exporter has written so far.
func (e *Exporter) Stats() Stats { return e.stats }

// Sequence returns the Sequence Number the next message will carry: the
// number of data records sent, modulo 2^32.
func (e *Exporter) Sequence() uint32 { return e.seq }

// Add adds f's record to the message being built, and writes the message
// first if f's record does not fit in it. It returns an error, and adds
// nothing, for a flow IPFIX cannot carry (an IPv6 address in an IPv4 flow,
// a time before 1970, an interface index above 2^32-1), or when that write
// fails. It does not allocate.
func (e *Exporter) Add(f *flow.Flow) error {
	if e.err != nil {
		return e.err
	}
	i, err := templateFor(f)
	if err != nil {
		return err
	}
	t := &templates[i]
	need := recordLens[i]
	if e.records[i] == 0 {
		need += setHeaderLen
	}
	if e.size+need > e.max {
		if err := e.Flush(); err != nil {
			return err
		}
		need = setHeaderLen + recordLens[i]
	}
	if e.size == messageHeaderLen && e.size+len(e.tmplSet)+need <= e.max && e.templatesDue(e.now()) {
		// A new message: keep room for the templates at its head. (When
		// they do not fit beside one record, Flush sends them alone.)
		e.withTpl = true
		e.size += len(e.tmplSet)
	}
	e.sets[i] = appendRecord(e.sets[i], t, f)
	e.records[i]++
	e.size += need
	return nil
}

// Flush writes the message being built, if it holds any record, with the
// templates at its head when they are due (in a message of their own when
// they do not fit with the records). For a stream, a write error is
// sticky: the stream is broken, and every later call returns it.
func (e *Exporter) Flush() error {
	if e.err != nil {
		return e.err
	}
	if e.records == [len(templates)]int{} {
		return nil
	}
	now := e.now()
	if e.withTpl {
		return e.write(now, true, true)
	}
	if !e.templatesDue(now) {
		return e.write(now, false, true)
	}
	if e.size+len(e.tmplSet) <= e.max {
		return e.write(now, true, true)
	}
	err := e.write(now, true, false)
	if e.err != nil {
		e.discard()
		return err
	}
	if err2 := e.write(now, false, true); err == nil {
		err = err2
	}
	return err
}

// templatesDue reports whether the next message must carry the templates.
func (e *Exporter) templatesDue(now time.Time) bool {
	if e.sinceTpl < 0 {
		return true
	}
	return e.datagram && (now.Sub(e.lastTpl) >= e.refresh || e.sinceTpl+1 >= e.refreshN)
}

// write writes one message: the templates if tmpl, the pending records if
// data (and then forgets them, sent or not).
func (e *Exporter) write(now time.Time, tmpl, data bool) error {
	m := e.msg[:messageHeaderLen]
	binary.BigEndian.PutUint16(m[0:2], version)
	binary.BigEndian.PutUint32(m[4:8], exportTime(now))
	binary.BigEndian.PutUint32(m[8:12], e.seq)
	binary.BigEndian.PutUint32(m[12:16], e.domain)
	if tmpl {
		m = append(m, e.tmplSet...)
	}
	n := 0
	if data {
		for i := range e.sets {
			if e.records[i] == 0 {
				continue
			}
			m = binary.BigEndian.AppendUint16(m, templates[i].ID)
			m = binary.BigEndian.AppendUint16(m, uint16(setHeaderLen+len(e.sets[i])))
			m = append(m, e.sets[i]...)
			n += e.records[i]
		}
		e.discard()
	}
	binary.BigEndian.PutUint16(m[2:4], uint16(len(m)))
	e.msg = m

	e.seq += uint32(n)
	e.stats.Messages++
	e.stats.Records += uint64(n)
	e.sinceTpl++
	if tmpl {
		e.stats.TemplateSets++
		e.sinceTpl, e.lastTpl = 0, now
	}
	w, err := e.w.Write(m)
	if err == nil && w < len(m) {
		err = io.ErrShortWrite
	}
	if err != nil {
		e.stats.Errors++
		err = fmt.Errorf("ipfix exporter: write message of %d octets: %w", len(m), err)
		if !e.datagram {
			e.err = err
		} else if tmpl {
			e.sinceTpl = -1 // the templates were not sent: send them again
		}
		return err
	}
	e.stats.Bytes += uint64(len(m))
	return nil
}

// discard forgets the pending records.
func (e *Exporter) discard() {
	for i := range e.sets {
		e.sets[i] = e.sets[i][:0]
		e.records[i] = 0
	}
	e.size = messageHeaderLen
	e.withTpl = false
}

// exportTime returns t as the header's Export Time: seconds since 1970,
// modulo 2^32 after 2106 (RFC 7011 §3.1).
func exportTime(t time.Time) uint32 {
	if s := t.Unix(); s > 0 {
		return uint32(s)
	}
	return 0
}
