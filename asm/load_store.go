package asm

// LoadImm64 emits `dst = imm`, the two-slot wide load of a 64-bit constant
// (BPF_LD | BPF_DW | BPF_IMM).
func LoadImm64(dst Register, imm int64) Instruction {
	return Instruction{OpCode: ldImm64, Dst: dst, Constant: imm}
}

// LoadMapFD emits `dst = map`, loading a pointer to the map whose file
// descriptor is fd (LD_IMM64, src BPF_PSEUDO_MAP_FD). The kernel replaces
// the fd with the map's address at load time.
func LoadMapFD(dst Register, fd int32) Instruction {
	return Instruction{OpCode: ldImm64, Dst: dst, Src: PseudoMapFD, Constant: int64(uint32(fd))}
}

// LoadMapValue emits `dst = &value + off`, loading the address of offset
// off into the single value of the array map whose file descriptor is fd
// (LD_IMM64, src BPF_PSEUDO_MAP_VALUE, Linux 5.2).
func LoadMapValue(dst Register, fd int32, off uint32) Instruction {
	return Instruction{OpCode: ldImm64, Dst: dst, Src: PseudoMapValue, Constant: int64(uint32(fd)) | int64(off)<<32}
}

// LoadMapPtr emits `dst = map[name]`: LoadMapFD for the map the program
// calls name, whose file descriptor the loader fills in (sockfilter.Load,
// from LoadOptions.Maps). Assemble refuses it until then, with
// ErrUnresolvedMap. Name should be an identifier (letters, digits, '_'
// and '.', not starting with a digit) for the text to parse back.
func LoadMapPtr(dst Register, name string) Instruction {
	return Instruction{OpCode: ldImm64, Dst: dst, Src: PseudoMapFD, Map: name}
}

// LoadMapValuePtr emits `dst = map[name][0]+off`: LoadMapValue for the
// array map the program calls name, resolved as LoadMapPtr is (Linux 5.2).
func LoadMapValuePtr(dst Register, name string, off uint32) Instruction {
	return Instruction{OpCode: ldImm64, Dst: dst, Src: PseudoMapValue, Constant: int64(off) << 32, Map: name}
}

// LoadMapIdx emits `dst = map`, loading a pointer to the map at index idx of
// the fd_array passed with the program (LD_IMM64, src BPF_PSEUDO_MAP_IDX,
// Linux 5.14).
func LoadMapIdx(dst Register, idx int32) Instruction {
	return Instruction{OpCode: ldImm64, Dst: dst, Src: PseudoMapIdx, Constant: int64(uint32(idx))}
}

// LoadMapIdxValue emits `dst = &value + off` for the map at index idx of the
// fd_array (LD_IMM64, src BPF_PSEUDO_MAP_IDX_VALUE, Linux 5.14).
func LoadMapIdxValue(dst Register, idx int32, off uint32) Instruction {
	return Instruction{OpCode: ldImm64, Dst: dst, Src: PseudoMapIdxValue, Constant: int64(uint32(idx)) | int64(off)<<32}
}

// LoadBTFID emits `dst = &var`, loading the address of the kernel variable
// whose BTF id is id (LD_IMM64, src BPF_PSEUDO_BTF_ID, Linux 5.10).
func LoadBTFID(dst Register, id int32) Instruction {
	return Instruction{OpCode: ldImm64, Dst: dst, Src: PseudoBTFID, Constant: int64(uint32(id))}
}

// LoadFunc emits `dst = &subprog`, loading the address of the subprogram
// that starts at label, for callbacks such as bpf_loop (LD_IMM64, src
// BPF_PSEUDO_FUNC, Linux 5.13).
func LoadFunc(dst Register, label string) Instruction {
	return Instruction{OpCode: ldImm64, Dst: dst, Src: PseudoFunc, Target: label}
}

// ldImm64 is the opcode of the wide load, BPF_LD | BPF_DW | BPF_IMM.
const ldImm64 = OpCode(LdClass) | OpCode(ImmMode) | 0x18

// LoadMem emits `dst = *(size *)(src + off)` (BPF_LDX | BPF_MEM).
func LoadMem(dst, src Register, off int16, size Size) Instruction {
	return Instruction{OpCode: OpCode(LdXClass) | OpCode(MemMode), Dst: dst, Src: src, Offset: off}.withSize(size)
}

// LoadMemSX emits `dst = *(s<size> *)(src + off)`, sign-extending the loaded
// value to 64 bits (BPF_LDX | BPF_MEMSX, Linux 6.6). Size may be Byte, Half
// or Word.
func LoadMemSX(dst, src Register, off int16, size Size) Instruction {
	return Instruction{OpCode: OpCode(LdXClass) | OpCode(MemSXMode), Dst: dst, Src: src, Offset: off}.withSize(size)
}

