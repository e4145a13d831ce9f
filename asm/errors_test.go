package asm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// unhex decodes a fixture of 8-byte slots written as in forms_test.go.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDisassembleErrors checks what Disassemble refuses: truncated input,
// a broken LD_IMM64, and opcodes that are not defined. Before the decoder
// kept every field, it also refused the instructions of TestValidate,
// which are now decoded and refused by Validate.
func TestDisassembleErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hex    string
		offset int
		err    error
		msg    string
	}{
		{"truncated", "b7 00 0000 00000000" + // r0 = 0
			"95 00 00", 8, io.ErrUnexpectedEOF, "3 bytes left"},
		{"ld_imm64 without second half", "b7 00 0000 00000000" + // r0 = 0
			"18 01 0000 05000000", 8, io.ErrUnexpectedEOF, "second half"},
		{"ld_imm64 second half with opcode", "18 01 0000 05000000" + // r1 = 0x5
			"18 00 0000 00000000", 8, ErrInvalidInstruction, "second half"},
		{"ld_imm64 second half with off", "18 01 0000 05000000" + // r1 = 0x5
			"00 00 0100 00000000", 8, ErrInvalidInstruction, "second half"},
		{"unknown alu op", "e7 01 0000 00000000", 0, ErrInvalidInstruction, "unknown alu operation"},
		{"unknown alu32 op", "f4 01 0000 00000000", 0, ErrInvalidInstruction, "unknown alu operation"},
		{"unknown jump op", "f5 01 0000 00000000", 0, ErrInvalidInstruction, "unknown jump operation"},
		{"jmp32 jcond", "e6 00 0000 00000000", 0, ErrInvalidInstruction, "unknown jump opcode"},
		{"jcond by register", "ed 00 0000 00000000", 0, ErrInvalidInstruction, "unknown jump opcode"},
		{"jmp32 call", "86 00 0000 07000000", 0, ErrInvalidInstruction, "unknown call opcode"},
		{"jmp32 exit", "96 00 0000 00000000", 0, ErrInvalidInstruction, "unknown exit opcode"},
		{"exit by register", "9d 00 0000 00000000", 0, ErrInvalidInstruction, "unknown exit opcode"},
		{"gotox", "0d 00 0000 00000000", 0, ErrInvalidInstruction, "unknown jump opcode"},
		{"neg reg", "8f 01 0000 00000000", 0, ErrInvalidInstruction, "neg"},
		{"bswap with source bit", "df 01 0000 10000000", 0, ErrInvalidInstruction, "bswap"},
		{"ld_imm of 32 bits", "00 01 0000 05000000", 0, ErrInvalidInstruction, "less than 64 bits"},
		{"ld_abs of 64 bits", "38 00 0000 0c000000", 0, ErrInvalidInstruction, "64 bits"},
		{"ld mem mode", "60 01 0000 00000000", 0, ErrInvalidInstruction, "unknown ld opcode"},
		{"ldsx of 64 bits", "99 21 0000 00000000", 0, ErrInvalidInstruction, "unknown ldx opcode"},
		{"st atomic mode", "c2 0a f8ff 07000000", 0, ErrInvalidInstruction, "unknown st opcode"},
		{"stx abs mode", "23 1a f8ff 00000000", 0, ErrInvalidInstruction, "unknown stx opcode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Disassemble(unhex(t, tc.hex))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v, want a *DecodeError", err)
			}
			if de.Offset != tc.offset {
				t.Errorf("offset %d, want %d (%v)", de.Offset, tc.offset, err)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %v does not wrap %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if !strings.Contains(err.Error(), "byte") {
				t.Errorf("error %q does not name the byte offset", err)
			}
		})
	}
}

