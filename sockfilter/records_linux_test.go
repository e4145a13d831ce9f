package sockfilter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// recordVeth listens for records with cfg on end A of a new veth pair and
// returns the RecordConn and a sender of frames out of end B.
func recordVeth(t *testing.T, filter asm.Instructions, cfg *RecordConfig) (*RecordConn, func([]byte)) {
	t.Helper()
	v := testutil.NewVeth(t)
	var rc *RecordConn
	var send func([]byte)
	v.NS.Do(t, func() {
		var err error
		if rc, err = ListenRecords(v.A, filter, cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rc.Close() })
		send = frameSender(t, v.B)
	})
	return rc, send
}

// TestRecordsLost fills the record buffer without reading it and checks
// that every frame is either read or counted lost: exactly.
func TestRecordsLost(t *testing.T) {
	testutil.RequirePrivileged(t)
	page := os.Getpagesize()
	tests := []struct {
		name string
		cfg  RecordConfig
		fits int // records the buffer holds
	}{
		{"ringbuf", RecordConfig{RingSize: page, Watermark: -1}, page / 112},
		{"perf", RecordConfig{Perf: true, PerfBufferSize: page, Watermark: -1}, 0},
	}
	frame := testutil.NamedFrame(t, "udp4").Data
	const sent = 500
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, send := recordVeth(t, nil, &tt.cfg)
			if rc.PerfBuffers() != tt.cfg.Perf {
				t.Fatalf("PerfBuffers() = %v", rc.PerfBuffers())
			}
			pinned(t, func() {
				for range sent {
					send(frame)
				}
			})
			time.Sleep(50 * time.Millisecond)
			recs := kernelRecords(t, rc, 100*time.Millisecond)
			st, err := rc.Stats()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d read, %+v", len(recs), st)
			if uint64(len(recs))+st.Lost != sent || st.Records != uint64(len(recs)) {
				t.Errorf("%d records read, %d counted lost, of %d frames", len(recs), st.Lost, sent)
			}
			if tt.fits > 0 && len(recs) != tt.fits {
				t.Errorf("%d records read from a ring of %d bytes; want %d", len(recs), page, tt.fits)
			}
			if st.Lost == 0 {
				t.Error("no record lost: the buffer did not fill up")
			}
		})
	}
}

// TestRecordsNoAllocs pins NextRecords at zero allocations while records
// are waiting, with and without infos.
func TestRecordsNoAllocs(t *testing.T) {
	testutil.RequirePrivileged(t)
	rc, send := recordVeth(t, nil, nil)
	frame := testutil.NamedFrame(t, "tcp4").Data
	for range 1000 {
		send(frame)
	}
	time.Sleep(50 * time.Millisecond)
	recs := make([]packet.Record, 4)
	infos := make([]packet.Info, 4)
	rc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, withInfos := range []bool{true, false} {
		var in []packet.Info
		if withInfos {
			in = infos
		}
		allocs := testing.AllocsPerRun(100, func() {
			if n, err := rc.NextRecords(recs, in); err != nil || n == 0 {
				t.Fatal(n, err)
			}
		})
		if allocs != 0 {
			t.Errorf("NextRecords (infos %v): %v allocations a call; want 0", withInfos, allocs)
		}
	}
}

// TestRecordsClose checks that Close wakes a blocked read with ErrClosed,
// is idempotent, and that the methods fail with ErrClosed afterwards.
func TestRecordsClose(t *testing.T) {
	testutil.RequirePrivileged(t)
	rc, _ := recordVeth(t, nil, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := rc.NextRecords(make([]packet.Record, 8), nil)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("blocked NextRecords: %v; want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a blocked NextRecords")
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := rc.NextRecords(make([]packet.Record, 1), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("NextRecords after Close: %v", err)
	}
	if _, err := rc.NextRecords(nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("empty NextRecords after Close: %v", err)
	}
	if _, err := rc.Stats(); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats after Close: %v", err)
	}
	if err := rc.SetReadDeadline(time.Now()); !errors.Is(err, ErrClosed) {
		t.Errorf("SetReadDeadline after Close: %v", err)
	}
}

