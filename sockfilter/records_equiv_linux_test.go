package sockfilter

import (
	"fmt"

	"golang.org/x/sys/unix"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/internal/kparse"
	"github.com/purebpf/purebpf/sockfilter/internal/ringbuf"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// recordRig runs the record program on frames through BPF_PROG_TEST_RUN
// and reads the records from its ring buffer.
type recordRig struct {
	link     packet.LinkType
	prog     *Program
	records  *Map
	counters *Map
	ring     *ringbuf.Ring
	clk      kparse.Clock
}

// newRecordRig loads the record program for link with filter in front,
// made for the test run: the Ethernet header is before skb->data there.
func newRecordRig(t testing.TB, filter asm.Instructions, link packet.LinkType, ringSize uint32) *recordRig {
	base := 0
	if link == packet.LinkEthernet {
		base = wire.EthernetHeaderLen
	}
	return newRecordRigBase(t, filter, link, base, ringSize)
}

// newRecordRigBase loads the record program made for frames base bytes
// before skb->data: 0 is the program a live socket runs, which the test
// run runs on the frame behind an outer Ethernet header (see wrapFrame).
func newRecordRigBase(t testing.TB, filter asm.Instructions, link packet.LinkType, base int, ringSize uint32) *recordRig {
	t.Helper()
	r := &recordRig{link: link}
	var err error
	if r.records, err = NewMap(&MapSpec{Type: RingBuf, MaxEntries: ringSize}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.records.Close() })
	if r.counters, err = NewMap(&MapSpec{Type: PerCPUArray, ValueSize: kparse.RecordCountersSize, MaxEntries: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.counters.Close() })
	clock, err := kernelClock(0, preciseClocks...)
	if err != nil {
		t.Fatal(err)
	}
	if r.clk, err = clockOffset(clock); err != nil {
		t.Fatal(err)
	}
	if filter == nil {
		filter = acceptEvery
	}
	if r.prog, err = loadRecordProgram(filter, link, base, 0, r.records, r.counters, false, 0, clock); err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() { r.prog.Close() })
	fd, err := dupFD(r.records)
	if err != nil {
		t.Fatal(err)
	}
	mapping, ring, err := ringbuf.Map(fd, int(ringSize))
	if err != nil {
		t.Fatal(err)
	}
	r.ring = ring
	t.Cleanup(func() { mapping.Close(); unix.Close(fd) })
	return r
}

// run runs the program on frame and returns the record it wrote, if any.
// A frame the test run refuses gives an error.
func (r *recordRig) run(t testing.TB, frame []byte) (rec packet.Record, info packet.Info, ok bool, err error) {
	t.Helper()
	v, err := r.prog.Test(frame, r.link)
	if err != nil {
		return rec, info, false, err
	}
	if v != 0 {
		t.Fatalf("the record program returned %d, not 0", v)
	}
	// The record is committed before the run returns.
	raw, ok, err := r.ring.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return rec, info, false, nil
	}
	defer r.ring.Release()
	if err := kparse.Decode(raw, r.clk, &rec, &info); err != nil {
		t.Fatal(err)
	}
	if _, more, _ := r.ring.Next(); more {
		t.Fatal("the program wrote two records for a frame")
	}
	return rec, info, true, nil
}

// wrapFrame puts frame behind an Ethernet header of EtherType 0x88b5 (IEEE
// local experimental), which the test run consumes: skb->data is then the
// frame's first byte and skb->len its length, as on a live SOCK_RAW
// packet socket, and the program a live socket runs (Base 0) sees the
// frame as it would live. The test run takes a frame of any length so.
func wrapFrame(frame []byte) []byte {
	return append(append(make([]byte, wire.EtherTypeOff), 0x88, 0xb5), frame...)
}

// runLive runs the live socket's program (a rig of Base 0) on frame, as
// run does the test run's.
func (r *recordRig) runLive(t testing.TB, frame []byte) (packet.Record, packet.Info, bool, error) {
	return r.run(t, wrapFrame(frame))
}

// recordDiff lists the fields in which a and b differ.
func recordDiff(a, b packet.Record) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var diffs []string
	for i := range va.NumField() {
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		if !reflect.DeepEqual(fa, fb) {
			diffs = append(diffs, fmt.Sprintf("%s: kernel %v, Parse %v", va.Type().Field(i).Name, fa, fb))
		}
	}
	return strings.Join(diffs, "; ")
}

