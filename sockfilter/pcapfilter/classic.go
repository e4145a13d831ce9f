package pcapfilter

import (
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/asm"
)

// FromClassic converts a classic BPF program (golang.org/x/net/bpf; for
// instance the output of `tcpdump -dd`, decoded with
// bpf.RawInstruction.Disassemble) into an eBPF socket filter with the
// kernel's classic-BPF semantics (bpf_convert_filter in
// net/core/filter.c): the 32-bit accumulator A and index X start at 0, the
// 16 scratch words M[0..15] live on the stack, a division or modulo by an
// X of 0 ends the program returning 0, a shift by X uses X's low 5 bits,
// and a packet load past the end of the frame ends it returning 0.
//
// It takes the programs the kernel's classic checker takes
// (bpf_check_classic, which SO_ATTACH_FILTER runs) and refuses the others
// as it does, with an error that names the instruction at fault by its
// index in insns: an unknown code, a division by a constant 0, a constant
// shift of 32 or more, a scratch index past 15, a jump past the end, an
// unknown ancillary load, a last instruction that does not return, and a
// load of a scratch word that a path may reach before any store to it
// (check_load_and_stores). It reads instructions as the kernel does where
// x/net/bpf reads them otherwise (`ldx #len` loads X; an ancillary load is
// one whatever its size). Instructions no run can reach are left out: the
// kernel keeps them and never runs them, the eBPF verifier would refuse
// them. Each instruction's eBPF code starts with the label "c<index>", so
// a *sockfilter.VerifierError names the classic instruction too.
//
// Packet offsets are kept as they are, relative to skb->data, as the
// kernel's own conversion of a filter attached with SO_ATTACH_FILTER: on a
// packet socket offset 0 is the link-layer header (on a SOCK_DGRAM one,
// the network header), but under Program.Test (BPF_PROG_TEST_RUN) it is
// the network header. To load a program written for link-layer frames and
// get the same verdicts under Program.Test as on a SOCK_RAW socket, use
// FromClassicLinkRelative.
//
// The ancillary loads are mapped to __sk_buff fields and helpers:
// SKF_AD_PROTOCOL (bpf.ExtProto), PKTTYPE (ExtType), IFINDEX, MARK, QUEUE,
// RXHASH, VLAN_TAG, VLAN_TAG_PRESENT, VLAN_TPID (ExtVLANProto), CPU
// (bpf_get_smp_processor_id), RANDOM (bpf_get_prandom_u32) and ALU_XOR_X
// (A ^= X); bpf.ExtLen is `ld #len`, skb->len. HATYPE
// (ExtLinkLayerType), PAY_OFFSET (ExtPayloadOffset) and the netlink ones
// have no eBPF equivalent for socket filters and are an error.
func FromClassic(insns []bpf.Instruction) (asm.Instructions, error) {
	return fromClassic(insns, false)
}

// FromClassicLinkRelative is FromClassic with the packet offsets of
// absolute and indirect loads taken relative to the link-layer header
// (SKF_LL_OFF + k) rather than skb->data, and `ld #len` the frame length
// from the link-layer header, as Compile's programs do: the program gives
// the same verdict on a SOCK_RAW packet socket and under Program.Test.
// Offsets the program gives relative to a header (SKF_NET_OFF, SKF_LL_OFF)
// are kept.
func FromClassicLinkRelative(insns []bpf.Instruction) (asm.Instructions, error) {
	return fromClassic(insns, true)
}

// The registers of a converted classic program:
//
//	r0       A, where the packet loads leave their result
//	r7       X
//	r6       the context (struct __sk_buff *), as the packet loads need
//	r8       A while `ldx 4*([k]&0xf)` loads into r0
//	r9       the frame length from the link-layer header, computed once at
//	         the start (FromClassicLinkRelative, if the program reads it)
//	fp-128.. M[0] to M[15], 4 bytes each (scratchOff)
//	r1-r5    clobbered by the packet loads and helper calls
const (
	regA   = asm.R0
	regX   = asm.R7
	regTmp = asm.R8
	regLen = asm.R9
)

// scratchOff returns the stack offset of M[n].
func scratchOff(n uint32) int16 { return int16(-128 + 4*int(n)) }

// classicMaxInsns is BPF_MAXINSNS, the kernel's limit for classic programs.
const classicMaxInsns = 4096

// errNoEBPF is wrapped by the errors of ancillary loads eBPF cannot make.
var errNoEBPF = errors.New("no eBPF equivalent for socket filters")

// classicConv holds a conversion under way.
type classicConv struct {
	prog    []bpf.RawInstruction
	out     asm.Instructions
	from    []int // the classic index of each instruction of out
	linkRel bool
	ret0    bool // something jumps to "ret0"
}