// TestRecordsDeadlineContext checks the read deadline and the context of
// NextRecordsContext, and that records below the watermark are read
// within the timeout.
func TestRecordsDeadlineContext(t *testing.T) {
	testutil.RequirePrivileged(t)
	rc, send := recordVeth(t, nil, &RecordConfig{Timeout: 20 * time.Millisecond})
	recs := make([]packet.Record, 8)

	rc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := rc.NextRecords(recs, nil); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("NextRecords with nothing to read: %v; want a deadline error", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("deadline passed after %v", d)
	}
	rc.SetReadDeadline(time.Time{})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := rc.NextRecordsContext(ctx, recs, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NextRecordsContext: %v; want context.DeadlineExceeded", err)
	}
	// A record now, one of 112 bytes in a ring of 4 MiB: far below the
	// watermark, so only the timeout wakes the reader.
	send(testutil.NamedFrame(t, "udp4").Data)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	start = time.Now()
	n, err := rc.NextRecordsContext(ctx2, recs, nil)
	if err != nil || n != 1 || recs[0].Proto != packet.ProtoUDP {
		t.Fatalf("NextRecordsContext = %d, %v (%+v)", n, err, recs[0])
	}
	t.Logf("a record below the watermark read after %v", time.Since(start))
}

// TestRecordsFilterSplice runs the record program with compiled filters in
// front of it on generated frames through BPF_PROG_TEST_RUN: it writes a
// record exactly for the frames the filter alone accepts. Each expression
// costs a verification of the whole program (about 0.1 s): with -short
// it takes one expression in four.
func TestRecordsFilterSplice(t *testing.T) {
	testutil.RequirePrivileged(t)
	frames := testutil.GenFrames(16, 400)
	for i, expr := range testutil.Expressions(t) {
		if testing.Short() && i%4 != 0 {
			continue
		}
		insns, err := pcapfilter.Compile(expr, packet.LinkEthernet)
		if err != nil {
			continue // expressions the compiler refuses have their own tests
		}
		plain, err := Load(insns, nil)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		rig := newRecordRig(t, insns, packet.LinkEthernet, 1<<20)
		diffs := 0
		for _, f := range frames {
			v, err := plain.Test(f, packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			_, _, got, err := rig.run(t, f)
			if err != nil {
				t.Fatal(err)
			}
			if got != (v != 0) {
				diffs++
			}
		}
		plain.Close()
		if diffs != 0 {
			t.Errorf("%q: %d of %d frames recorded where the filter's verdict says otherwise", expr, diffs, len(frames))
		}
	}
}

// TestListenRecordsErrors checks the configuration and filter errors.
func TestListenRecordsErrors(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	tests := []struct {
		name   string
		ifname string
		filter asm.Instructions
		cfg    *RecordConfig
		want   string
	}{
		{"no interface", "pbnone0", nil, nil, "no such network interface"},
		{"ring size", "lo", nil, &RecordConfig{RingSize: 5000}, "power-of-two multiple of the page size"},
		{"watermark", "lo", nil, &RecordConfig{Watermark: 1 << 30}, "watermark"},
		{"timeout", "lo", nil, &RecordConfig{Timeout: -time.Second}, "negative"},
		{"r6", "lo", asm.Instructions{asm.Mov.Imm(asm.R6, 0), asm.Mov.Imm(asm.R0, -1), asm.Exit()}, nil, "writes r6"},
		{"label", "lo", asm.Instructions{asm.Mov.Imm(asm.R0, -1).WithLabel("kparse.x"), asm.Exit()}, nil, "label"},
		{"refused filter", "lo", asm.Instructions{asm.LoadMem(asm.R0, asm.R2, 0, asm.Word), asm.Exit()}, nil, "the filter: load program: insn 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			ns.Do(t, func() {
				var rc *RecordConn
				if rc, err = ListenRecords(tt.ifname, tt.filter, tt.cfg); err == nil {
					rc.Close()
				}
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ListenRecords: %v; want an error saying %q", err, tt.want)
			}
		})
	}
	var err error
	ns.Do(t, func() { _, err = ListenRecords("pbnone0", nil, nil) })
	if !errors.Is(err, unix.ENODEV) {
		t.Errorf("missing interface: %v; want ENODEV", err)
	}
}

