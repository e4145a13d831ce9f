package vm_test

import (
	"errors"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// FuzzMaps builds programs of map helper calls from the fuzzer's bytes,
// four a call: the helper, the map (one of each type), a key or a size,
// flags, pointers that are mostly good and sometimes anything, and
// accesses through what the helpers return at any offset. A run must end
// without a panic, fail only with an *Error, and leave the maps usable.
func FuzzMaps(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 1, 2, 3, 0, 2, 5, 4, 1, 5, 6, 16, 0, 6, 6, 8, 1, 7, 6, 8, 2})
	f.Add([]byte{1, 3, 9, 0, 1, 3, 9, 1, 0, 3, 9, 8, 2, 3, 9, 0, 0, 4, 200, 0})
	specs := []vm.MapSpec{
		{Type: vm.Array, ValueSize: 12, MaxEntries: 4}, // for one CPU: the VM's CPU 1 is fine
		{Type: vm.PerCPUArray, ValueSize: 8, MaxEntries: 4, CPUs: 2},
		{Type: vm.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4},
		{Type: vm.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 4, CPUs: 2},
		{Type: vm.LRUPerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 4, CPUs: 2, Flags: vm.MapNoCommonLRU},
		{Type: vm.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 4, CPUs: 2},
		{Type: vm.RingBuf, MaxEntries: 4096},
	}
	names := []string{"a", "pa", "h", "l", "lp", "ph", "rb"}
	f.Fuzz(func(t *testing.T, ops []byte) {
		maps := map[string]*vm.Map{}
		for i, s := range specs {
			maps[names[i]] = newMap(t, s)
		}
		var insns asm.Instructions
		for i := 0; i+3 < len(ops) && i < 4*64; i += 4 {
			insns = append(insns, mapOp(ops[i:i+4], names)...)
		}
		insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.Exit())
		v, err := vm.New(insns, &vm.Options{Maps: maps, CPU: 1, Budget: 1 << 12})
		if err != nil {
			t.Fatalf("New: %v\n%v", err, insns)
		}
		for range 2 {
			if _, err := v.RunMemory(nil); err != nil {
				if _, ok := errors.AsType[*vm.Error](err); !ok {
					t.Fatalf("error %v is not a *vm.Error", err)
				}
			}
		}
		for _, m := range maps {
			for range m.All() {
			}
			for range m.Records() {
			}
		}
	})
}

// mapOp returns a call of a map helper that op, four bytes, describes,
// and an access through its result.
func mapOp(op []byte, names []string) asm.Instructions {
	m := names[int(op[1])%len(names)]
	key := int32(op[2] % 8)
	insns := asm.Instructions{
		asm.StoreImm(asm.R10, -8, key, asm.Word),
		asm.StoreImm(asm.R10, -24, int32(op[3]), asm.DWord),
		asm.LoadMapPtr(asm.R1, m),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -8),
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, -24),
		asm.Mov.Imm(asm.R4, int32(op[3]%5)),
	}
	if op[3]&0x80 != 0 {
		// A pointer that is anything, or NULL.
		insns = append(insns, asm.Mov.Imm([]asm.Register{asm.R2, asm.R3}[op[3]&1], int32(op[2])<<int(op[3]&31)))
	}
	switch op[0] % 8 {
	case 0:
		insns = append(insns, asm.Call(asm.FnMapLookupElem))
	case 1:
		insns = append(insns, asm.Call(asm.FnMapUpdateElem))
	case 2:
		insns = append(insns, asm.Call(asm.FnMapDeleteElem))
	case 3:
		insns = append(insns, asm.Mov.Imm(asm.R3, int32(op[2])), asm.Call(asm.FnRingbufOutput))
	case 4, 5:
		insns = append(insns, asm.Mov.Imm(asm.R2, int32(op[2])*16), asm.Mov.Imm(asm.R3, int32(op[3]>>6)), asm.Call(asm.FnRingbufReserve))
	case 6:
		insns = append(insns, asm.Mov.Imm(asm.R2, int32(op[3]%4)), asm.Call(asm.FnRingbufQuery))
	default:
		insns = append(insns, asm.Mov.Reg(asm.R1, asm.R0), asm.Mov.Imm(asm.R2, 0), asm.Call([]asm.HelperFunc{asm.FnRingbufSubmit, asm.FnRingbufDiscard}[op[3]&1]))
	}
	// Through the result, whatever it is: a pointer to a value or a
	// record, an error, NULL.
	return append(insns,
		asm.JEq.Imm(asm.R0, 0, "").WithOffset(3),
		asm.StoreImm(asm.R0, int16(op[3]%24), 7, asm.Word),
		asm.LoadMem(asm.R5, asm.R0, int16(op[2]%16), asm.Byte),
		asm.Mov.Reg(asm.R9, asm.R0),
		asm.Mov.Reg(asm.R1, asm.R9),
		asm.Mov.Imm(asm.R2, int32(op[2]&1)),
		asm.JEq.Imm(asm.R0, 0, "").WithOffset(1),
		asm.Call([]asm.HelperFunc{asm.FnRingbufSubmit, asm.FnRingbufDiscard}[op[2]&1]),
	)
}
