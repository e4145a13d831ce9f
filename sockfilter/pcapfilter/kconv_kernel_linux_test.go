package pcapfilter

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/btf"
	"github.com/purebpf/purebpf/internal/kconv"
	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/internal/testutil"
)

// kconvCap is the most instructions TestKconvMatchesKernel reads back.
const kconvCap = 2048

// TestKconvMatchesKernel checks kconv.Convert byte for byte against the
// kernel's own conversion. A program attached with SO_ATTACH_FILTER is
// converted by the kernel but has no file descriptor and no id (it is not
// in the program IDR: bpftool and BPF_OBJ_GET_INFO_BY_FD cannot see it),
// so the test reads it where the kernel keeps it: a raw tracepoint
// program on net_dev_queue follows the sending socket of each frame of
// the test's (skb->sk->sk_filter->prog) and copies the struct bpf_prog's
// len and insnsi into a map. Every expression's libpcap program, and the
// ancillary loads and jump forms libpcap does not emit, are attached to a
// packet socket in turn and one frame sent. The immediates of calls of
// kernel functions are relative to __bpf_call_base, read from
// /proc/kallsyms.
func TestKconvMatchesKernel(t *testing.T) {
	testutil.RequirePrivileged(t)
	spec, err := btf.LoadKernel()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	off := func(typ, field string) int16 {
		t.Helper()
		id, err := spec.Find(btf.KindStruct, typ)
		if err != nil {
			t.Fatal(err)
		}
		f, err := spec.Field(id, field)
		if err != nil {
			t.Fatal(err)
		}
		return int16(f.Offset / 8)
	}
	layout, err := kconv.LayoutFromBTF(spec)
	if err != nil {
		t.Fatal(err)
	}
	calls := kallsymsCalls(t)
	mapFD := newInsnMap(t)
	prog := readbackProgram(mapFD, off("sk_buff", "mark"), off("sk_buff", "sk"), off("sock", "sk_filter"),
		off("sk_filter", "prog"), off("bpf_prog", "len"), off("bpf_prog", "insnsi"))
	fd, err := loadTyped(t, progRawTracepoint, prog)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := rawTracepointOpen("net_dev_queue", fd)
	if err != nil {
		t.Fatalf("attach to net_dev_queue: %v", err)
	}
	defer unix.Close(tp)
	ns := testutil.NewNetNS(t)
	sock, ifindex := markedSender(t, ns)
	frame := testutil.GenFrames(1, 1)[0]
	for len(frame) < 60 {
		frame = append(frame, 0)
	}

	programs := map[string][]bpf.Instruction{}
	lp := testutil.NewLibpcap(t, testutil.LinkEthernet)
	for _, expr := range testutil.Expressions(t) {
		classic, err := lp.Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		programs[expr] = classic
	}
	for name, p := range kconvExtraPrograms() {
		programs[name] = p
	}
	checked := 0
	for name, classic := range programs {
		want, err := kconv.Convert(classic, &layout)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for i, ins := range want.Insns {
			if ins.Call != kconv.NoFunc {
				imm, ok := calls[ins.Call]
				if !ok {
					t.Fatalf("no address for %s in /proc/kallsyms", ins.Call.Symbol())
				}
				want.Insns[i].Imm = imm
			}
		}
		raw, err := bpf.Assemble(classic)
		if err != nil {
			t.Fatal(err)
		}
		got := attachAndRead(t, sock, ifindex, mapFD, raw, frame)
		wantBytes := want.Bytes(binary.LittleEndian)
		if !bytes.Equal(got, wantBytes) {
			t.Errorf("%s: the kernel's conversion (%d instructions) differs from kconv's (%d):\n%s", name, len(got)/8, len(want.Insns), diffInsns(got, wantBytes))
			continue
		}
		checked++
	}
	t.Logf("%d programs converted byte for byte as the kernel converts them", checked)
}