// TestValidate checks instructions whose opcode is defined but whose
// other fields the kernel's decoder refuses (these rows were Disassemble
// errors before it kept every field): Disassemble decodes them, keeping
// every byte; Validate gives the kernel's reason; ValidateRFC accepts
// those RFC 9669 defines (rfc) and refuses the others with the same
// reason.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		msg  string
		rfc  bool   // ValidateRFC accepts it
		rmsg string // what ValidateRFC says, if not msg
	}{
		{"r0 <<= 64", "67 00 0000 40000000", "shift by 64", true, ""},
		{"w0 >>= 32", "74 00 0000 20000000", "shift by 32", true, ""},
		{"r0 s>>= -1", "c7 00 0000 ffffffff", "shift by -1", true, ""},
		{"r0 /= 0", "37 00 0000 00000000", "division by an immediate 0", true, ""},
		{"w0 %= 0", "94 00 0000 00000000", "division by an immediate 0", true, ""},
		{"r0 s/= 0", "37 00 0100 00000000", "division by an immediate 0", true, ""},
		{"callx", "8d 02 0000 00000000", "unknown call opcode", true, ""},
		{"callx with src", "8d 12 0000 00000000", "unknown call opcode", false, "src_reg"},
		{"callx with imm", "8d 02 0000 07000000", "unknown call opcode", false, "imm"},
		{"callx r11", "8d 0b 0000 00000000", "destination register 11", false, ""},
		{"goto with dst", "05 01 0000 00000000", "dst_reg", false, ""},
		{"goto with imm", "05 00 0000 01000000", "imm", false, ""},
		{"gotol with off", "06 00 0100 00000000", "off", false, ""},
		{"may_goto with imm", "e5 00 0000 01000000", "may_goto", false, ""},
		{"may_goto with src", "e5 10 0000 00000000", "may_goto", false, ""},
		{"call with dst", "85 01 0000 07000000", "dst_reg", false, ""},
		{"call unknown src", "85 30 0000 07000000", "unknown source", false, ""},
		{"helper call with off", "85 00 0100 07000000", "off", false, ""},
		{"exit with dst", "95 01 0000 00000000", "dst_reg", false, ""},
		{"exit with imm", "95 00 0000 01000000", "imm", false, ""},
		{"exit with src", "95 10 0000 00000000", "src_reg", false, ""},
		{"jump reg with imm", "1d 21 0000 01000000", "imm", false, ""},
		{"jump imm with src", "15 21 0000 01000000", "src_reg", false, ""},
		{"jump src r11", "1d b1 0000 00000000", "source register", false, ""},
		{"dst r11", "b7 0b 0000 00000000", "destination register 11", false, ""},
		{"alu reg with imm", "0f 21 0000 01000000", "imm", false, ""},
		{"alu imm with src", "07 21 0000 01000000", "src_reg", false, ""},
		{"add with off", "07 01 0100 01000000", "off", false, ""},
		{"div with off 2", "37 01 0200 01000000", "offset 2", false, ""},
		{"alu src r12", "0f c1 0000 00000000", "source register", false, ""},
		{"movsx32 on 32 bits", "bc 21 2000 00000000", "sign extension", false, ""},
		{"movsx from 4 bits", "bf 21 0400 00000000", "sign extension", false, ""},
		{"mov imm with off", "b7 01 0800 01000000", "off", false, ""},
		{"mov reg src r11", "bf b1 0000 00000000", "source register", false, ""},
		{"neg with imm", "87 01 0000 01000000", "imm", false, ""},
		{"be of 8 bits", "dc 01 0000 08000000", "byte swap of 8 bits", false, ""},
		{"le with src", "d4 21 0000 10000000", "src_reg", false, ""},
		{"ld_imm64 unknown src", "18 71 0000 05000000" + // r1 = ?
			"00 00 0000 00000000", "unknown source 7", false, ""},
		{"ld_imm64 map fd with high half", "18 11 0000 05000000" + // r1 = map[fd:5]
			"00 00 0000 01000000", "second half", false, ""},
		{"ld_imm64 with off", "18 01 0100 05000000" + // r1 = 0x5
			"00 00 0000 00000000", "off", false, ""},
		{"ld_abs with dst", "28 01 0000 0c000000", "dst_reg", false, ""},
		{"ld_abs with src", "28 10 0000 0c000000", "src_reg", false, ""},
		{"ld_ind with off", "48 10 0100 0c000000", "off", false, ""},
		{"ld_ind src r11", "48 b0 0000 0c000000", "source register", false, ""},
		{"ldx with imm", "79 21 0000 01000000", "imm", false, ""},
		{"ldx src r11", "79 b1 0000 00000000", "source register", false, ""},
		{"st with src", "62 1a f8ff 07000000", "src_reg", false, ""},
		{"stx with imm", "63 1a f8ff 07000000", "imm", false, ""},
		{"stx src r11", "63 ba f8ff 00000000", "source register", false, ""},
		{"atomic on u8", "d3 1a f8ff 00000000", "atomic operation on u8", false, ""},
		{"unknown atomic", "db 1a f8ff 02000000", "unknown atomic operation 0x2", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := unhex(t, tc.hex)
			insns, err := Disassemble(b)
			if err != nil || len(insns) != 1 {
				t.Fatalf("Disassemble = %v, %v; want one instruction", insns, err)
			}
			if out, err := insns.AppendEncoded(nil, nil); err != nil || !bytes.Equal(out, b) {
				t.Errorf("AppendEncoded = % x, %v; want % x", out, err, b)
			}
			err = insns[0].Validate()
			if !errors.Is(err, ErrInvalidInstruction) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Validate = %v, want an ErrInvalidInstruction saying %q", err, tc.msg)
			}
			err = insns[0].ValidateRFC()
			rmsg := tc.rmsg
			if rmsg == "" {
				rmsg = tc.msg
			}
			switch {
			case tc.rfc && err != nil:
				t.Errorf("ValidateRFC = %v, want nil", err)
			case !tc.rfc && (err == nil || !strings.Contains(err.Error(), rmsg)):
				t.Errorf("ValidateRFC = %v, want an error saying %q", err, rmsg)
			}
			_, err = insns.Assemble()
			if tc.rfc != (err == nil) {
				t.Errorf("Assemble: %v (the RFC allows it: %v)", err, tc.rfc)
			}
		})
	}
}

