package sockfilter

import (
	"encoding/hex"
	"time"
)

// LogLevel selects what the verifier writes to its log (the log_level of
// BPF_PROG_LOAD). Levels combine with |.
type LogLevel uint32

// The verifier log levels.
const (
	// LogLevelBranch (BPF_LOG_LEVEL1) logs the instructions the verifier
	// walks, with the register state where paths join and at errors.
	LogLevelBranch LogLevel = 1
	// LogLevelInstruction (BPF_LOG_LEVEL2) logs the register state after
	// every instruction. The log grows large quickly.
	LogLevelInstruction LogLevel = 2
	// LogLevelStats (BPF_LOG_STATS) adds the summary: instructions
	// processed, states, verification time and stack depth.
	LogLevelStats LogLevel = 4
)

// Sizes of the verifier log buffer.
const (
	// DefaultLogSize is the first size tried for a log.
	DefaultLogSize = 64 << 10
	// MinLogSize is the smallest log buffer the kernel accepts.
	MinLogSize = 128
	// MaxLogSize is the largest buffer Load allocates for a log. The
	// kernel accepts up to UINT_MAX >> 2 bytes; a log beyond this cap is
	// kept truncated (from Linux 6.4 its end, where the error is).
	MaxLogSize = 64 << 20
)

// DefaultLicense is the license a program is loaded with unless
// LoadOptions says otherwise. GPL-only helpers need a GPL-compatible one.
const DefaultLicense = "GPL"

// LoadOptions tunes Load. The zero value, like a nil *LoadOptions, loads
// under DefaultLicense with no name and no log unless the program fails.
type LoadOptions struct {
	// Name is the program's name as bpftool and Info show it. The kernel
	// takes at most 15 of the characters [A-Za-z0-9_.]; Load replaces
	// others with '_' and cuts the rest.
	Name string
	// License is the program's license; "" means DefaultLicense. It must
	// not contain a NUL byte.
	License string
	// LogLevel, when not zero, asks for the verifier log even when the
	// program loads; Program.VerifierLog returns it. A program that fails
	// to load always gets its log, at least at LogLevelBranch.
	LogLevel LogLevel
	// Maps gives the maps the program names (asm.LoadMapPtr,
	// asm.LoadMapValuePtr, `r1 = map[name]` in asm text) under those
	// names. Load puts each map's file descriptor into the instructions
	// that name it; the kernel then holds the maps as long as the program
	// lives, so they may be closed after Load. A name the program uses
	// that Maps lacks is an error naming it; names it does not use are
	// ignored.
	Maps map[string]*Map
	// LogSize is the first size of the log buffer; 0 means DefaultLogSize,
	// and less than MinLogSize means MinLogSize. When the log does not fit,
	// Load retries with the size the kernel reports it needs (Linux 6.4),
	// or else twice the size, up to MaxLogSize.
	LogSize int
}

// Tag is a program's tag: the first 8 bytes of the SHA-1 of its
// instructions as loaded, which bpftool and /proc/PID/fdinfo show.
type Tag [8]byte

// String returns the tag in hex, as bpftool prints it.
func (t Tag) String() string { return hex.EncodeToString(t[:]) }

// ProgramInfo is what the kernel reports about a loaded program.
type ProgramInfo struct {
	// ID is the kernel's id for the program, as `bpftool prog show id`
	// takes it.
	ID uint32
	// Tag is the program's tag.
	Tag Tag
	// Name is the name the program was loaded with.
	Name string
	// XlatedInsns is the number of 8-byte instruction slots after the
	// verifier rewrote the program (xlated_prog_len / 8): legacy packet
	// loads and context accesses become several instructions.
	XlatedInsns int
	// JITSize is the size in bytes of the JIT-compiled machine code, or 0
	// when the program is interpreted.
	JITSize int
	// VerifiedInsns is the number of instructions the verifier processed
	// (Linux 5.16).
	VerifiedInsns int
	// LoadTime is when the program was loaded.
	LoadTime time.Time
	// CreatedByUID is the user id of the process that loaded the program.
	CreatedByUID uint32
	// GPLCompatible reports whether the license allows GPL-only helpers.
	GPLCompatible bool
	// RunCount and RunTime count the program's runs and their total time
	// while the kernel collects statistics (sysctl kernel.bpf_stats_enabled
	// or BPF_ENABLE_STATS); otherwise they are zero.
	RunCount uint64
	RunTime  time.Duration
}
