package sockfilter

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// refusedIPv4 fails at its instruction 5, which sits at slot 6: the
// LD_IMM64 at instruction 1 takes two slots.
var refusedIPv4 = asm.Instructions{
	asm.Mov.Reg(asm.R6, asm.R1),               // 0, slot 0
	asm.LoadImm64(asm.R3, 0x1122334455667788), // 1, slots 1-2
	skb.LoadLink(12, asm.Half),                // 2, slot 3: the EtherType
	asm.JNE.Imm(asm.R0, 0x0800, "drop"),       // 3, slot 4
	asm.Mov.Imm(asm.R2, 0).WithLabel("ipv4"),  // 4, slot 5
	asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte),  // 5, slot 6: r2 is a number, not a pointer
	asm.Exit(),                                // 6, slot 7
	asm.Mov.Imm(asm.R0, 0).WithLabel("drop"),  // 7, slot 8
	asm.Exit(),                                // 8, slot 9
}

func TestVerifierError(t *testing.T) {
	testutil.RequirePrivileged(t)
	tests := []struct {
		name   string
		insns  asm.Instructions
		errno  unix.Errno
		index  int
		label  string
		reason string
		error  string // the whole of Error(), if not ""
	}{
		{
			name:   "R0 unset",
			insns:  asm.Instructions{asm.Exit()},
			errno:  unix.EACCES,
			index:  0,
			reason: "R0 !read_ok",
			error:  "load program: insn 0: exit: R0 !read_ok",
		},
		{
			name:   "scalar dereference after LD_IMM64",
			insns:  refusedIPv4,
			errno:  unix.EACCES,
			index:  5,
			label:  "ipv4",
			reason: "R2 invalid mem access 'scalar'",
			error:  "load program: insn 5 (after label ipv4): r0 = *(u8 *)(r2 +0): R2 invalid mem access 'scalar'",
		},
		{
			name: "at a label",
			insns: asm.Instructions{
				asm.LoadImm64(asm.R0, 1),
				asm.JEq.Imm(asm.R0, 1, "out"),
				asm.Mov.Imm(asm.R0, 0),
				asm.Mov.Imm(asm.R10, 0).WithLabel("out"),
				asm.Exit(),
			},
			errno:  unix.EACCES,
			index:  3,
			label:  "out",
			reason: "frame pointer is read only",
			error:  "load program: insn 3 (at label out): r10 = 0: frame pointer is read only",
		},
		{
			name:   "helper not for socket filters",
			insns:  asm.Instructions{asm.LoadImm64(asm.R7, 0).WithLabel("start"), asm.Call(asm.FnRedirect), asm.Exit()},
			errno:  unix.EINVAL,
			index:  1,
			label:  "start",
			reason: "program of this type cannot use helper bpf_redirect#23",
		},
		{
			name: "infinite loop, named in the reason",
			insns: asm.Instructions{
				asm.Mov.Imm(asm.R0, 0).WithLabel("top"),
				asm.JEq.Imm(asm.R0, 0, "top"),
				asm.Exit(),
			},
			errno:  unix.EINVAL,
			index:  1,
			label:  "top",
			reason: "infinite loop detected at insn 1",
		},
		{
			name: "unreachable, before the walk",
			insns: asm.Instructions{
				asm.LoadImm64(asm.R0, 0),
				asm.Exit(),
				asm.Mov.Imm(asm.R0, 1).WithLabel("dead"),
				asm.Exit(),
			},
			errno:  unix.EINVAL,
			index:  2, // slot 3
			label:  "dead",
			reason: "unreachable insn 3",
		},
		{
			name:   "last instruction falls through",
			insns:  asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Mov.Imm(asm.R0, 1)},
			errno:  unix.EINVAL,
			index:  1,
			reason: "last insn is not an exit or jmp",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(tt.insns, nil)
			if err == nil {
				p.Close()
				t.Fatal("program loaded")
			}
			var ve *VerifierError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v (%T) is not a *VerifierError", err, err)
			}
			if !errors.Is(err, tt.errno) {
				t.Errorf("error %v does not match %v", err, tt.errno)
			}
			if ve.Index != tt.index || ve.Label != tt.label || ve.Reason != tt.reason {
				t.Errorf("index %d label %q reason %q, want %d %q %q", ve.Index, ve.Label, ve.Reason, tt.index, tt.label, tt.reason)
			}
			if ve.Index >= 0 && ve.Insn != tt.insns[ve.Index] {
				t.Errorf("Insn %v, want %v", ve.Insn, tt.insns[ve.Index])
			}
			if tt.error != "" && err.Error() != tt.error {
				t.Errorf("Error()\n got %s\nwant %s", err, tt.error)
			}
			if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Error() %q is not one line with the reason", err)
			}
			if ve.Truncated || len(ve.Log) == 0 || !strings.Contains(strings.Join(ve.Log, "\n"), tt.reason) {
				t.Errorf("log (truncated %v) lacks the reason:\n%s", ve.Truncated, strings.Join(ve.Log, "\n"))
			}
			full := fmt.Sprintf("%+v", err)
			if !strings.HasPrefix(full, err.Error()) || strings.Count(full, "\n") < len(ve.Log) {
				t.Errorf("%%+v does not give the whole log:\n%s", full)
			}
		})
	}
}

