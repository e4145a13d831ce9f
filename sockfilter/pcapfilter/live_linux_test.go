package pcapfilter_test

import (
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

// TestCompileLiveSocket attaches `inbound`, `outbound` and `ifindex`
// filters to packet sockets on lo, in a network namespace of the test's
// own, and sends UDP datagrams to 127.0.0.1: a packet socket on lo that
// keeps the outgoing copies (Config.LoopbackOutgoing) sees each twice, sent (PACKET_OUTGOING) and received (PACKET_HOST), so
// `outbound` and `inbound` each pass one copy, `ifindex` of lo both and
// of another interface none.
func TestCompileLiveSocket(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetNS(t)
	const port, sends = 47809, 5
	ns.Do(t, func() {
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		udp := "udp dst port " + strconv.Itoa(port)
		cases := []struct {
			expr string
			want int
			dir  packet.Direction // of every frame seen, if known
		}{
			{udp, 2 * sends, packet.DirectionUnknown},
			{"outbound and " + udp, sends, packet.DirectionOutgoing},
			{udp + " and inbound", sends, packet.DirectionHost},
			{"ifindex " + strconv.Itoa(lo.Index) + " and " + udp, 2 * sends, packet.DirectionUnknown},
			{"ifindex " + strconv.Itoa(lo.Index+1000) + " and " + udp, 0, packet.DirectionUnknown},
			{"not outbound and not ifindex 0 and " + udp, sends, packet.DirectionHost},
		}
		conns := make([]*sockfilter.Conn, len(cases))
		for i, c := range cases {
			insns, err := pcapfilter.Compile(c.expr, packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			prog, err := sockfilter.Load(insns, nil)
			if err != nil {
				t.Fatalf("%s: %v", c.expr, err)
			}
			defer prog.Close()
			conns[i], err = sockfilter.Listen("lo", prog, &sockfilter.Config{LoopbackOutgoing: true})
			if err != nil {
				t.Fatalf("%s: %v", c.expr, err)
			}
			defer conns[i].Close()
		}
		r, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		s, err := net.Dial("udp4", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for range sends {
			if _, err := s.Write([]byte("purebpf")); err != nil {
				t.Fatal(err)
			}
		}
		buf := make([]byte, 2048)
		for i, c := range cases {
			got := 0
			conns[i].SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			for {
				_, info, err := conns[i].ReadFrame(buf)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatalf("%s: %v", c.expr, err)
				}
				got++
				if c.dir != packet.DirectionUnknown && info.Direction != c.dir {
					t.Errorf("%s: a frame %v", c.expr, info.Direction)
				}
			}
			if got != c.want {
				t.Errorf("%s: %d frames, want %d", c.expr, got, c.want)
			}
		}
	})
}
