package asm

import (
	"errors"
	"strings"
	"testing"
)

func TestMapReferences(t *testing.T) {
	for _, tt := range []struct {
		ins  Instruction
		text string
		// resolved is ins with fd 3 in place of the name.
		resolved Instruction
	}{
		{LoadMapPtr(R1, "flows"), "r1 = map[flows]", LoadMapFD(R1, 3)},
		{LoadMapValuePtr(R2, "stats", 8), "r2 = map[stats][0]+8", LoadMapValue(R2, 3, 8)},
		{LoadMapValuePtr(R0, "a.b_c1", 0), "r0 = map[a.b_c1][0]+0", LoadMapValue(R0, 3, 0)},
		// Names that are the kernel's keys without their colon.
		{LoadMapPtr(R3, "fd"), "r3 = map[fd]", LoadMapFD(R3, 3)},
		{LoadMapPtr(R3, "idx"), "r3 = map[idx]", LoadMapFD(R3, 3)},
	} {
		t.Run(tt.text, func(t *testing.T) {
			if got := tt.ins.String(); got != tt.text {
				t.Errorf("String = %q, want %q", got, tt.text)
			}
			parsed, err := Parse(tt.text)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(parsed) != 1 || parsed[0] != tt.ins {
				t.Errorf("Parse = %#v, want %#v", parsed, tt.ins)
			}
			_, err = Instructions{Mov.Imm(R0, 0), tt.ins}.Assemble()
			if !errors.Is(err, ErrUnresolvedMap) || !strings.Contains(err.Error(), "instruction 1") || !strings.Contains(err.Error(), `"`+tt.ins.Map+`"`) {
				t.Errorf("Assemble error = %v, want ErrUnresolvedMap naming instruction 1 and %q", err, tt.ins.Map)
			}
			// What a loader does: the fd in the low half, the name gone.
			r := tt.ins
			r.Constant |= 3
			r.Map = ""
			if r != tt.resolved {
				t.Errorf("resolved = %#v, want %#v", r, tt.resolved)
			}
			got, err := Instructions{r}.Assemble()
			want, err2 := Instructions{tt.resolved}.Assemble()
			if err != nil || err2 != nil || string(got) != string(want) {
				t.Errorf("resolved assembles to % x (%v), want % x (%v)", got, err, want, err2)
			}
		})
	}
}

func TestMapReferenceParseErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"r1 = map[flows", `expected "]"`},
		{"r1 = map[]", `expected "fd:"`},
		{"r1 = map[1x]", `expected "fd:"`},
		{"r1 = map[flows][0]", `expected "+"`},
		{"r1 = map[flows][0]+x", "expected a number"},
		{"r1 = map[flows][1]+0", "after the instruction"},
		{"w1 = map[flows]", "ld_imm64 writes a 64-bit register"},
	} {
		t.Run(tt.src, func(t *testing.T) {
			_, err := Parse(tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tt.src, err, tt.want)
			}
		})
	}
}
