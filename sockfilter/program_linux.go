package sockfilter

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/sys"
)

// maxLogSize is MaxLogSize, lowered by tests of the truncated log.
var maxLogSize uint32 = MaxLogSize

// Program is an eBPF socket filter loaded into the kernel. It holds a file
// descriptor until Close. A Program is safe for concurrent use. Only Load
// makes a Program: the zero Program holds no program, and its methods fail
// with ErrClosed.
type Program struct {
	mu     sync.RWMutex // held for reading while fd is used, for writing by Close
	fd     int          // the program's fd, while open
	open   bool         // fd is a loaded program's, not yet closed
	insns  asm.Instructions
	name   string
	log    string
	logCut bool
	pinned string // where Pin or LoadPinnedProgram found the program, for Unpin
}

// Load verifies insns and loads them into the kernel as a socket filter
// (bpf(2) BPF_PROG_LOAD, BPF_PROG_TYPE_SOCKET_FILTER). A nil opts means the
// defaults of LoadOptions.
//
// The program runs on every frame the socket it is attached to receives,
// with r1 pointing to the struct __sk_buff, and returns how many bytes of
// the frame to keep: 0 drops it, 0xffffffff keeps all of it.
//
// If the verifier refuses the program, the error is a *VerifierError that
// points to the offending instruction. The kernel's verifier is the
// authority: Load does not refuse anything before it has had its say,
// because its log says more. To check a program's shape without a kernel
// (jumps inside the program, no falling off its end, fields the kernel
// accepts), use asm.Instructions.Validate, as the vm package does. Without CAP_BPF the error says so
// and matches unix.EPERM. Load needs CAP_BPF (or CAP_SYS_ADMIN); attaching
// the program to a packet socket also needs CAP_NET_RAW.
func Load(insns asm.Instructions, opts *LoadOptions) (*Program, error) {
	if opts == nil {
		opts = &LoadOptions{}
	}
	if len(insns) == 0 {
		return nil, errors.New("load program: no instructions")
	}
	license := opts.License
	if license == "" {
		license = DefaultLicense
	}
	if strings.IndexByte(license, 0) >= 0 {
		return nil, fmt.Errorf("load program: license %q contains a NUL byte", license)
	}
	if bad := opts.LogLevel &^ (LogLevelBranch | LogLevelInstruction | LogLevelStats); bad != 0 {
		return nil, fmt.Errorf("load program: unknown log level bits %#x", uint32(bad))
	}
	code, done, err := assembleWithMaps(insns, opts.Maps)
	if err != nil {
		return nil, fmt.Errorf("load program: %w", err)
	}
	defer done()
	if err := checkInsnCount(len(code) / 8); err != nil {
		return nil, fmt.Errorf("load program: %w", err)
	}
	name := sanitizeName(opts.Name)
	l := loader{
		attr: sys.ProgLoadAttr{
			ProgType: sys.BPF_PROG_TYPE_SOCKET_FILTER,
			InsnCnt:  uint32(len(code) / 8),
			Insns:    sys.SlicePointer(code),
			License:  sys.StringPointer(license),
			ProgName: sys.NewObjName(name),
		},
		size: min(logSize(opts.LogSize), maxLogSize),
	}

	p := &Program{insns: append(asm.Instructions(nil), insns...), name: name}
	var fd int
	if opts.LogLevel == 0 {
		fd, err = l.load(0)
		if err == nil {
			p.fd, p.open = fd, true
			return p, nil
		}
		if errors.Is(err, unix.EPERM) {
			return nil, permissionError(err)
		}
		// Load again with a log to say why.
		return l.refused(insns, err)
	}

	fd, err = l.load(uint32(opts.LogLevel))
	switch {
	case err == nil:
		p.fd, p.open, p.log, p.logCut = fd, true, l.log, l.cut
		return p, nil
	case errors.Is(err, unix.EPERM):
		return nil, permissionError(err)
	case l.cut && errors.Is(err, unix.ENOSPC):
		// The log did not fit even in MaxLogSize bytes, which fails even a
		// valid program. Find out whether this one is: load it without.
		log := l.log
		fd, err2 := l.load(0)
		if err2 == nil {
			p.fd, p.open, p.log, p.logCut = fd, true, log, true
			return p, nil
		}
		l.log, l.cut = log, true
		return nil, l.verifierError(insns, err2)
	case opts.LogLevel&(LogLevelBranch|LogLevelInstruction) == 0:
		// A stats-only log says little about a failure.
		return l.refused(insns, err)
	}
	return nil, l.verifierError(insns, err)
}

// logSize returns the first log buffer size for a LoadOptions.LogSize.
func logSize(n int) uint32 {
	switch {
	case n == 0:
		return DefaultLogSize
	case n < MinLogSize:
		return MinLogSize
	case n > MaxLogSize:
		return MaxLogSize
	}
	return uint32(n)
}

// permissionError adds to an EPERM what the caller needs: the capability
// the process lacks, as capget(2) tells.
func permissionError(err error) error {
	return fmt.Errorf("load program: %s: %w", loadPermHint(), err)
}

// The most instructions (8-byte slots) BPF_PROG_LOAD takes: 4096
// (BPF_MAXINSNS) without CAP_BPF or CAP_SYS_ADMIN, 1,000,000
// (BPF_COMPLEXITY_LIMIT_INSNS) with one (bpf_prog_load, Linux 5.2).
const (
	maxInsnsUnprivileged = 4096
	maxInsns             = 1_000_000
)

