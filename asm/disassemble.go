package asm

import (
	"encoding/binary"
	"fmt"
	"io"
)

// DecodeError is the error of Disassemble: what is wrong with the
// instruction that starts at byte Offset.
type DecodeError struct {
	Offset int   // byte offset of the instruction in the input
	Err    error // wraps io.ErrUnexpectedEOF or ErrInvalidInstruction
}

// Error says where and what: "decode instruction at byte 16: ...".
func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode instruction at byte %d: %v", e.Offset, e.Err)
}

// Unwrap returns Err.
func (e *DecodeError) Unwrap() error { return e.Err }

// Disassemble decodes a little-endian program, as Assemble encodes it and
// as the kernel's bpf_prog_info returns it. Jumps come back with their
// Offset and no Target. It decodes every instruction whose opcode is
// defined (OpCode.Defined), keeping every field as it is, so that
// Instructions.AppendEncoded gives back the same bytes: an instruction the
// kernel or RFC 9669 refuses for what its other fields hold (a shift by
// 64, a non-zero reserved field, register r11, ...) is decoded, and
// Instruction.Validate, Instruction.ValidateRFC and Instructions.Validate
// say what is wrong with it. It returns a *DecodeError naming the byte
// offset of the first instruction that is truncated, whose opcode is not
// defined, or that is an LD_IMM64 without its second half or with a second
// half whose opcode, registers or offset are not zero (the Instruction
// has no room for them).
func Disassemble(b []byte) (Instructions, error) {
	return DisassembleOrder(b, binary.LittleEndian)
}

// DisassembleOrder is Disassemble for a program encoded in order; in
// big-endian the destination register is the high nibble of the register
// byte. A nil order is little-endian.
func DisassembleOrder(b []byte, order binary.ByteOrder) (Instructions, error) {
	if order == nil {
		order = binary.LittleEndian
	}
	// Check every slot before allocating: a malformed input gets its error
	// without first costing memory many times its size.
	n, err := decodeAll(b, order, nil)
	if err != nil {
		return nil, err
	}
	insns := make(Instructions, 0, n)
	_, err = decodeAll(b, order, func(ins Instruction) { insns = append(insns, ins) })
	return insns, err
}

// decodeAll decodes the instructions of b, calling emit, if not nil, for
// each, and returns how many there are or the first error.
func decodeAll(b []byte, order binary.ByteOrder, emit func(Instruction)) (int, error) {
	big := isBigEndian(order)
	n := 0
	for off := 0; off < len(b); off += 8 {
		if len(b)-off < 8 {
			return 0, &DecodeError{off, fmt.Errorf("%w: %d bytes left of an 8-byte instruction", io.ErrUnexpectedEOF, len(b)-off)}
		}
		ins := decodeSlot(b[off:off+8], order, big)
		if ins.IsLoadImm64() {
			if len(b)-off < 16 {
				return 0, &DecodeError{off, fmt.Errorf("%w: ld_imm64 without its second half", io.ErrUnexpectedEOF)}
			}
			hi := decodeSlot(b[off+8:off+16], order, big)
			if hi.OpCode != 0 || hi.Dst != 0 || hi.Src != 0 || hi.Offset != 0 {
				return 0, &DecodeError{off + 8, invalid("second half of ld_imm64 uses reserved fields")}
			}
			ins.Constant = int64(uint32(ins.Constant)) | hi.Constant<<32
		}
		if !ins.OpCode.Defined() {
			err := ins.validate(kernelRules)
			if err == nil {
				err = invalid("undefined opcode %#02x", uint8(ins.OpCode))
			}
			return 0, &DecodeError{off, err}
		}
		if emit != nil {
			emit(ins)
		}
		n++
		if ins.IsLoadImm64() {
			off += 8
		}
	}
	return n, nil
}

// decodeSlot decodes the fields of one 8-byte slot.
func decodeSlot(b []byte, order binary.ByteOrder, big bool) Instruction {
	ins := Instruction{
		OpCode:   OpCode(b[0]),
		Dst:      Register(b[1] & 0xf),
		Src:      Register(b[1] >> 4),
		Offset:   int16(order.Uint16(b[2:4])),
		Constant: int64(int32(order.Uint32(b[4:8]))),
	}
	if big {
		ins.Dst, ins.Src = ins.Src, ins.Dst
	}
	return ins
}