// kconvExtraPrograms are programs with what libpcap's Ethernet programs
// do not have: every ancillary load, negative offsets, indirect loads at
// offset 0, division by X, scratch memory, jumps of both branches and of
// negative constants, JSET with a next true branch, a large offset.
func kconvExtraPrograms() map[string][]bpf.Instruction {
	ret := []bpf.Instruction{bpf.RetConstant{Val: 0xffff}}
	anc := []bpf.Instruction{}
	for _, e := range []bpf.Extension{bpf.ExtProto, bpf.ExtType, bpf.ExtInterfaceIndex, bpf.ExtNetlinkAttr,
		bpf.ExtNetlinkAttrNested, bpf.ExtMark, bpf.ExtQueue, bpf.ExtLinkLayerType, bpf.ExtRXHash, bpf.ExtCPUID,
		bpf.ExtVLANTag, bpf.ExtVLANTagPresent, bpf.ExtVLANProto, bpf.ExtRand, bpf.ExtPayloadOffset} {
		anc = append(anc, bpf.LoadExtension{Num: e})
	}
	return map[string][]bpf.Instruction{
		"ancillary": append(anc, append([]bpf.Instruction{bpf.RawInstruction{Op: 0x20, K: 0xfffff000 + 40}}, ret...)...),
		"negative offsets": append([]bpf.Instruction{
			bpf.LoadAbsolute{Off: 0xfff00000 + 9, Size: 1}, bpf.LoadAbsolute{Off: 0xffe00000 + 12, Size: 2},
			bpf.LoadAbsolute{Off: 0x8000, Size: 4}, bpf.LoadAbsolute{Off: 0, Size: 2}}, ret...),
		"indirect and div": append([]bpf.Instruction{
			bpf.LoadMemShift{Off: 14}, bpf.LoadIndirect{Off: 0, Size: 1}, bpf.LoadIndirect{Off: 20, Size: 4},
			bpf.ALUOpX{Op: bpf.ALUOpDiv}, bpf.ALUOpX{Op: bpf.ALUOpMod}, bpf.NegateA{}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 3},
			bpf.StoreScratch{Src: bpf.RegA, N: 3}, bpf.StoreScratch{Src: bpf.RegX, N: 15}, bpf.LoadScratch{Dst: bpf.RegX, N: 3},
			bpf.LoadScratch{Dst: bpf.RegA, N: 15}, bpf.TXA{}, bpf.TAX{}, bpf.LoadConstant{Dst: bpf.RegX, Val: 7},
			bpf.LoadExtension{Num: bpf.ExtLen}, bpf.RawInstruction{Op: 0x81}}, ret...),
		"jumps": {
			bpf.LoadAbsolute{Off: 12, Size: 2},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x800, SkipTrue: 2, SkipFalse: 1},
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 1, SkipTrue: 0, SkipFalse: 3},
			bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: 0xfffffff0, SkipTrue: 0, SkipFalse: 2},
			bpf.JumpIfX{Cond: bpf.JumpGreaterOrEqual, SkipTrue: 0, SkipFalse: 1},
			bpf.Jump{Skip: 1},
			bpf.RetA{},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x86dd, SkipTrue: 0, SkipFalse: 1},
			bpf.RetConstant{Val: 1},
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: 0x80000000, SkipTrue: 1, SkipFalse: 0},
			bpf.RetConstant{Val: 2},
			bpf.RetConstant{Val: 0},
		},
	}
}

// attachAndRead attaches raw to sock, sends frame and returns what the
// tracepoint read of the socket's converted program.
func attachAndRead(t *testing.T, sock, ifindex, mapFD int, raw []bpf.RawInstruction, frame []byte) []byte {
	t.Helper()
	filters := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filters[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	if err := unix.SetsockoptSockFprog(sock, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(filters)), Filter: &filters[0]}); err != nil {
		t.Fatalf("SO_ATTACH_FILTER: %v", err)
	}
	value := make([]byte, 8+8*kconvCap)
	key := uint32(0)
	attr := sys.MapElemAttr{MapFD: uint32(mapFD), Key: sys.NewPointer(unsafe.Pointer(&key)), Value: sys.SlicePointer(value)}
	if err := sys.MapUpdateElem(&attr); err != nil {
		t.Fatalf("map update: %v", err)
	}
	if err := unix.Sendto(sock, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := sys.MapLookupElem(&attr); err != nil {
		t.Fatalf("map lookup: %v", err)
	}
	n := binary.LittleEndian.Uint32(value)
	if n == 0 || n > kconvCap {
		t.Fatalf("the tracepoint read a program of %d instructions (0: it did not run)", n)
	}
	return value[8 : 8+8*n]
}