// checkInsnCount refuses a program of n slots that the kernel would refuse
// for its size with E2BIG, before it is sent, and says so.
func checkInsnCount(n int) error {
	if n <= maxInsnsUnprivileged {
		return nil
	}
	if !bpfCapable() {
		return fmt.Errorf("program of %d instructions is more than the %d the kernel loads without CAP_BPF or CAP_SYS_ADMIN (BPF_MAXINSNS): %w", n, maxInsnsUnprivileged, unix.E2BIG)
	}
	if n > maxInsns {
		return fmt.Errorf("program of %d instructions is more than the %d the kernel loads (BPF_COMPLEXITY_LIMIT_INSNS); simplify the filter: %w", n, maxInsns, unix.E2BIG)
	}
	return nil
}

// loader makes the BPF_PROG_LOAD calls of one Load.
type loader struct {
	attr sys.ProgLoadAttr
	size uint32 // size of the next log buffer
	log  string // the log of the last call that asked for one
	cut  bool   // whether that log was truncated
}

// logSlack is the room added to the log size the kernel asks for.
const logSlack = 64

// loadHook, when set by a test, sees the result of every BPF_PROG_LOAD.
var loadHook func(logLevel, logSize uint32, err error)

// load makes BPF_PROG_LOAD with the log at level (none if 0). While the
// log does not fit it retries with a bigger buffer, up to MaxLogSize; past
// that it returns ENOSPC with l.cut set and the end of the log in l.log.
func (l *loader) load(level uint32) (int, error) {
	l.log, l.cut = "", false
	for {
		var buf []byte
		l.attr.LogLevel, l.attr.LogSize, l.attr.LogBuf, l.attr.LogTrueSize = level, 0, sys.Pointer{}, 0
		if level != 0 {
			buf = make([]byte, l.size)
			l.attr.LogSize, l.attr.LogBuf = l.size, sys.SlicePointer(buf)
		}
		fd, err := sys.ProgLoad(&l.attr)
		if loadHook != nil {
			loadHook(level, l.attr.LogSize, err)
		}
		if level == 0 {
			return fd, err
		}
		l.log = unix.ByteSliceToString(buf)
		if !errors.Is(err, unix.ENOSPC) {
			return fd, err
		}
		// ENOSPC: the log did not fit. Linux 6.4 and later say how much
		// room it needs (NUL included); earlier kernels leave LogTrueSize 0.
		if l.size >= maxLogSize {
			l.cut = true
			return fd, err
		}
		next := l.size * 2
		if t := l.attr.LogTrueSize; t > l.size {
			// The log of the next load may be a little longer: its
			// "verification time N usec" can take another digit.
			next = t + logSlack
		}
		l.size = min(next, maxLogSize)
	}
}

// refused returns the VerifierError of a program that failed with err,
// loading it again with a log at LogLevelBranch.
func (l *loader) refused(insns asm.Instructions, err error) (*Program, error) {
	fd, err2 := l.load(uint32(LogLevelBranch))
	if err2 == nil {
		// It loaded after all: the first failure was transient.
		return &Program{fd: fd, open: true, insns: append(asm.Instructions(nil), insns...), name: unix.ByteSliceToString(l.attr.ProgName[:])}, nil
	}
	if !l.cut || !errors.Is(err2, unix.ENOSPC) {
		// Prefer the errno of the load with the full log; they agree
		// unless the log was truncated.
		err = err2
	}
	return nil, l.verifierError(insns, err)
}

// verifierError builds the error for a refused program from err and the
// log of the last load.
func (l *loader) verifierError(insns asm.Instructions, err error) *VerifierError {
	return newVerifierError(insns, err, l.log, l.cut)
}

// sanitizeName returns name as the kernel accepts a program name: the
// characters [A-Za-z0-9_.] kept, others replaced with '_', cut to 15
// bytes.
func sanitizeName(name string) string {
	b := make([]byte, 0, min(len(name), sys.BPF_OBJ_NAME_LEN-1))
	for i := 0; i < len(name) && len(b) < sys.BPF_OBJ_NAME_LEN-1; i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	return string(b)
}

// FD returns the program's file descriptor, or -1 after Close and for the
// zero Program. The fd stays owned by p: do not close it.
func (p *Program) FD() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.open {
		return -1
	}
	return p.fd
}

// Close releases the program's file descriptor. The kernel frees the
// program when no socket holds it any more; sockets it is attached to keep
// filtering. Close is idempotent: later calls return nil.
func (p *Program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.open {
		return nil
	}
	err := unix.Close(p.fd)
	p.fd, p.open = -1, false
	if err != nil {
		return fmt.Errorf("close program: %w", err)
	}
	return nil
}

// Instructions returns a copy of the instructions p was loaded from.
func (p *Program) Instructions() asm.Instructions {
	return append(asm.Instructions(nil), p.insns...)
}

// Name returns the name p was loaded with, with the characters the kernel refuses replaced by '_' and cut to 15 bytes.
func (p *Program) Name() string { return p.name }

// VerifierLog returns the verifier's log of the load, if
// LoadOptions.LogLevel asked for one, and whether it was truncated to
// MaxLogSize bytes (then it holds the end of the log).
func (p *Program) VerifierLog() (log string, truncated bool) {
	return p.log, p.logCut
}

// use runs f with the program's fd, held open meanwhile.
func (p *Program) use(op string, f func(fd int) error) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.open {
		return fmt.Errorf("%s: program closed or never loaded: %w", op, ErrClosed)
	}
	return f(p.fd)
}
