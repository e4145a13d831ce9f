package sockfilter

import (
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// BenchmarkLoad measures a Load and Close of the UDP port filter: the
// assembler, the verifier and the JIT.
func BenchmarkLoad(b *testing.B) {
	testutil.RequirePrivileged(b)
	b.ReportAllocs()
	for b.Loop() {
		p, err := Load(udpPort53, nil)
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}

// BenchmarkLoadRefused measures a Load the verifier refuses: two loads,
// the second with a log, and the log's parsing.
func BenchmarkLoadRefused(b *testing.B) {
	testutil.RequirePrivileged(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(refusedIPv4, nil); err == nil {
			b.Fatal("loaded")
		}
	}
}

// BenchmarkTest measures one BPF_PROG_TEST_RUN of the UDP port filter.
func BenchmarkTest(b *testing.B) {
	testutil.RequirePrivileged(b)
	p := mustLoad(b, udpPort53, nil)
	frame := udpFrame(53, "query")
	b.ReportAllocs()
	for b.Loop() {
		if v, err := p.Test(frame, packet.LinkEthernet); err != nil || v == 0 {
			b.Fatal(v, err)
		}
	}
}