// onlyParsed clears the fields Parse does not know without an Info.
func onlyParsed(r packet.Record) packet.Record {
	r.Time, r.Ifindex, r.Direction = time.Time{}, 0, packet.DirectionUnknown
	return r
}

// TestRecordsEquivalence runs the record program on every frame of the
// corpus (Ethernet and raw IP; the cooked captures are no link a socket
// reads) and on generated frames, through BPF_PROG_TEST_RUN, and compares
// each record, field by field, with packet.Parse's of the same bytes: the
// program made for the test run, and the very program a live socket runs,
// on the frames behind an outer Ethernet header (wrapFrame), so that it
// also meets frames the test run refuses bare (an IPv4 EtherType with
// less than an IPv4 header). The test run sees a frame as a whole frame of
// its bytes, so a frame the corpus has captured short is compared as such.
func TestRecordsEquivalence(t *testing.T) {
	testutil.RequirePrivileged(t)
	cases := []struct {
		link   packet.LinkType
		frames [][]byte
		names  []string
	}{{link: packet.LinkEthernet}, {link: packet.LinkRawIP}}
	for i := range cases {
		for _, f := range testutil.FramesOf(t, uint16(cases[i].link)) {
			cases[i].frames = append(cases[i].frames, f.Data)
			cases[i].names = append(cases[i].names, f.Name)
		}
	}
	for j, f := range testutil.GenFrames(14, 5000) {
		cases[0].frames = append(cases[0].frames, f)
		cases[0].names = append(cases[0].names, fmt.Sprint("generated ", j))
	}
	// Every prefix of frames that reach each layer: a frame cut at every
	// byte (the test run refuses the shortest bare).
	for _, name := range []string{"tcp4", "ipopt_tcp4", "udp6", "ext6_tcp", "ah6_udp", "frag6_first", "frag4_first", "qinq_udp4", "vlan_tcp4", "arp_request", "icmp4_echo", "icmp6_echo"} {
		f := testutil.NamedFrame(t, name).Data
		for n := 1; n < len(f); n++ {
			cases[0].frames = append(cases[0].frames, f[:n])
			cases[0].names = append(cases[0].names, fmt.Sprintf("%s cut to %d bytes", name, n))
		}
	}
	for _, c := range cases {
		for _, live := range []bool{false, true} {
			name := c.link.String() + "/test run's program"
			if live {
				name = c.link.String() + "/live socket's program"
			}
			t.Run(name, func(t *testing.T) { equivalence(t, c.link, live, c.frames, c.names) })
		}
	}
}

// equivalence runs the test run's program, or the live socket's behind
// an outer header, on frames and compares the records with Parse's.
func equivalence(t *testing.T, link packet.LinkType, live bool, frames [][]byte, names []string) {
	base := 0
	if !live && link == packet.LinkEthernet {
		base = wire.EthernetHeaderLen
	}
	rig := newRecordRigBase(t, nil, link, base, 1<<16)
	run := rig.run
	if live {
		// Behind the outer header the test run sees an Ethernet frame
		// whose data is the whole frame, of any link type.
		rig.link = packet.LinkEthernet
		run = rig.runLive
	}
	diffs, refused := 0, 0
	for i, frame := range frames {
		got, _, ok, err := run(t, frame)
		if err != nil {
			refused++
			continue
		}
		if !ok {
			t.Fatalf("%s: no record", names[i])
		}
		var want packet.Record
		packet.Parse(frame, link, nil, &want)
		if onlyParsed(got) != want {
			diffs++
			if diffs <= 20 {
				t.Errorf("%s (% x): %s", names[i], frame, recordDiff(onlyParsed(got), want))
			}
		}
	}
	t.Logf("%d frames, %d refused by the test run, %d differences", len(frames), refused, diffs)
	if diffs != 0 {
		t.Errorf("%d of %d records differ from packet.Parse's", diffs, len(frames)-refused)
	}
	if live && refused != 0 {
		t.Errorf("the test run refused %d wrapped frames", refused)
	}
}
