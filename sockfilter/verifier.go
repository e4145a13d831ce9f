package sockfilter

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/purebpf/purebpf/asm"
)

// VerifierError is the error of Load for a program the kernel refused:
// the verifier's log, and the instruction it stopped at mapped back to the
// program as written.
//
// Its Error is one line, e.g.
//
//	load program: insn 7 (after label ipv4): r0 = *(u8 *)(r2 +0): R2 invalid mem access 'scalar'
//
// Format it with %+v to get that line followed by the whole log.
type VerifierError struct {
	// Err is the error of BPF_PROG_LOAD, an *os.SyscallError wrapping the
	// errno: EACCES for most refusals, EINVAL for malformed programs.
	// errors.Is(err, unix.EACCES) sees through to it.
	Err error
	// Log holds every line of the verifier log (level 1).
	Log []string
	// Truncated reports that the log did not fit in MaxLogSize bytes;
	// Log then holds its end, where the error is (Linux 6.4 and later
	// keep the end of a log that does not fit; earlier kernels its start).
	Truncated bool
	// Reason is the verifier's complaint: the last line of the log before
	// its "processed N insns" summary, e.g. "R0 !read_ok".
	Reason string
	// Index is the index, in the instructions passed to Load, of the
	// instruction the verifier refused, or -1 if the log does not say.
	// The log counts 8-byte slots, where LD_IMM64 takes two; Index counts
	// instructions.
	Index int
	// Insn is the instruction at Index, if Index is not -1.
	Insn asm.Instruction
	// Label is the nearest label at or before Index, or "".
	Label string
}

// Error returns one line: the failing instruction, where it is, and the
// verifier's reason.
func (e *VerifierError) Error() string {
	var b strings.Builder
	b.WriteString("load program: ")
	if e.Index >= 0 {
		b.WriteString("insn ")
		b.WriteString(strconv.Itoa(e.Index))
		switch {
		case e.Label != "" && e.Insn.Label == e.Label:
			b.WriteString(" (at label " + e.Label + ")")
		case e.Label != "":
			b.WriteString(" (after label " + e.Label + ")")
		}
		b.WriteString(": ")
		b.WriteString(e.Insn.String())
		b.WriteString(": ")
	}
	switch {
	case e.Reason != "":
		b.WriteString(e.Reason)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("refused by the verifier")
	}
	if e.Truncated {
		b.WriteString(" (verifier log truncated)")
	}
	return b.String()
}

// Unwrap returns Err, so errors.Is matches the errno.
func (e *VerifierError) Unwrap() error { return e.Err }

// Format formats e as Error does; with the verb %+v it adds the errno and
// the whole log, a line each.
func (e *VerifierError) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('+'):
		io.WriteString(f, e.Error())
		if e.Err != nil {
			io.WriteString(f, " ("+e.Err.Error()+")")
		}
		io.WriteString(f, "\nverifier log:\n")
		for _, l := range e.Log {
			io.WriteString(f, "\t"+l+"\n")
		}
	case verb == 'v' || verb == 's':
		io.WriteString(f, e.Error())
	case verb == 'q':
		io.WriteString(f, strconv.Quote(e.Error()))
	default:
		fmt.Fprintf(f, "%%!%c(*sockfilter.VerifierError=%s)", verb, e.Error())
	}
}

var (
	// logInsn matches an instruction line of the verifier log:
	// "7: (71) r0 = *(u8 *)(r2 +0)", perhaps followed by "; R0_w=...".
	logInsn = regexp.MustCompile(`^(\d+): \([0-9a-f]{2}\) `)
	// logState matches a register-state line: "7: R1=ctx() R10=fp0",
	// "from 4 to 6: R0=1 R10=fp0", "; R0_w=2048".
	logState = regexp.MustCompile(`^(\d+: |from \d+ to \d+: |; )?(frame\d+: )?R\d+(_[a-z]+)?=`)
	// logSummary matches the summary that ends a level 1 log.
	logSummary = regexp.MustCompile(`^processed \d+ insns`)
	// logNoise matches lines that are never the reason: the liveness
	// table and the statistics (BPF_LOG_STATS), precision tracking and
	// state dumps (BPF_LOG_LEVEL2), and the states compared after an
	// infinite loop.
	logNoise = regexp.MustCompile(`^(\s|func#\d+ @\d+$|Live regs before insn:|verification time \d+ usec|stack depth [\d+]+$|mark_precise: |SCC |(cur|old) state: )`)
	// logInsnRef matches an instruction named in a reason, as in
	// "back-edge from insn 4 to 2" or "infinite loop detected at insn 1".
	logInsnRef = regexp.MustCompile(`\binsn (\d+)\b`)
)

// reasonLastInsn is the verifier's reason for a program whose last
// instruction cannot end it.
const reasonLastInsn = "last insn is not an exit or jmp"

// newVerifierError builds the VerifierError of insns refused with err and
// the verifier log log.
func newVerifierError(insns asm.Instructions, err error, log string, truncated bool) *VerifierError {
	e := &VerifierError{Err: err, Truncated: truncated, Index: -1}
	log = strings.TrimRight(log, "\n")
	if log != "" {
		e.Log = strings.Split(log, "\n")
	}

	// The reason is the last line before the summary (or the end) that
	// is neither an instruction, nor register state, nor other noise.
	end := len(e.Log)
	for i, v := range slices.Backward(e.Log) {
		if logSummary.MatchString(v) {
			end = i
			break
		}
	}
	at := -1
	for i := end - 1; i >= 0; i-- {
		l := e.Log[i]
		if strings.TrimSpace(l) == "" || logNoise.MatchString(l) || logInsn.MatchString(l) || logState.MatchString(l) {
			continue
		}
		e.Reason, at = strings.TrimSpace(l), i
		break
	}

	// The failing instruction is the one the reason names; failing that,
	// the last one the verifier walked before it.
	slot := -1
	if m := logInsnRef.FindStringSubmatch(e.Reason); m != nil {
		slot, _ = strconv.Atoi(m[1])
	} else if e.Reason == reasonLastInsn && len(insns) > 0 {
		slot = insns.Offsets()[len(insns)-1]
	}
	for i := at - 1; slot < 0 && i >= 0; i-- {
		if m := logInsn.FindStringSubmatch(e.Log[i]); m != nil {
			slot, _ = strconv.Atoi(m[1])
		}
	}
	if slot >= 0 {
		e.Index = slotIndex(insns, slot)
	}
	if e.Index >= 0 {
		e.Insn = insns[e.Index]
		for i := e.Index; i >= 0; i-- {
			if insns[i].Label != "" {
				e.Label = insns[i].Label
				break
			}
		}
	}
	return e
}

// slotIndex returns the index of the instruction of insns that occupies
// the 8-byte slot, or -1 if there is none.
func slotIndex(insns asm.Instructions, slot int) int {
	offs := insns.Offsets()
	for i, off := range offs {
		if slot >= off && slot < off+insns[i].Slots() {
			return i
		}
	}
	return -1
}
