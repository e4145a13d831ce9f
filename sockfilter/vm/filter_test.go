package vm_test

import (
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// checkForms runs v, which runs socket buffers in the filter form, and
// the same program in the general interpreter on every frame in every
// view, and fails at the first difference.
func checkForms(t *testing.T, name string, v, general *vm.VM, frames [][]byte) {
	t.Helper()
	info := &packet.Info{Ifindex: 3, Direction: packet.DirectionOutgoing, HasVLAN: true, VLANTCI: 0x2064, VLANTPID: 0x88a8, Length: 2000}
	views := []struct {
		name string
		run  func(v *vm.VM, f []byte) (uint32, error)
	}{
		{"RunFrame", func(v *vm.VM, f []byte) (uint32, error) { return v.RunFrame(f, packet.LinkEthernet) }},
		{"RunFrame raw", func(v *vm.VM, f []byte) (uint32, error) { return v.RunFrame(f, packet.LinkRawIP) }},
		{"RunFrameInfo", func(v *vm.VM, f []byte) (uint32, error) { return v.RunFrameInfo(f, packet.LinkEthernet, info) }},
		{"RunTest", func(v *vm.VM, f []byte) (uint32, error) { return v.RunTest(f, packet.LinkEthernet) }},
		{"RunTest raw", func(v *vm.VM, f []byte) (uint32, error) { return v.RunTest(f, packet.LinkRawIP) }},
	}
	for _, view := range views {
		for _, f := range frames {
			got, err := view.run(v, f)
			want, werr := view.run(general, f)
			if got != want || (err == nil) != (werr == nil) {
				t.Fatalf("%s, %s, frame % x: filter form %#x, %v; general %#x, %v", name, view.name, f, got, err, want, werr)
			}
		}
	}
}

// TestFilterForm runs every compiled expression of the test list in the
// filter form and in the general interpreter: the same r0 in every view.
func TestFilterForm(t *testing.T) {
	t.Parallel()
	frames := testutil.GenFrames(21, 600)
	var outside []string
	exprs := testutil.Expressions(t)
	for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
		for _, expr := range exprs {
			insns, err := pcapfilter.Compile(expr, link)
			if err != nil {
				continue
			}
			v, err := vm.New(insns, nil)
			if err != nil {
				t.Fatal(err)
			}
			general, err := vm.NewGeneral(insns, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !vm.InFilterForm(v) {
				outside = append(outside, link.String()+": "+expr)
			}
			checkForms(t, expr, v, general, frames)
		}
	}
	// Every compiled filter keeps to the form.
	if len(outside) > 0 {
		t.Errorf("%d programs outside the filter form: %q", len(outside), outside)
	}
}

// TestFilterFormRandom runs the generator's random programs that the VM
// runs in the filter form in it and in the general interpreter: the same
// r0 on every frame in every view. The filter mode of the generator
// writes programs the form takes.
func TestFilterFormRandom(t *testing.T) {
	t.Parallel()
	frames := testutil.GenFrames(23, 40)
	const programs = 3000
	inForm := 0
	for seed := range uint64(programs) {
		insns := newProgGen(seed).generate()
		v, err := vm.New(insns, &vm.Options{Kernel: true, Rand: func() uint32 { return 7 }, Clock: func() uint64 { return 9 }})
		if err != nil {
			t.Fatalf("seed %d: %v\n%v", seed, err, insns)
		}
		if !vm.InFilterForm(v) {
			continue
		}
		inForm++
		general, err := vm.NewGeneral(insns, &vm.Options{Kernel: true, Rand: func() uint32 { return 7 }, Clock: func() uint64 { return 9 }})
		if err != nil {
			t.Fatal(err)
		}
		checkForms(t, insns.String(), v, general, frames)
	}
	t.Logf("%d of %d programs in the filter form", inForm, programs)
	if inForm < programs/5 {
		t.Errorf("only %d of %d random programs in the filter form", inForm, programs)
	}
}
