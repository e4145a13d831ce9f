package asm

import (
	"errors"
	"strings"
	"testing"
)

func TestInstructionsValidate(t *testing.T) {
	ok := func(insns ...Instruction) Instructions { return insns }
	for _, tc := range []struct {
		name  string
		insns Instructions
		index int    // the instruction the error names
		msg   string // what it says; "" for no error
		rfc   string // what ValidateRFC says, if it differs
	}{
		{"straight", ok(Mov.Imm(R0, 0), Exit()), 0, "", ""},
		{"labels", labelsProgram(), 0, "", ""},
		{"subprogram", ok(CallLabel("f"), Exit(), Mov.Imm(R0, 1).WithLabel("f"), Exit()), 0, "", ""},
		{"exit not last", ok(Mov.Imm(R1, 0), Goto("l2"), Mov.Imm(R2, 0).WithLabel("l1"), Exit(),
			Mov.Imm(R0, 0).WithLabel("l2"), Goto("l1")), 0, "", ""},
		{"empty", nil, -1, "no instructions", ""},
		{"missing label", ok(Goto("nowhere"), Exit()), -1, "missing label", ""},
		{"invalid instruction", ok(Mov.Imm(R0, 0), Instruction{OpCode: 0xbf, Dst: R0, Src: R1, Constant: 3}, Exit()), 1, "reserved field imm", ""},
		{"shift by 64", ok(LSh.Imm(R0, 64), Exit()), 0, "shift by 64", "-"},
		{"callx", ok(Mov.Imm(R1, 5), CallX(R1), Exit()), 1, "unknown call opcode", "-"},
		{"exit with offset", ok(Mov.Imm(R0, 0), Exit().WithOffset(3)), 1, "", "reserved field off"},
		{"falls off", ok(Mov.Imm(R0, 0)), 0, "run off its end", ""},
		{"falls off a conditional jump", ok(Mov.Imm(R0, 0), JEq.Imm(R0, 0, "").WithOffset(-2)), 1, "run off its end", ""},
		{"jump past the end", ok(Goto("").WithOffset(1), Exit()), 0, "outside the program", ""},
		{"jump before the start", ok(Mov.Imm(R0, 0), JEq.Imm(R0, 0, "").WithOffset(-3), Exit()), 1, "outside the program", ""},
		{"gotol past the end", ok(GotoL("").withConstant(5), Exit()), 0, "outside the program", ""},
		{"jump into ld_imm64", ok(Goto("").WithOffset(1), LoadImm64(R0, 1), Exit()), 0, "second half of the ld_imm64 at instruction 1", ""},
		{"call into ld_imm64", ok(CallLabel("").withConstant(1), LoadImm64(R0, 1), Exit()), 0, "second half", ""},
		{"call outside", ok(CallLabel("").withConstant(7), Exit()), 0, "outside the program", ""},
		{"func outside", ok(LoadFunc(R1, "").withConstant(int64(uint32(0xfffffffb))), Exit()), 0, "outside the program", ""},
		{"jump into a subprogram", ok(CallLabel("f"), JEq.Imm(R0, 0, "g"), Exit(),
			Mov.Imm(R0, 1).WithLabel("f"), Exit().WithLabel("g")), 1, "leaves the subprogram that starts at instruction 0", ""},
		{"subprogram falls into the next", ok(CallLabel("f"), Mov.Imm(R0, 0), // falls into f
			Mov.Imm(R0, 1).WithLabel("f"), Exit()), 1, "subprogram at instruction 0", ""},
		{"r10 written", ok(Mov.Reg(R10, R1), Exit()), 0, "read-only frame pointer", ""},
		{"r10 loaded", ok(LoadMem(R10, R1, 0, Word), Exit()), 0, "read-only frame pointer", ""},
		{"r10 ld_imm64", ok(LoadImm64(R10, 1), Exit()), 0, "read-only frame pointer", ""},
		{"r10 fetched", ok(FetchAdd.Mem(R1, 0, R10, DWord), Exit()), 0, "read-only frame pointer", ""},
		{"r10 stored", ok(StoreMem(R10, -8, R10, DWord), AtomicAdd.Mem(R10, -8, R10, DWord), Exit()), 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(name string, err error, msg string) {
				t.Helper()
				if msg == "" {
					if err != nil {
						t.Errorf("%s = %v, want nil", name, err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("%s = %v, want an error saying %q", name, err, msg)
				}
				var ie *InstructionError
				if tc.index >= 0 {
					if !errors.As(err, &ie) || ie.Index != tc.index {
						t.Errorf("%s = %v, want an *InstructionError at instruction %d", name, err, tc.index)
					}
					if !errors.Is(err, ErrInvalidInstruction) && !errors.Is(err, ErrInvalidProgram) {
						t.Errorf("%s = %v, wraps neither ErrInvalidInstruction nor ErrInvalidProgram", name, err)
					}
				}
			}
			check("Validate", tc.insns.Validate(), tc.msg)
			rfc := tc.rfc
			switch rfc {
			case "":
				rfc = tc.msg
			case "-":
				rfc = ""
			}
			check("ValidateRFC", tc.insns.ValidateRFC(), rfc)
		})
	}
}