// TestValidateKernelOnly checks the instructions the kernel loads and RFC
// 9669 does not define as they are: exit with an offset (the verifier
// never reads it), a kfunc call with the fd_array index of a module's BTF
// in its offset, LoadBTFID with a module's BTF fd in its second
// immediate.
func TestValidateKernelOnly(t *testing.T) {
	for _, ins := range []Instruction{
		Exit().WithOffset(1),
		CallKfunc(7).WithOffset(2),
		LoadBTFID(R3, 9).withConstant(9 | 4<<32),
	} {
		if err := ins.Validate(); err != nil {
			t.Errorf("Validate(%v) = %v, want nil", ins, err)
		}
		if err := ins.ValidateRFC(); !errors.Is(err, ErrInvalidInstruction) {
			t.Errorf("ValidateRFC(%v) = %v, want ErrInvalidInstruction", ins, err)
		}
		if _, err := (Instructions{ins}).Assemble(); err != nil {
			t.Errorf("Assemble(%v) = %v, want nil", ins, err)
		}
	}
}

// TestAssembleInvalid checks that Assemble refuses instructions that the
// builders cannot make valid, rather than emitting garbage.
func TestAssembleInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		ins  Instruction
		msg  string
	}{
		{"movsx32 on 32 bits", MovSX32.Reg32(R1, R2), "sign extension"},
		{"movsx with imm", MovSX8.Imm(R1, 2), "off"},
		{"zero size", LoadMem(R1, R2, 0, 0), "access size 0"},
		{"size 3", StoreImm(R10, -8, 1, 3), "access size 3"},
		{"size 16", AtomicAdd.Mem(R10, -8, R1, 16), "access size 16"},
		{"register 11", Mov.Imm(11, 0), "destination register 11"},
		{"source register 15", Mov.Reg(R1, 15), "source register 15"},
		{"atomic on u8", AtomicAdd.Mem(R10, -8, R1, Byte), "atomic operation on u8"},
		{"fetch on u16", FetchOr.Mem(R10, -8, R1, Half), "atomic operation on u16"},
		{"ldsx of u64", LoadMemSX(R1, R2, 0, DWord), "unknown ldx opcode"},
		{"ld_abs of u64", LoadAbs(0, DWord), "64 bits"},
		{"immediate over 32 bits", Instruction{OpCode: Add.Imm(R1, 0).OpCode, Dst: R1, Constant: 1 << 32}, "does not fit 32 bits"},
		{"bswap of 8 bits", BSwap(R1, 8), "byte swap of 8 bits"},
		{"kfunc from jmp32", Instruction{OpCode: OpCode(Jump32Class) | OpCode(CallOp), Src: PseudoKfuncCall}, "unknown call opcode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Instructions{Mov.Imm(R0, 0), tc.ins}.Assemble()
			if !errors.Is(err, ErrInvalidInstruction) {
				t.Fatalf("Assemble = % x, %v; want ErrInvalidInstruction", b, err)
			}
			if b != nil {
				t.Errorf("Assemble returned % x with its error", b)
			}
			for _, m := range []string{tc.msg, "instruction 1"} {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
			if err := tc.ins.Validate(); err == nil {
				t.Error("Validate accepts it")
			}
			_ = tc.ins.String() // must not panic
		})
	}
}