// TestVerifierErrorParse checks the log parsing alone, on logs the kernel
// wrote, with lines the level 2 and stats logs add.
func TestVerifierErrorParse(t *testing.T) {
	insns := refusedIPv4
	level2 := `func#0 @0
Live regs before insn:
      0: 012.45.789 (bf) r6 = r1
      6: ..2....... (71) r0 = *(u8 *)(r2 +0)
0: R1=ctx() R10=fp0
0: (bf) r6 = r1                       ; R1=ctx() R6_w=ctx()
1: (18) r3 = 0x1122334455667788       ; R3_w=0x1122334455667788
3: (28) r0 = *(u16 *)skb[-2097140]    ; R0_w=scalar() R6_w=ctx()
4: (55) if r0 != 0x800 goto pc+3      ; R0_w=2048
5: (b7) r2 = 0                        ; R2_w=0
6: (71) r0 = *(u8 *)(r2 +0)
R2 invalid mem access 'scalar'
verification time 119 usec
stack depth 0
processed 6 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
`
	tests := []struct {
		name, log     string
		index         int
		reason, label string
	}{
		{"level 2 with stats", level2, 5, "R2 invalid mem access 'scalar'", "ipv4"},
		{"empty log", "", -1, "", ""},
		{"no summary (truncated)", "5: (b7) r2 = 0\n6: (71) r0 = *(u8 *)(r2 +0)\nR2 invalid mem access 'scalar'\n", 5, "R2 invalid mem access 'scalar'", "ipv4"},
		{"slot past the program", "back-edge from insn 42 to 1\nprocessed 0 insns", -1, "back-edge from insn 42 to 1", ""},
		{"second slot of LD_IMM64", "2: (00) something\nbad thing\n", 1, "bad thing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newVerifierError(insns, os.NewSyscallError("bpf", unix.EACCES), tt.log, false)
			if e.Index != tt.index || e.Reason != tt.reason || e.Label != tt.label {
				t.Errorf("index %d reason %q label %q, want %d %q %q", e.Index, e.Reason, e.Label, tt.index, tt.reason, tt.label)
			}
			if !errors.Is(e, unix.EACCES) {
				t.Error("errno lost")
			}
			if tt.reason == "" && e.Error() != "load program: bpf: permission denied" {
				t.Errorf("Error() = %q", e.Error())
			}
		})
	}
}

// bigLog is a valid program whose level 2 log runs to a few kilobytes.
var bigLog = func() asm.Instructions {
	insns := skb.Prologue()
	for i := range 40 {
		insns = append(insns, asm.Mov.Imm(asm.Register(2+i%4), int32(i)))
	}
	return append(insns, asm.Mov.Imm(asm.R0, -1), asm.Exit())
}()

// recordLoads makes loadHook record the log size of every BPF_PROG_LOAD
// for the rest of the test.
func recordLoads(t *testing.T) *[]string {
	var calls []string
	loadHook = func(level, size uint32, err error) {
		calls = append(calls, fmt.Sprintf("level %d size %d: %v", level, size, err))
	}
	t.Cleanup(func() { loadHook = nil })
	return &calls
}

func TestVerifierLog(t *testing.T) {
	testutil.RequirePrivileged(t)
	all := LogLevelBranch | LogLevelInstruction | LogLevelStats

	t.Run("success", func(t *testing.T) {
		p := mustLoad(t, bigLog, logOpts(all, 0))
		log, cut := p.VerifierLog()
		if cut || !strings.Contains(log, "processed ") || !strings.Contains(log, "verification time") {
			t.Errorf("log (truncated %v):\n%s", cut, log)
		}
	})
	t.Run("none unless asked", func(t *testing.T) {
		p := mustLoad(t, bigLog, nil)
		if log, _ := p.VerifierLog(); log != "" {
			t.Errorf("log %q", log)
		}
	})
	t.Run("grows from a tiny buffer", func(t *testing.T) {
		// The first buffer cannot hold the log: the load fails with
		// ENOSPC though the program is valid, and Load retries with the
		// size the kernel asks for.
		calls := recordLoads(t)
		p := mustLoad(t, bigLog, logOpts(all, 1))
		log, cut := p.VerifierLog()
		if cut || len(log) <= MinLogSize || !strings.Contains(log, "processed ") {
			t.Errorf("log of %d bytes (truncated %v)", len(log), cut)
		}
		if len(*calls) != 2 || !strings.Contains((*calls)[0], "size 128: bpf: no space left on device") || !strings.HasSuffix((*calls)[1], "<nil>") {
			t.Errorf("loads:\n%s", strings.Join(*calls, "\n"))
		}
	})
	t.Run("refused with a tiny buffer", func(t *testing.T) {
		calls := recordLoads(t)
		_, err := Load(refusedIPv4, logOpts(all, 1))
		var ve *VerifierError
		if !errors.As(err, &ve) || !errors.Is(err, unix.EACCES) || ve.Truncated || ve.Index != 5 {
			t.Fatalf("%+v", err)
		}
		if len(*calls) < 2 {
			t.Errorf("loads:\n%s", strings.Join(*calls, "\n"))
		}
	})
	t.Run("beyond the cap", func(t *testing.T) {
		// With the cap lowered below the log's size, a valid program
		// still loads, its log marked truncated; a refused one still
		// gives its reason, from the end of the log the kernel keeps.
		maxLogSize = 512
		t.Cleanup(func() { maxLogSize = MaxLogSize })
		calls := recordLoads(t)
		p := mustLoad(t, bigLog, logOpts(all, 128))
		log, cut := p.VerifierLog()
		if !cut || len(log) == 0 || len(log) >= 512 {
			t.Errorf("log of %d bytes, truncated %v", len(log), cut)
		}
		if n := len(*calls); n < 3 || !strings.Contains((*calls)[n-1], "level 0") {
			t.Errorf("loads:\n%s", strings.Join(*calls, "\n"))
		}

		// bigLog refused at its end.
		big := append(bigLog[:len(bigLog)-2:len(bigLog)-2], asm.Mov.Imm(asm.R10, 1), asm.Mov.Imm(asm.R0, 0), asm.Exit())
		for _, opts := range []*LoadOptions{nil, {LogLevel: all}} {
			maxLogSize = 512
			_, err := Load(big, opts)
			var ve *VerifierError
			if !errors.As(err, &ve) || !errors.Is(err, unix.EACCES) {
				t.Fatalf("opts %+v: %+v", opts, err)
			}
			if !ve.Truncated || ve.Reason != "frame pointer is read only" || ve.Index != len(big)-3 {
				t.Errorf("opts %+v: truncated %v, reason %q, index %d; %v", opts, ve.Truncated, ve.Reason, ve.Index, err)
			}
		}
	})
}