// TestRecordsTimeoutWakes sends a record to a reader that is asleep, five
// times: each time only the timeout can wake it, for the record is far
// below the watermark. (A timerfd that is not read wakes an epoll set's
// poller once only: this is the test of the reader reading it.)
func TestRecordsTimeoutWakes(t *testing.T) {
	testutil.RequirePrivileged(t)
	rc, send := recordVeth(t, nil, &RecordConfig{Timeout: 10 * time.Millisecond})
	frame := testutil.NamedFrame(t, "udp4").Data
	recs := make([]packet.Record, 8)
	for i := range 5 {
		got := make(chan error, 1)
		go func() {
			rc.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := rc.NextRecords(recs, nil)
			if err == nil && n != 1 {
				err = fmt.Errorf("%d records", n)
			}
			got <- err
		}()
		time.Sleep(50 * time.Millisecond) // the reader sleeps through a few ticks
		start := time.Now()
		send(frame)
		if err := <-got; err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("record %d read %v after it was sent; the timeout is 10 ms", i, d)
		}
	}
}

// TestRecordsFilterLoads runs a filter that reads every offset of the
// first 84 bytes of the frame with legacy loads of each size, relative to
// the link-layer header, and hashes what it reads: it accepts the frame if
// the hash is the one Go computes from the frame. The loads the first copy
// of the frame covers read the copy (see kparse's hoist.go), the others
// run as legacy loads, which end the program on a frame too short: a
// record must come exactly for the frames long enough for every load, all
// values right.
func TestRecordsFilterLoads(t *testing.T) {
	testutil.RequirePrivileged(t)
	const span = 84
	filter := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1), asm.Mov.Imm(asm.R8, 0)}
	for _, size := range []asm.Size{asm.Byte, asm.Half, asm.Word} {
		for k := 0; k+int(size) <= span; k++ {
			filter = append(filter,
				skb.LoadLink(uint16(k), size),
				asm.Mul.Imm(asm.R8, 31),
				asm.Add.Reg(asm.R8, asm.R0),
			)
		}
	}
	hash := func(frame []byte) (uint64, bool) {
		var h uint64
		for _, size := range []int{1, 2, 4} {
			for k := 0; k+size <= span; k++ {
				if k+size > len(frame) {
					return 0, false
				}
				var v uint64
				for _, c := range frame[k : k+size] {
					v = v<<8 | uint64(c)
				}
				h = h*31 + v
			}
		}
		return h, true
	}
	frames := [][]byte{testutil.FrameCopy(t, "ext6_tcp"), testutil.FrameCopy(t, "qinq_udp4")}
	// Cut short: an 802.1ad frame, whose EtherType the test run takes at
	// any length.
	// (Each frame costs a verification of the 2,000-instruction program.)
	for _, n := range []int{15, 33, 46, 59} {
		frames = append(frames, testutil.FrameCopy(t, "qinq_udp4")[:n])
	}
	for _, f := range frames {
		want, long := hash(f)
		accept := append(append(asm.Instructions(nil), filter...),
			asm.LoadImm64(asm.R1, int64(want)),
			asm.JEq.Reg(asm.R8, asm.R1, "ok"),
			asm.Mov.Imm(asm.R0, 0),
			asm.Exit(),
			asm.Mov.Imm(asm.R0, -1).WithLabel("ok"),
			asm.Exit(),
		)
		rig := newRecordRig(t, accept, packet.LinkEthernet, 1<<16)
		_, _, got, err := rig.run(t, f)
		if err != nil {
			t.Fatal(err)
		}
		if got != long {
			t.Errorf("frame of %d bytes: record %v, want %v", len(f), got, long)
		}
	}
}