// TestStringInvalid checks that String prints something for instructions
// that are not valid, without panicking.
func TestStringInvalid(t *testing.T) {
	for _, tc := range []struct {
		ins  Instruction
		want string
	}{
		{Instruction{OpCode: 0xe7}, "invalid opcode 0xe7"},
		{Instruction{OpCode: 0xf5}, "invalid opcode 0xf5"},
		{Instruction{OpCode: 0x86}, "invalid opcode 0x86"},
		{Instruction{OpCode: 0x60}, "invalid opcode 0x60"},
		{Instruction{OpCode: 0x00}, "invalid opcode 0x00"},
		{Instruction{OpCode: 0x18, Src: 9}, "r0 = invalid opcode 0x18"},
		{Instruction{OpCode: 0x99}, "invalid opcode 0x99"},
		{Instruction{OpCode: 0xc2}, "invalid opcode 0xc2"},
		{Instruction{OpCode: 0x23}, "invalid opcode 0x23"},
		{Instruction{OpCode: 0xdb, Constant: 2}, "invalid opcode 0xdb"},
		{LoadMem(R1, R2, 0, 5), "invalid size 5"},
		{Instruction{OpCode: 0x85, Constant: 9999}, "call unknown#9999"},
		{Instruction{OpCode: 0x85, Constant: -1}, "call unknown#-1"},
		{Instruction{OpCode: 0x85}, "call bpf_unspec#0"},
		{CallKfunc(7).WithOffset(2), "call kernel-function#7 off:2"},
		{LoadBTFID(R3, 9).withConstant(9 | 4<<32), "r3 = btf[id:9,fd:4]"},
	} {
		if got := tc.ins.String(); got != tc.want {
			t.Errorf("String(%#v) = %q, want %q", tc.ins, got, tc.want)
		}
	}
}

func TestHelperNames(t *testing.T) {
	for fn, want := range map[HelperFunc]string{
		FnUnspec:               "bpf_unspec",
		FnMapLookupElem:        "bpf_map_lookup_elem",
		FnGetPrandomU32:        "bpf_get_prandom_u32",
		FnSkbLoadBytesRelative: "bpf_skb_load_bytes_relative",
		FnGetSocketCookie:      "bpf_get_socket_cookie",
		FnUserRingbufDrain:     "bpf_user_ringbuf_drain",
		FnCgrpStorageDelete:    "bpf_cgrp_storage_delete",
		212:                    "unknown",
		-1:                     "unknown",
	} {
		if got := fn.String(); got != want {
			t.Errorf("HelperFunc(%d).String() = %q, want %q", int32(fn), got, want)
		}
	}
	if FnCgrpStorageDelete != 211 || FnSkbLoadBytesRelative != 68 {
		t.Error("helper numbers moved")
	}
}

// TestDisassembleAllocatesAfterChecking checks that a malformed input is
// refused before anything the size of its decoded instructions is
// allocated: a megabyte of valid instructions ending in a bad one.
func TestDisassembleAllocatesAfterChecking(t *testing.T) {
	b := make([]byte, 0, 1<<20)
	for len(b) < 1<<20-8 {
		b = append(b, 0xb7, 0, 0, 0, 0, 0, 0, 0) // r0 = 0
	}
	b = append(b, 0xff, 0, 0, 0, 0, 0, 0, 0) // undefined opcode
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Disassemble(b); err == nil {
		t.Fatal("no error for an undefined opcode")
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Errorf("refusing a %d-byte program allocated %d bytes", len(b), got)
	}
}