// logOpts returns LoadOptions asking for a log at level in a first
// buffer of size bytes.
func logOpts(level LogLevel, size int) *LoadOptions {
	return &LoadOptions{Name: "log_test", LogLevel: level, LogSize: size}
}

// TestLoadUnprivileged re-executes the test binary as nobody without
// capabilities (setpriv(1)) and checks that Load says what is missing.
func TestLoadUnprivileged(t *testing.T) {
	if os.Getenv("PUREBPF_TEST_UNPRIVILEGED_CHILD") == "1" {
		_, err := Load(acceptAll, nil)
		fmt.Printf("errno-is-eperm=%v\nerror=%v\n", errors.Is(err, unix.EPERM), err)
		return
	}
	testutil.RequirePrivileged(t) // to drop privileges, we need them
	if v, _ := os.ReadFile("/proc/sys/kernel/unprivileged_bpf_disabled"); strings.TrimSpace(string(v)) == "0" {
		t.Skip("kernel.unprivileged_bpf_disabled=0: unprivileged users may load socket filters")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := testutil.NobodyCommand(t, self, "-test.run=^TestLoadUnprivileged$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PUREBPF_TEST_UNPRIVILEGED_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, out)
	}
	want := "error=load program: needs CAP_BPF (Linux 5.8) or CAP_SYS_ADMIN, which the process does not hold"
	if !strings.Contains(string(out), "errno-is-eperm=true\n") || !strings.Contains(string(out), want) || strings.Contains(string(out), "CAP_NET_RAW") {
		t.Errorf("unprivileged Load:\n%s\nwant errno-is-eperm=true and %s, not naming CAP_NET_RAW", out, want)
	}
}

// FuzzNewVerifierError feeds arbitrary logs to the parser: it must not
// panic, must give an index inside the program or -1, and an error of one
// line. Its corpus in testdata/fuzz/FuzzNewVerifierError holds logs Linux
// 6.18 wrote at LogLevelBranch|LogLevelInstruction|LogLevelStats for
// refusedIPv4 and for the infinite loop of TestVerifierError (regenerate by
// loading those with that LogLevel and writing VerifierError.Log).
func FuzzNewVerifierError(f *testing.F) {
	f.Add("0: R1=ctx() R10=fp0\n0: (95) exit\nR0 !read_ok\nprocessed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n", true)
	f.Add("func#0 @0\njump out of range from insn 1 to 7\nverification time 32 usec\nstack depth 0\nprocessed 0 insns", false)
	f.Add("6: (71) r0 = *(u8 *)(r2 +0)\nR2 invalid mem access 'scalar'\n", false)
	f.Add("99999999999999999999: (71) r0 = 0\nbad\n", true)
	f.Fuzz(func(t *testing.T, log string, empty bool) {
		insns := refusedIPv4
		if empty {
			insns = nil
		}
		e := newVerifierError(insns, os.NewSyscallError("bpf", unix.EINVAL), log, false)
		if e.Index < -1 || e.Index >= len(insns) {
			t.Fatalf("index %d for %d instructions", e.Index, len(insns))
		}
		if msg := e.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "load program: ") {
			t.Fatalf("Error() = %q", msg)
		}
		if !errors.Is(e, unix.EINVAL) {
			t.Fatal("errno lost")
		}
	})
}
