//go:build linux

package sys

import (
	"encoding/binary"
	"os"
	"runtime"
	"structs"
	"unsafe"
)

// Program types (enum bpf_prog_type) purebpf loads.
const (
	BPF_PROG_TYPE_SOCKET_FILTER uint32 = 1
)

// Verifier log levels, OR-ed into ProgLoadAttr.LogLevel.
const (
	BPF_LOG_LEVEL1 uint32 = 1 // the instructions the verifier walks, with register state at branches
	BPF_LOG_LEVEL2 uint32 = 2 // register state after every instruction
	BPF_LOG_STATS  uint32 = 4 // the summary: processed insns, states, time
)

// ProgLoadAttr is the part of union bpf_attr that BPF_PROG_LOAD reads.
type ProgLoadAttr struct {
	_                  structs.HostLayout
	ProgType           uint32
	InsnCnt            uint32  // number of 8-byte instruction slots at Insns
	Insns              Pointer // struct bpf_insn[InsnCnt]
	License            Pointer // NUL-terminated license string
	LogLevel           uint32  // verbosity of the verifier log; BPF_LOG_*
	LogSize            uint32  // size of the buffer at LogBuf
	LogBuf             Pointer // user buffer for the verifier log
	KernVersion        uint32  // not used
	ProgFlags          uint32  // BPF_F_* load flags
	ProgName           ObjName
	ProgIfindex        uint32 // ifindex of the netdev to prepare for (offload)
	ExpectedAttachType uint32
	ProgBTFFD          uint32 // fd of the BTF type data
	FuncInfoRecSize    uint32 // user-space size of struct bpf_func_info
	FuncInfo           Pointer
	FuncInfoCnt        uint32
	LineInfoRecSize    uint32 // user-space size of struct bpf_line_info
	LineInfo           Pointer
	LineInfoCnt        uint32
	AttachBTFID        uint32 // in-kernel BTF type id to attach to
	AttachProgFD       uint32 // also attach_btf_obj_fd
	CoreReloCnt        uint32
	FDArray            Pointer
	CoreRelos          Pointer
	CoreReloRecSize    uint32
	// LogTrueSize is written by the kernel (Linux 6.4): the log size,
	// NUL included, that would have held the whole log. With a buffer that
	// is too small the load fails with ENOSPC and this says how big to make
	// it.
	LogTrueSize   uint32
	ProgTokenFD   int32
	FDArrayCnt    uint32
	Signature     Pointer
	SignatureSize uint32
	KeyringID     int32
}

// ProgLoad wraps bpf(2) BPF_PROG_LOAD: it verifies and loads a program and
// returns a new file descriptor (close-on-exec) that refers to it. The
// kernel writes the verifier log to attr.LogBuf and, from Linux 6.4, its
// full size to attr.LogTrueSize. On EINTR and EAGAIN the call is retried,
// see BPF.
func ProgLoad(attr *ProgLoadAttr) (int, error) {
	fd, err := BPF(BPF_PROG_LOAD, unsafe.Pointer(attr), unsafe.Sizeof(*attr))
	keepAlive(attr.Insns, attr.License, attr.LogBuf, attr.FuncInfo, attr.LineInfo,
		attr.FDArray, attr.CoreRelos, attr.Signature)
	runtime.KeepAlive(attr)
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}

// ProgTestRunAttr is the part of union bpf_attr that BPF_PROG_TEST_RUN
// reads and writes (the "test" struct).
type ProgTestRunAttr struct {
	_           structs.HostLayout
	ProgFD      uint32
	Retval      uint32  // written: the program's return value
	DataSizeIn  uint32  // length of DataIn
	DataSizeOut uint32  // in: size of DataOut; out: length of the data after the run
	DataIn      Pointer // the packet the program runs on
	DataOut     Pointer // optional buffer for the packet after the run
	Repeat      uint32  // runs to make; 0 means 1
	Duration    uint32  // written: mean time per run, ns
	CtxSizeIn   uint32
	CtxSizeOut  uint32
	CtxIn       Pointer // optional context in, for socket filters a struct __sk_buff
	CtxOut      Pointer // optional buffer for the context after the run
	Flags       uint32  // BPF_F_TEST_*
	CPU         uint32
	BatchSize   uint32
	_           uint32
}