// StoreMem emits `*(size *)(dst + off) = src` (BPF_STX | BPF_MEM).
func StoreMem(dst Register, off int16, src Register, size Size) Instruction {
	return Instruction{OpCode: OpCode(StXClass) | OpCode(MemMode), Dst: dst, Src: src, Offset: off}.withSize(size)
}

// StoreImm emits `*(size *)(dst + off) = imm` (BPF_ST | BPF_MEM).
func StoreImm(dst Register, off int16, imm int32, size Size) Instruction {
	return Instruction{OpCode: OpCode(StClass) | OpCode(MemMode), Dst: dst, Offset: off, Constant: int64(imm)}.withSize(size)
}

// LoadAbs emits the legacy packet load `r0 = *(size *)skb[off]` (BPF_LD |
// BPF_ABS). The socket buffer is taken from r6; the value is converted from
// network byte order; r1 to r5 are clobbered; a load past the end of the
// packet ends the program returning 0. Negative offsets reach the link-layer
// header (SKF_LL_OFF, -0x200000) and network header (SKF_NET_OFF,
// -0x100000) wherever skb->data points: package sockfilter/skb has them,
// as skb.LLOff and skb.NetOff, and builders that use them.
func LoadAbs(off int32, size Size) Instruction {
	return Instruction{OpCode: OpCode(LdClass) | OpCode(AbsMode), Constant: int64(off)}.withSize(size)
}

// LoadInd emits the legacy packet load `r0 = *(size *)skb[src + off]`
// (BPF_LD | BPF_IND), with the semantics of LoadAbs.
func LoadInd(src Register, off int32, size Size) Instruction {
	return Instruction{OpCode: OpCode(LdClass) | OpCode(IndMode), Src: src, Constant: int64(off)}.withSize(size)
}

// AtomicOp is an atomic operation, held in the immediate of a BPF_STX |
// BPF_ATOMIC instruction (Linux 5.12; 32-bit operands need a JIT that
// supports them).
type AtomicOp int32

// The atomic operations.
const (
	AtomicAdd AtomicOp = 0x00 // lock *(size *)(dst + off) += src
	AtomicOr  AtomicOp = 0x40 // lock *(size *)(dst + off) |= src
	AtomicAnd AtomicOp = 0x50 // lock *(size *)(dst + off) &= src
	AtomicXor AtomicOp = 0xa0 // lock *(size *)(dst + off) ^= src

	FetchAdd AtomicOp = AtomicAdd | fetch // src = atomic_fetch_add(dst + off, src)
	FetchOr  AtomicOp = AtomicOr | fetch  // src = atomic_fetch_or(dst + off, src)
	FetchAnd AtomicOp = AtomicAnd | fetch // src = atomic_fetch_and(dst + off, src)
	FetchXor AtomicOp = AtomicXor | fetch // src = atomic_fetch_xor(dst + off, src)

	Xchg    AtomicOp = 0xe0 | fetch // src = xchg(dst + off, src)
	CmpXchg AtomicOp = 0xf0 | fetch // r0 = cmpxchg(dst + off, r0, src)

	// LoadAcq is BPF_LOAD_ACQ (Linux 6.15): LoadAcq.Mem(dst, off, src,
	// size) emits `dst = load_acquire((size *)(src + off))`.
	LoadAcq AtomicOp = 0x100
	// StoreRel is BPF_STORE_REL (Linux 6.15): StoreRel.Mem(dst, off, src,
	// size) emits `store_release((size *)(dst + off), src)`.
	StoreRel AtomicOp = 0x110
)

const fetch = 0x01 // BPF_FETCH

// Mem emits the atomic operation op on `*(size *)(dst + off)` with operand
// src (BPF_STX | BPF_ATOMIC). Size must be Word or DWord for the
// read-modify-write operations; LoadAcq and StoreRel take any size.
func (op AtomicOp) Mem(dst Register, off int16, src Register, size Size) Instruction {
	return Instruction{OpCode: OpCode(StXClass) | OpCode(AtomicMode), Dst: dst, Src: src, Offset: off, Constant: int64(op)}.withSize(size)
}

// withSize returns ins with size in its opcode, or marked invalid when size
// is not one of the four access sizes.
func (ins Instruction) withSize(size Size) Instruction {
	switch size {
	case Byte, Half, Word, DWord:
		ins.OpCode |= size.bits()
	default:
		ins.badSize = 0x100 | uint16(size)
	}
	return ins
}
