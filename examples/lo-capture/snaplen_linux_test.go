package main

import (
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

// TestWithSnaplenKernel runs each expression's program and its -s 60
// rewrite in the kernel (BPF_PROG_TEST_RUN) on the corpus and random
// frames: the rewrite accepts the same frames, returning 60 for each.
func TestWithSnaplenKernel(t *testing.T) {
	testutil.RequirePrivileged(t)
	var frames [][]byte
	for _, f := range testutil.FramesOf(t, testutil.LinkEthernet) {
		frames = append(frames, f.Data)
	}
	frames = append(frames, testutil.GenFrames(11, 200)...)
	accepted := 0
	for _, expr := range testutil.Expressions(t) {
		insns, err := pcapfilter.Compile(expr, packet.LinkEthernet)
		if err != nil {
			continue
		}
		cut, err := withSnaplen(insns, 60)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		p1, err := sockfilter.Load(insns, nil)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		t.Cleanup(func() { p1.Close() })
		p2, err := sockfilter.Load(cut, nil)
		if err != nil {
			t.Fatalf("%q -s 60: %v", expr, err)
		}
		t.Cleanup(func() { p2.Close() })
		for i, f := range frames {
			v1, err1 := p1.Test(f, packet.LinkEthernet)
			v2, err2 := p2.Test(f, packet.LinkEthernet)
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("%q frame %d: errors %v and %v", expr, i, err1, err2)
			}
			if err1 != nil {
				continue
			}
			want := uint32(0)
			if v1 != 0 {
				want = 60
				accepted++
			}
			if v2 != want {
				t.Errorf("%q frame %d: verdict %d, -s 60 gives %d, want %d", expr, i, v1, v2, want)
			}
		}
	}
	if accepted == 0 {
		t.Error("no frame accepted by any expression")
	}
}