// TestRecordsDirections counts the records of frames sent from one end of
// a veth pair to the other, on both ends, for each Direction: the frames
// a RecordConn is not to see are dropped in the kernel (by
// PACKET_IGNORE_OUTGOING, or by the program's test of skb->pkt_type for
// received frames); and on lo, where each packet is sent and received,
// once or, with LoopbackOutgoing, twice.
func TestRecordsDirections(t *testing.T) {
	testutil.RequirePrivileged(t)
	const sent = 20
	frame := testutil.NamedFrame(t, "udp4").Data
	tests := []struct {
		end  string // "sending", "receiving" or "lo"
		cfg  RecordConfig
		want int
	}{
		{"receiving", RecordConfig{}, sent},
		{"receiving", RecordConfig{Direction: DirectionIn}, sent},
		{"receiving", RecordConfig{Direction: DirectionOut}, 0},
		{"sending", RecordConfig{}, sent},
		{"sending", RecordConfig{Direction: DirectionIn}, 0},
		{"sending", RecordConfig{Direction: DirectionOut}, sent},
		{"lo", RecordConfig{}, sent},
		{"lo", RecordConfig{LoopbackOutgoing: true}, 2 * sent},
		{"lo", RecordConfig{Direction: DirectionOut}, sent},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v/loopback-outgoing=%v", tt.end, tt.cfg.Direction, tt.cfg.LoopbackOutgoing), func(t *testing.T) {
			v := testutil.NewVeth(t)
			var rc *RecordConn
			var send func([]byte)
			v.NS.Do(t, func() {
				ifname := map[string]string{"sending": v.B, "receiving": v.A, "lo": "lo"}[tt.end]
				var err error
				if rc, err = ListenRecords(ifname, nil, &tt.cfg); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { rc.Close() })
				if tt.end == "lo" {
					send = frameSender(t, "lo")
				} else {
					send = frameSender(t, v.B)
				}
			})
			for range sent {
				send(frame)
			}
			recs := kernelRecords(t, rc, 100*time.Millisecond)
			if len(recs) != tt.want {
				t.Errorf("%d records; want %d", len(recs), tt.want)
			}
			for _, r := range recs {
				if tt.cfg.Direction != DirectionInOut && r.Direction.Incoming() == (tt.cfg.Direction == DirectionOut) {
					t.Fatalf("record of direction %v with %v", r.Direction, tt.cfg.Direction)
				}
			}
		})
	}
	t.Run("any", func(t *testing.T) {
		_, err := ListenRecords(AnyInterface, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "not supported") {
			t.Errorf("ListenRecords(any): %v", err)
		}
	})
	t.Run("bad direction", func(t *testing.T) {
		if _, err := ListenRecords("lo", nil, &RecordConfig{Direction: 7}); err == nil {
			t.Error("direction 7 taken")
		}
		if _, err := ListenRecords("lo", nil, &RecordConfig{Direction: DirectionIn, LoopbackOutgoing: true}); err == nil {
			t.Error("LoopbackOutgoing with DirectionIn taken")
		}
	})
}

// TestRecordsFlowsNoLeak opens and closes RecordConns (ring and perf
// buffers) and FlowConns, and checks that no file descriptor or mapping
// is left behind. (Each cycle verifies a program of 1,000 instructions,
// so the cycles are few.)
func TestRecordsFlowsNoLeak(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	count := func(dir string) int {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	// The mappings of BPF maps and perf events (the runtime's own come
	// and go as its heap grows).
	maps := func() int {
		b, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, "bpf") || strings.Contains(line, "perf_event") {
				n++
			}
		}
		return n
	}
	cycle := func() {
		ns.Do(t, func() {
			for _, cfg := range []*RecordConfig{nil, {Perf: true}} {
				rc, err := ListenRecords("lo", nil, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := rc.Close(); err != nil {
					t.Fatal(err)
				}
			}
			fc, err := ListenFlows("lo", nil, &FlowConfig{PerCPU: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := fc.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	cycle() // the clock probes, the runtime's first threads
	fds, mapped := count("/proc/self/fd"), maps()
	var rc *RecordConn
	ns.Do(t, func() {
		var err error
		if rc, err = ListenRecords("lo", nil, nil); err != nil {
			t.Fatal(err)
		}
	})
	if n := maps(); n <= mapped {
		t.Fatalf("an open RecordConn's ring buffer is not in /proc/self/maps (%d mappings, %d before)", n, mapped)
	}
	rc.Close()
	for range 10 {
		cycle()
	}
	if n := count("/proc/self/fd"); n != fds {
		t.Errorf("%d file descriptors after 10 cycles, %d before", n, fds)
	}
	if n := maps(); n != mapped {
		t.Errorf("%d mappings of maps and perf events after 10 cycles, %d before", n, mapped)
	}
}
