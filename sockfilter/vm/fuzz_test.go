package vm_test

import (
	"errors"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// FuzzVM runs random programs on random frames: decoding, New under both
// rules and every Run method must never panic, a run must end (the
// budget is small), two runs of the same program on the same input must
// agree, so that nothing of one run leaks into the next, and a program
// the VM runs in its filter form must give what the general interpreter
// gives. Seeds are
// generated programs (progGen), the conformance files' programs and
// testdata/fuzz/FuzzVM.
func FuzzVM(f *testing.F) {
	frames := testutil.GenFrames(5, 8)
	for seed := range uint64(16) {
		code, err := newProgGen(seed).generate().Assemble()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(code, frames[seed%uint64(len(frames))])
	}
	f.Fuzz(func(t *testing.T, code, frame []byte) {
		insns, err := asm.Disassemble(code)
		if err != nil {
			return
		}
		for _, kernel := range []bool{false, true} {
			opts := &vm.Options{Kernel: kernel, Budget: 1 << 14, Clock: func() uint64 { return 7 }, Rand: func() uint32 { return 9 }}
			v, err := vm.New(insns, opts)
			if err != nil {
				var ie *asm.InstructionError
				if !errors.As(err, &ie) && len(insns) > 0 {
					t.Fatalf("New: error %v does not name an instruction", err)
				}
				continue
			}
			runs := []func(v *vm.VM) (uint64, error){
				func(v *vm.VM) (uint64, error) {
					r, err := v.RunFrame(frame, packet.LinkEthernet)
					return uint64(r), err
				},
				func(v *vm.VM) (uint64, error) { r, err := v.RunFrame(frame, packet.LinkRawIP); return uint64(r), err },
				func(v *vm.VM) (uint64, error) { r, err := v.RunTest(frame, packet.LinkEthernet); return uint64(r), err },
				func(v *vm.VM) (uint64, error) {
					r, err := v.RunFrameInfo(frame, packet.LinkEthernet, &packet.Info{Ifindex: 2, Direction: packet.DirectionOutgoing, Length: 1500})
					return uint64(r), err
				},
				func(v *vm.VM) (uint64, error) {
					r, err := v.RunFrame(frame, packet.LinkLinuxSLL2)
					return uint64(r), err
				},
				func(v *vm.VM) (uint64, error) {
					r, err := v.RunFrameInfo(frame, packet.LinkLinuxSLL, &packet.Info{Ifindex: 3, Length: 1500})
					return uint64(r), err
				},
				func(v *vm.VM) (uint64, error) { return v.RunMemory(frame) },
			}
			general, err := vm.NewGeneral(insns, opts)
			if err != nil {
				t.Fatalf("NewGeneral refuses what New takes: %v", err)
			}
			for i, run := range runs {
				r1, err1 := run(v)
				r2, err2 := run(v)
				if r1 != r2 || (err1 == nil) != (err2 == nil) {
					t.Fatalf("run %d: first %#x, %v; second %#x, %v\n%v", i, r1, err1, r2, err2, insns)
				}
				r3, err3 := run(general)
				if r3 != r1 || (err3 == nil) != (err1 == nil) {
					t.Fatalf("run %d: %#x, %v; in the general interpreter %#x, %v\n%v", i, r1, err1, r3, err3, insns)
				}
				var e *vm.Error
				if err1 != nil && i != 2 && !errors.As(err1, &e) {
					// RunTest refuses short frames before running.
					t.Fatalf("run %d: error %v is not a *vm.Error", i, err1)
				}
			}
		}
	})
}
