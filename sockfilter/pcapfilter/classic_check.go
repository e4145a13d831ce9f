package pcapfilter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Classic BPF as the kernel reads it (include/uapi/linux/filter.h,
// bpf_common.h): an instruction is a 16-bit code, two 8-bit jump offsets
// and a 32-bit constant k. The code's low 3 bits are its class; the rest
// depends on the class.
const (
	clsLD   = 0x00
	clsLDX  = 0x01
	clsST   = 0x02
	clsSTX  = 0x03
	clsALU  = 0x04
	clsJMP  = 0x05
	clsRET  = 0x06
	clsMISC = 0x07

	szW = 0x00 // BPF_W: 4 bytes
	szH = 0x08 // BPF_H: 2 bytes
	szB = 0x10 // BPF_B: 1 byte

	modeIMM = 0x00
	modeABS = 0x20
	modeIND = 0x40
	modeMEM = 0x60
	modeLEN = 0x80
	modeMSH = 0xa0

	srcX = 0x08 // BPF_X: the operand is X; BPF_K (0): k
	retA = 0x10 // BPF_A: return A; BPF_K (0): k

	opNEG = 0x80 // the ALU op that takes no operand
	opJA  = 0x00 // the jump that always jumps, by k
	opTAX = 0x00
	opTXA = 0x80

	// skfADOff is SKF_AD_OFF as an unsigned k: loads at or above it are
	// ancillary data, not packet bytes.
	skfADOff = 0xfffff000
	// memWords is BPF_MEMWORDS, the number of scratch words.
	memWords = 16
)

// The ancillary data the kernel knows (SKF_AD_*, the offsets from
// SKF_AD_OFF that bpf_anc_helper in include/linux/filter.h lists), and
// the names errors give them.
var ancillaryNames = map[uint32]string{
	0: "PROTOCOL", 4: "PKTTYPE", 8: "IFINDEX", 12: "NLATTR", 16: "NLATTR_NEST",
	20: "MARK", 24: "QUEUE", 28: "HATYPE", 32: "RXHASH", 36: "CPU", 40: "ALU_XOR_X",
	44: "VLAN_TAG", 48: "VLAN_TAG_PRESENT", 52: "PAY_OFFSET", 56: "RANDOM", 60: "VLAN_TPID",
}

// classicCodes are the codes bpf_check_classic accepts (chk_code_allowed
// in net/core/filter.c).
var classicCodes = func() map[uint16]bool {
	m := make(map[uint16]bool)
	for _, op := range []uint16{0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0} {
		m[clsALU|op] = true
		m[clsALU|op|srcX] = true
	}
	m[clsALU|opNEG] = true
	for _, sz := range []uint16{szW, szH, szB} {
		m[clsLD|modeABS|sz] = true
		m[clsLD|modeIND|sz] = true
	}
	for _, c := range []uint16{
		clsLD | modeLEN | szW, clsLD | modeIMM, clsLD | modeMEM,
		clsLDX | modeLEN | szW, clsLDX | modeMSH | szB, clsLDX | modeIMM, clsLDX | modeMEM,
		clsST, clsSTX, clsMISC | opTAX, clsMISC | opTXA, clsRET, clsRET | retA, clsJMP | opJA,
	} {
		m[c] = true
	}
	for _, op := range []uint16{0x10, 0x20, 0x30, 0x40} { // JEQ, JGT, JGE, JSET
		m[clsJMP|op] = true
		m[clsJMP|op|srcX] = true
	}
	return m
}()

// isCondJump reports whether code is a conditional jump.
func isCondJump(code uint16) bool { return code&0x07 == clsJMP && code&0xf0 != opJA }

// checkClassic returns an error if the kernel's classic checker
// (bpf_check_classic in net/core/filter.c) refuses prog, naming the
// instruction at fault: a code it does not know, a division by a constant
// zero, a constant shift of 32 or more, a scratch index past M[15], a jump
// past the end, an ancillary load it does not know, a last instruction
// that does not return, or a load of a scratch word no store may have
// written (see checkScratch).
func checkClassic(prog []bpf.RawInstruction) error {
	n := len(prog)
	for pc, ins := range prog {
		if err := checkClassicInsn(ins, pc, n); err != nil {
			return &classicError{pc: pc, ins: ins, err: err}
		}
	}
	if c := prog[n-1].Op; c != clsRET && c != clsRET|retA {
		return &classicError{pc: n - 1, ins: prog[n-1], err: fmt.Errorf("the last instruction must return")}
	}
	return checkScratch(prog)
}

// checkClassicInsn returns why bpf_check_classic refuses the instruction
// ins at pc of a program of n instructions, or nil.
func checkClassicInsn(ins bpf.RawInstruction, pc, n int) error {
	code, k := ins.Op, ins.K
	if !classicCodes[code] {
		return fmt.Errorf("code 0x%02x is not an instruction of classic BPF", code)
	}
	switch {
	case code == clsALU|0x30 || code == clsALU|0x90: // DIV, MOD by k
		if k == 0 {
			return fmt.Errorf("division by zero")
		}
	case code == clsALU|0x60 || code == clsALU|0x70: // LSH, RSH by k
		if k >= 32 {
			return fmt.Errorf("shift by %d, more than 31", k)
		}
	case code == clsLD|modeMEM || code == clsLDX|modeMEM || code == clsST || code == clsSTX:
		if k >= memWords {
			return fmt.Errorf("scratch index %d out of range 0-15", k)
		}
	case code == clsJMP|opJA:
		if uint64(k) >= uint64(n-pc-1) {
			return fmt.Errorf("jump past the end of the program")
		}
	case isCondJump(code):
		if pc+int(ins.Jt)+1 >= n || pc+int(ins.Jf)+1 >= n {
			return fmt.Errorf("jump past the end of the program")
		}
	case code&0xe7 == clsLD|modeABS && k >= skfADOff:
		if _, ok := ancillaryNames[k-skfADOff]; !ok {
			return fmt.Errorf("ancillary load SKF_AD_OFF + %d is unknown to the kernel", k-skfADOff)
		}
	}
	return nil
}

// checkScratch returns an error if a load of a scratch word M[k] may come
// before any store to it, as check_load_and_stores in net/core/filter.c
// decides: it follows the instructions in order with the set of words
// written so far, which a jump hands on to its targets (a target gets what
// every jump to it and the instruction before it have), and which starts
// again full after a jump. As the kernel, it reads unreachable
// instructions too, and the instruction after a return continues with
// what was written before the return.
func checkScratch(prog []bpf.RawInstruction) error {
	masks := make([]uint16, len(prog))
	for i := range masks {
		masks[i] = 0xffff
	}
	var valid uint16
	for pc, ins := range prog {
		valid &= masks[pc]
		switch code := ins.Op; {
		case code == clsST || code == clsSTX:
			valid |= 1 << ins.K
		case code == clsLD|modeMEM || code == clsLDX|modeMEM:
			if valid&(1<<ins.K) == 0 {
				return &classicError{pc: pc, ins: ins, err: fmt.Errorf("reads M[%d], which no store may have written on the way here (the kernel refuses it: check_load_and_stores)", ins.K)}
			}
		case code == clsJMP|opJA:
			masks[pc+1+int(ins.K)] &= valid
			valid = 0xffff
		case isCondJump(code):
			masks[pc+1+int(ins.Jt)] &= valid
			masks[pc+1+int(ins.Jf)] &= valid
			valid = 0xffff
		}
	}
	return nil
}

// classicReachable returns which instructions of prog, a program
// checkClassic accepts, a run can reach: the kernel converts the others
// and never runs them, but the eBPF verifier refuses a program with an
// instruction no path reaches ("unreachable insn").
func classicReachable(prog []bpf.RawInstruction) []bool {
	reach := make([]bool, len(prog))
	reach[0] = true
	for pc, ins := range prog {
		if !reach[pc] {
			continue
		}
		switch code := ins.Op; {
		case code&0x07 == clsRET:
		case code == clsJMP|opJA:
			reach[pc+1+int(ins.K)] = true
		case isCondJump(code):
			reach[pc+1+int(ins.Jt)] = true
			reach[pc+1+int(ins.Jf)] = true
		default:
			reach[pc+1] = true
		}
	}
	return reach
}

// classicError is an error of FromClassic about the instruction at pc.
type classicError struct {
	pc  int
	ins bpf.RawInstruction
	err error
}

func (e *classicError) Error() string {
	return fmt.Sprintf("instruction %d (%s): %v", e.pc, classicString(e.ins), e.err)
}

func (e *classicError) Unwrap() error { return e.err }

// classicString returns ins as x/net/bpf prints it, or its fields where
// x/net/bpf does not know it or reads it otherwise than the kernel (`ldx
// #len`, which it takes for `ld #len`; a 1- or 2-byte ancillary load).
func classicString(ins bpf.RawInstruction) string {
	code := ins.Op
	faithful := code != clsLDX|modeLEN|szW && !(code&0xe7 == clsLD|modeABS && code != clsLD|modeABS|szW && ins.K >= skfADOff)
	if d, ok := ins.Disassemble().(fmt.Stringer); ok && faithful {
		return d.String()
	}
	return fmt.Sprintf("code 0x%02x jt %d jf %d k %#x", ins.Op, ins.Jt, ins.Jf, ins.K)
}