func fromClassic(insns []bpf.Instruction, linkRel bool) (asm.Instructions, error) {
	prog, err := classicRaw(insns)
	if err != nil {
		return nil, fmt.Errorf("convert classic program: %w", err)
	}
	if err := checkClassic(prog); err != nil {
		return nil, fmt.Errorf("convert classic program: %w", err)
	}
	reach := classicReachable(prog)
	c := &classicConv{prog: prog, linkRel: linkRel}
	c.prologue(reach)
	for pc, ins := range prog {
		if !reach[pc] {
			continue
		}
		start := len(c.out)
		if err := c.convert(pc, ins); err != nil {
			return nil, fmt.Errorf("convert classic program: %w", &classicError{pc: pc, ins: ins, err: err})
		}
		if len(c.out) == start {
			c.emit(pc, asm.Goto("").WithOffset(0)) // a jump may land here
		}
		c.out[start] = c.out[start].WithLabel(classicLabel(pc))
	}
	if c.ret0 {
		c.emit(-1, asm.Mov.Imm(asm.R0, 0).WithLabel("ret0"), asm.Exit())
	}
	if err := c.checkJumps(); err != nil {
		return nil, fmt.Errorf("convert classic program: %w", err)
	}
	return c.out, nil
}

// classicRaw returns insns in the kernel's encoding, checking what an
// instruction of x/net/bpf can hold that the encoding cannot.
func classicRaw(insns []bpf.Instruction) ([]bpf.RawInstruction, error) {
	switch {
	case len(insns) == 0:
		return nil, fmt.Errorf("empty program")
	case len(insns) > classicMaxInsns:
		return nil, fmt.Errorf("%d instructions, more than the kernel's %d", len(insns), classicMaxInsns)
	}
	prog := make([]bpf.RawInstruction, len(insns))
	for i, ins := range insns {
		var err error
		switch ins := ins.(type) {
		case bpf.LoadScratch:
			if ins.N < 0 || ins.N >= memWords {
				err = fmt.Errorf("scratch index %d out of range 0-15", ins.N)
			}
		case bpf.StoreScratch:
			if ins.N < 0 || ins.N >= memWords {
				err = fmt.Errorf("scratch index %d out of range 0-15", ins.N)
			}
		case bpf.LoadAbsolute:
			err = classicSize(ins.Size)
		case bpf.LoadIndirect:
			err = classicSize(ins.Size)
		case nil:
			err = fmt.Errorf("nil instruction")
		}
		if err == nil {
			prog[i], err = ins.Assemble()
		}
		if err != nil {
			return nil, fmt.Errorf("instruction %d (%v): %w", i, ins, err)
		}
	}
	return prog, nil
}

func classicSize(size int) error {
	if size != 1 && size != 2 && size != 4 {
		return fmt.Errorf("load size %d is not 1, 2 or 4", size)
	}
	return nil
}

func classicLabel(pc int) string { return "c" + strconv.Itoa(pc) }

// prologue keeps the context in r6, zeroes A and X, and for
// FromClassicLinkRelative computes the frame length in r9 if a reachable
// instruction reads it.
func (c *classicConv) prologue(reach []bool) {
	c.emit(-1, asm.Mov.Reg(asm.R6, asm.R1))
	if c.linkRel {
		for pc, ins := range c.prog {
			if reach[pc] && (ins.Op == clsLD|modeLEN|szW || ins.Op == clsLDX|modeLEN|szW) {
				c.emit(-1, frameLenInsns(regLen, asm.R6, false)...)
				break
			}
		}
	}
	c.emit(-1, asm.Mov.Imm32(regA, 0), asm.Mov.Imm32(regX, 0))
}

// emit appends ins, the code of classic instruction pc (-1 for the
// prologue and the shared blocks).
func (c *classicConv) emit(pc int, ins ...asm.Instruction) {
	c.out = append(c.out, ins...)
	for range ins {
		c.from = append(c.from, pc)
	}
}

// checkJumps returns an error naming the classic jump whose eBPF jump
// would not fit 16 bits once the kernel has expanded the program (see
// xlatedLen).
func (c *classicConv) checkJumps() error {
	i, d := farJump(c.out)
	if i < 0 {
		return nil
	}
	err := fmt.Errorf("its eBPF jump crosses %d instructions once the kernel has expanded the program, farther than the 32767 a jump reaches", d)
	if pc := c.from[i]; pc >= 0 {
		return &classicError{pc: pc, ins: c.prog[pc], err: err}
	}
	return err
}