// ProgTestRun wraps bpf(2) BPF_PROG_TEST_RUN: it runs the program attr.ProgFD
// on attr.DataIn in the kernel without attaching it, and writes its return
// value and the mean duration of a run to attr. If DataOut is too small for
// the data after the run, the kernel fills it and fails with ENOSPC.
func ProgTestRun(attr *ProgTestRunAttr) error {
	var err error
	if attr.Repeat <= 1 {
		// One run: the kernel checks for signals only between repeats
		// (bpf_test_timer_continue), so an EINTR means the program did
		// not run, and trying again is safe.
		_, err = BPF(BPF_PROG_TEST_RUN, unsafe.Pointer(attr), unsafe.Sizeof(*attr))
	} else if _, errno := bpfOnce(BPF_PROG_TEST_RUN, unsafe.Pointer(attr), unsafe.Sizeof(*attr)); errno != 0 {
		// Several: an EINTR comes after some of them ran, with their side
		// effects (map updates, ring buffer records); running them all
		// again would repeat those. The caller sees EINTR.
		err = os.NewSyscallError("bpf", errno)
	}
	keepAlive(attr.DataIn, attr.DataOut, attr.CtxIn, attr.CtxOut)
	runtime.KeepAlive(attr)
	return err
}

// ObjGetInfoByFDAttr is the part of union bpf_attr that
// BPF_OBJ_GET_INFO_BY_FD reads (the "info" struct).
type ObjGetInfoByFDAttr struct {
	_       structs.HostLayout
	BPFFD   uint32
	InfoLen uint32  // in: size of the buffer at Info; out: bytes written
	Info    Pointer // struct bpf_prog_info, bpf_map_info, ...
}

// ObjGetInfoByFD wraps bpf(2) BPF_OBJ_GET_INFO_BY_FD for a program: it
// fills info with what the kernel reports about the program fd refers to.
// Fields the running kernel does not know stay zero. Pointer fields of info
// ask for arrays (xlated or jited instructions, map ids); leave them nil
// unless their lengths are set to match.
func ObjGetInfoByFD(fd int, info *ProgInfo) error {
	attr := ObjGetInfoByFDAttr{
		BPFFD:   uint32(fd),
		InfoLen: uint32(unsafe.Sizeof(*info)),
		Info:    NewPointer(unsafe.Pointer(info)),
	}
	_, err := BPF(BPF_OBJ_GET_INFO_BY_FD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	keepAlive(info.JitedProgInsns, info.XlatedProgInsns, info.MapIDs, info.JitedKsyms,
		info.JitedFuncLens, info.FuncInfo, info.LineInfo, info.JitedLineInfo, info.ProgTags)
	runtime.KeepAlive(info)
	return err
}

// BPF_TAG_SIZE is the size of a program tag.
const BPF_TAG_SIZE = 8

// ProgInfo is struct bpf_prog_info.
type ProgInfo struct {
	_               structs.HostLayout
	Type            uint32
	ID              uint32
	Tag             [BPF_TAG_SIZE]byte // SHA-1 prefix of the instructions, maps' fds zeroed
	JitedProgLen    uint32             // bytes of JIT-compiled machine code
	XlatedProgLen   uint32             // bytes of translated (post-verifier) instructions
	JitedProgInsns  Pointer
	XlatedProgInsns Pointer
	LoadTime        uint64 // ns since boot (CLOCK_BOOTTIME)
	CreatedByUID    uint32
	NrMapIDs        uint32
	MapIDs          Pointer
	Name            ObjName
	Ifindex         uint32
	// GPLCompatibleBits holds the bit field gpl_compatible:1 and 31 bits
	// of padding; see GPLCompatible.
	GPLCompatibleBits    uint32
	NetnsDev             uint64
	NetnsIno             uint64
	NrJitedKsyms         uint32
	NrJitedFuncLens      uint32
	JitedKsyms           Pointer
	JitedFuncLens        Pointer
	BTFID                uint32
	FuncInfoRecSize      uint32
	FuncInfo             Pointer
	NrFuncInfo           uint32
	NrLineInfo           uint32
	LineInfo             Pointer
	JitedLineInfo        Pointer
	NrJitedLineInfo      uint32
	LineInfoRecSize      uint32
	JitedLineInfoRecSize uint32
	NrProgTags           uint32
	ProgTags             Pointer
	RunTimeNs            uint64
	RunCnt               uint64
	RecursionMisses      uint64
	VerifiedInsns        uint32 // instructions the verifier processed (Linux 5.16)
	AttachBTFObjID       uint32
	AttachBTFID          uint32
	_                    uint32
}

// GPLCompatible reports the gpl_compatible bit: whether the program was
// loaded with a GPL-compatible license.
func (i *ProgInfo) GPLCompatible() bool {
	// C bit fields are allocated from the least significant bit on
	// little-endian machines and from the most significant on big-endian.
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return i.GPLCompatibleBits&1 != 0
	}
	return i.GPLCompatibleBits&(1<<31) != 0
}

// keepAlive keeps what each pointer refers to alive up to this call.
func keepAlive(ps ...Pointer) {
	for _, p := range ps {
		runtime.KeepAlive(p.ptr)
	}
}
