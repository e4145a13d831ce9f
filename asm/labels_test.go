package asm

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// padding returns n instructions that do nothing.
func padding(n int) Instructions {
	return slices.Repeat(Instructions{Mov.Reg(R0, R0)}, n)
}

func TestResolve(t *testing.T) {
	insns := Instructions{
		LoadImm64(R2, 1),               // slot 0-1
		JEq.Imm(R1, 0, "out"),          // slot 2: out is slot 8, offset 5
		LoadFunc(R3, "fn"),             // slot 3-4: fn is slot 9, imm 4
		CallLabel("fn"),                // slot 5: imm 3
		GotoL("out"),                   // slot 6: imm 1
		Goto("top"),                    // slot 7: top is slot 0, offset -8
		Exit().WithLabel("out"),        // slot 8
		Mov.Imm(R0, 0).WithLabel("fn"), // slot 9
		Exit(),                         // slot 10
		JNE.Reg32(R0, R1, "fn"),        // slot 11: offset -3
		Exit().WithLabel("top"),        // slot 12
		Goto("top").WithOffset(7),      // an explicit offset is kept
	}
	insns[0].Label = "start"
	insns[5].Target = "start"
	if got, want := insns.Offsets(), []int{0, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13}; !slices.Equal(got, want) {
		t.Errorf("Offsets = %v, want %v", got, want)
	}
	res, err := insns.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	check := func(i int, off int16, c int64) {
		t.Helper()
		if res[i].Offset != off || res[i].Constant != c {
			t.Errorf("instruction %d (%s): offset %d constant %d, want %d %d", i, res[i], res[i].Offset, res[i].Constant, off, c)
		}
		if res[i].Target != insns[i].Target {
			t.Errorf("instruction %d: Target %q, want it kept (%q)", i, res[i].Target, insns[i].Target)
		}
	}
	check(1, 5, 0)
	check(2, 0, 5)
	check(3, 0, 3)
	check(4, 0, 1)
	check(5, -8, 0)
	check(9, -3, 0)
	check(11, 7, 0)
	if insns[1].Offset != 0 {
		t.Error("Resolve modified its receiver")
	}
	want := "start:\n\tr2 = 0x1\n\tif r1 == 0x0 goto out\n\tr3 = func[fn]\n\tcall fn\n\tgotol out\n\tgoto start\nout:\n\texit\nfn:\n"
	if s := insns.String(); !strings.HasPrefix(s, want) {
		t.Errorf("String =\n%s\nwant prefix\n%s", s, want)
	}
	// The listing parses back to the same program.
	back, err := Parse(insns.String())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := insns.Assemble()
	b, err := back.Assemble()
	if err != nil || string(a) != string(b) {
		t.Errorf("Parse(String()).Assemble() = %x, %v; want %x", b, err, a)
	}
}

func TestLabelErrors(t *testing.T) {
	far := append(Instructions{JEq.Imm(R1, 0, "far")}, padding(math.MaxInt16+1)...)
	far = append(far, Exit().WithLabel("far"))
	back := append(Instructions{Exit().WithLabel("back")}, padding(math.MaxInt16+1)...)
	back = append(back, JSGT.Reg32(R1, R2, "back"))
	for _, tc := range []struct {
		name    string
		insns   Instructions
		err     error
		mention []string
	}{
		{"missing", Instructions{JEq.Imm(R1, 0, "nowhere"), Exit()}, ErrMissingLabel, []string{`"nowhere"`, "instruction 0"}},
		{"missing call", Instructions{Exit().WithLabel("a"), CallLabel("b")}, ErrMissingLabel, []string{`"b"`, "instruction 1"}},
		{"duplicate", Instructions{Exit().WithLabel("x"), Exit(), Exit().WithLabel("x")}, ErrDuplicateLabel, []string{`"x"`, "instruction 2", "instruction 0"}},
		{"duplicate without targets", Instructions{Exit().WithLabel("x"), Exit().WithLabel("x")}, ErrDuplicateLabel, []string{`"x"`}},
		{"forward overflow", far, ErrOffsetOverflow, []string{`"far"`, "32768", "instruction 0"}},
		{"backward overflow", back, ErrOffsetOverflow, []string{`"back"`, "-32770"}},
		{"target on alu", Instructions{Add.Imm(R0, 1).withTarget("x"), Exit().WithLabel("x")}, ErrInvalidInstruction, []string{`"x"`}},
		{"target on helper call", Instructions{Call(FnGetPrandomU32).withTarget("x"), Exit().WithLabel("x")}, ErrInvalidInstruction, []string{`"x"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, run := range []func() error{
				func() error { _, err := tc.insns.Assemble(); return err },
				func() error { _, err := tc.insns.Resolve(); return err },
			} {
				err := run()
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				for _, m := range tc.mention {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not mention %s", err, m)
					}
				}
			}
		})
	}
}

// TestGotoRelaxation checks that a Goto farther than 16 bits reach becomes
// a gotol, in both directions, and that nearer ones stay.
func TestGotoRelaxation(t *testing.T) {
	insns := append(Instructions{Goto("far"), Goto("far")}, padding(math.MaxInt16)...)
	insns = append(insns, Exit().WithLabel("far"))
	insns[0].Label = "start"
	insns[math.MaxInt16] = Goto("start")
	insns[math.MaxInt16+1] = Goto("start")
	b, err := insns.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := Disassemble(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		i    int
		text string
	}{
		{0, "gotol pc+32768"},
		{1, "goto pc+32767"},
		{math.MaxInt16, "goto pc-32768"},
		{math.MaxInt16 + 1, "gotol pc-32769"},
	} {
		if s := dec[tc.i].String(); s != tc.text {
			t.Errorf("instruction %d = %q, want %q", tc.i, s, tc.text)
		}
	}
	res, err := insns.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s := res[0].String(); s != "gotol far" {
		t.Errorf("Resolve()[0] = %q, want gotol far", s)
	}
}

// TestAssembleNoPartialOutput checks that AppendAssembled leaves b as it
// was when an instruction fails.
func TestAssembleNoPartialOutput(t *testing.T) {
	prefix := []byte{1, 2, 3}
	for _, insns := range []Instructions{
		{Mov.Imm(R0, 0), LoadMem(R0, R1, 0, 3)},
		{Mov.Imm(R0, 0), JEq.Imm(R0, 0, "missing")},
	} {
		b, err := insns.AppendAssembled(prefix, nil)
		if err == nil || string(b) != string(prefix) {
			t.Errorf("AppendAssembled(%v) = %v, %v; want the prefix back and an error", insns, b, err)
		}
	}
}

func TestInstructionsSlots(t *testing.T) {
	insns := Instructions{Mov.Imm(R0, 0), LoadImm64(R1, 1<<40), Exit()}
	if got := insns.Slots(); got != 4 {
		t.Errorf("Slots() = %d, want 4 (LD_IMM64 takes two)", got)
	}
	if got := (Instructions{}).Slots(); got != 0 {
		t.Errorf("empty: Slots() = %d", got)
	}
}