// newInsnMap returns an array map of one value: a u32 length, padding and
// kconvCap instructions.
func newInsnMap(t testing.TB) int {
	t.Helper()
	fd, err := sys.MapCreate(&sys.MapCreateAttr{MapType: sys.BPF_MAP_TYPE_ARRAY, KeySize: 4, ValueSize: 8 + 8*kconvCap, MaxEntries: 1})
	if err != nil {
		t.Fatalf("create map: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// readbackProgram is the tracepoint program: for a frame with the test's
// mark, it copies skb->sk->sk_filter->prog's len and insnsi to the map.
func readbackProgram(mapFD int, markOff, skOff, filterOff, progOff, lenOff, insnsOff int16) asm.Instructions {
	// read emits `fp-8 = *(size *)(r3 + off)`, going to out on failure.
	read := func(base asm.Register, off int16, size int32) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Reg(asm.R3, base),
			asm.Add.Imm(asm.R3, int32(off)),
			asm.Mov.Reg(asm.R1, asm.RFP),
			asm.Add.Imm(asm.R1, -8),
			asm.Mov.Imm(asm.R2, size),
			asm.Call(asm.FnProbeReadKernel),
			asm.JNE.Imm(asm.R0, 0, "out"),
		}
	}
	p := asm.Instructions{asm.LoadMem(asm.R6, asm.R1, 0, asm.DWord)}
	p = append(p, read(asm.R6, markOff, 4)...)
	p = append(p, asm.LoadMem(asm.R0, asm.RFP, -8, asm.Word), asm.JNE.Imm32(asm.R0, liveMark, "out"))
	for _, o := range []int16{skOff, filterOff, progOff} {
		p = append(p, read(asm.R6, o, 8)...)
		p = append(p, asm.LoadMem(asm.R6, asm.RFP, -8, asm.DWord), asm.JEq.Imm(asm.R6, 0, "out"))
	}
	p = append(p, read(asm.R6, lenOff, 4)...)
	p = append(p,
		asm.LoadMem(asm.R7, asm.RFP, -8, asm.Word),
		asm.JGT.Imm(asm.R7, kconvCap, "out"),
		asm.JEq.Imm(asm.R7, 0, "out"),
		asm.StoreImm(asm.RFP, -16, 0, asm.Word),
		asm.LoadMapFD(asm.R1, int32(mapFD)),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.Call(asm.FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.StoreMem(asm.R0, 0, asm.R7, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R0),
		asm.Add.Imm(asm.R1, 8),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.LSh.Imm(asm.R2, 3),
		asm.Mov.Reg(asm.R3, asm.R6),
		asm.Add.Imm(asm.R3, int32(insnsOff)),
		asm.Call(asm.FnProbeReadKernel),
		asm.Mov.Imm(asm.R0, 0).WithLabel("out"),
		asm.Exit())
	return p
}

// kallsymsCalls returns the immediates of calls of kconv's functions:
// their addresses less __bpf_call_base's.
func kallsymsCalls(t testing.TB) map[kconv.Func]int32 {
	t.Helper()
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Skipf("no /proc/kallsyms: %v", err)
	}
	defer f.Close()
	addrs := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || len(fields) > 3 {
			continue // a module's symbol
		}
		if a, err := strconv.ParseUint(fields[0], 16, 64); err == nil {
			addrs[fields[2]] = a
		}
	}
	base := addrs["__bpf_call_base"]
	if base == 0 {
		t.Skip("/proc/kallsyms hides the addresses (kernel.kptr_restrict)")
	}
	calls := map[kconv.Func]int32{}
	for fn := kconv.LoadHelper8; fn <= kconv.UserRndU32; fn++ {
		if a, ok := addrs[fn.Symbol()]; ok {
			calls[fn] = int32(a - base)
		}
	}
	return calls
}

// diffInsns lists the instructions of two programs side by side, marking
// those that differ.
func diffInsns(got, want []byte) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i += 8 {
		g, w := "", ""
		if i+8 <= len(got) {
			g = fmt.Sprintf("% x", got[i:i+8])
		}
		if i+8 <= len(want) {
			w = fmt.Sprintf("% x", want[i:i+8])
		}
		mark := " "
		if g != w {
			mark = "*"
		}
		fmt.Fprintf(&b, "%s %4d kernel %-23s kconv %s\n", mark, i/8, g, w)
	}
	return b.String()
}
