package pcapfilter

import (
	"errors"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// spliceCorpus returns the packets the differential test runs, as the
// oracle sees them: for Ethernet, the generated frames (GenFrames' and
// GenMoreFrames') and the Ethernet frames of testdata/frames; for raw IP,
// what follows the Ethernet header of each of those (IP or not: libpcap's DLT_RAW program decides by the
// version nibble) and the raw IP frames of testdata/frames.
func spliceCorpus(t testing.TB, link packet.LinkType) [][]byte {
	eth := append(testutil.GenFrames(1, exprDiffFrames), testutil.GenMoreFrames(2, exprDiffFrames)...)
	for _, f := range testutil.FramesOf(t, testutil.LinkEthernet) {
		eth = append(eth, f.Data)
	}
	if link == packet.LinkEthernet {
		return eth
	}
	var raw [][]byte
	for _, f := range eth {
		if len(f) >= wire.EthernetHeaderLen {
			raw = append(raw, f[wire.EthernetHeaderLen:])
		}
	}
	for _, f := range testutil.FramesOf(t, testutil.LinkRawIP) {
		raw = append(raw, f.Data)
	}
	return raw
}

// TestSpliceDifferential splices every expression of the list into
// programs of each access mode (spliceTargets: tc and XDP with direct
// access, tc with bpf_skb_load_bytes and with bpf_probe_read_kernel,
// cgroup_skb; Ethernet and raw IP starts), runs them under
// BPF_PROG_TEST_RUN on every packet of the corpus and compares their
// verdict with libpcap's program for the same expression and link type
// in golang.org/x/net/bpf's VM: they must agree on every packet. An
// expression CompileSplice refuses for a raw IP start (ErrLinkLayer) must
// be one libpcap refuses too, or whose program rejects every packet.
func TestSpliceDifferential(t *testing.T) {
	testutil.RequirePrivileged(t)
	layout, cast, ok := kernelTargets()
	if !ok {
		t.Skip("no kernel BTF, or no kfunc bpf_cast_to_kern_ctx (Linux 6.2): the ProbeReadKernel targets cannot run")
	}
	targets := spliceTargets(layout, cast)
	exprs := testutil.Expressions(t)
	oracles := map[packet.LinkType]*testutil.Libpcap{
		packet.LinkEthernet: testutil.NewLibpcap(t, testutil.LinkEthernet),
		packet.LinkRawIP:    testutil.NewLibpcap(t, testutil.LinkRawIP),
	}
	corpus := map[packet.LinkType][][]byte{
		packet.LinkEthernet: spliceCorpus(t, packet.LinkEthernet),
		packet.LinkRawIP:    spliceCorpus(t, packet.LinkRawIP),
	}
	// want[link][expr][i] is libpcap's verdict on packet i, or nil if
	// libpcap refuses the expression.
	want := map[packet.LinkType]map[string][]bool{}
	for link, lp := range oracles {
		want[link] = map[string][]bool{}
		for _, expr := range exprs {
			classic, err := lp.Compile(expr)
			if err != nil {
				want[link][expr] = nil
				continue
			}
			vm := testutil.ClassicVM(t, classic)
			v := make([]bool, len(corpus[link]))
			for i, p := range corpus[link] {
				v[i] = vm(p) != 0
			}
			want[link][expr] = v
		}
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			runs, refused, short := 0, 0, 0
			for _, expr := range exprs {
				w := want[tg.link][expr]
				insns, err := CompileSplice(expr, tg.link, &tg.opts)
				if errors.Is(err, ErrLinkLayer) && tg.link == packet.LinkRawIP {
					refused++
					for i, m := range w {
						if m {
							t.Errorf("%q: refused with %v, but libpcap's DLT_RAW program accepts packet %d (% x)", expr, err, i, corpus[tg.link][i])
							break
						}
					}
					continue
				}
				if err != nil {
					t.Errorf("%q: %v", expr, err)
					continue
				}
				if w == nil {
					t.Errorf("%q: spliced, but libpcap refuses it", expr)
					continue
				}
				prog := tg.wrap(insns)
				fd, err := loadTyped(t, tg.progType, prog)
				if err != nil {
					t.Errorf("%q: %v", expr, err)
					continue
				}
				bad := 0
				for i, p := range corpus[tg.link] {
					data := runInput(tg.link, p)
					ret, err := spliceRun(fd, data)
					if errTooShort(err, data) {
						short++
						continue
					}
					if err != nil {
						t.Fatalf("%q: packet %d (%d bytes): %v", expr, i, len(data), err)
					}
					runs++
					wantRet := tg.noMatch
					if w[i] {
						wantRet = tg.match
					}
					if ret != wantRet {
						if bad++; bad <= 3 {
							t.Errorf("%q: packet %d (% x): returns %d, want %d (libpcap's verdict %v)", expr, i, p, ret, wantRet, w[i])
						}
					}
				}
				if bad > 0 {
					t.Logf("%q: %d disagreements; the program:\n%v", expr, bad, prog)
				}
			}
			t.Logf("%d expressions × %d packets: %d runs agree with libpcap, %d expressions refused for a raw IP start, %d packets too short to run", len(exprs), len(corpus[tg.link]), runs, refused, short)
		})
	}
}
