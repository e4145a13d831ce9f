package vm

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// DefaultBudget is the number of instructions a run may execute unless
// Options.Budget says otherwise: some 67 million, a fraction of a second,
// far more than the kernel's verifier lets a program run (it walks at most
// a million instructions) but a bound on a loop that never ends.
const DefaultBudget = 1 << 26

// StackSize is the size of a frame's stack, the kernel's MAX_BPF_STACK.
const StackSize = 512

// MaxFrames is the depth of BPF-to-BPF calls a run may reach, the main
// program included: the kernel's MAX_CALL_FRAMES.
const MaxFrames = 8

// mayGotoLoops is the budget of each frame's may_goto instructions, the
// kernel's BPF_MAX_LOOPS.
const mayGotoLoops = 8 << 20

// Options tunes New. The zero value, like a nil *Options, follows RFC 9669
// with DefaultBudget, the built-in helpers, no trace output, the
// process's monotonic clock and a random source of its own.
type Options struct {
	// Kernel makes New apply the kernel's rules where they differ from
	// RFC 9669's (asm.Instruction.Validate rather than ValidateRFC): it
	// refuses shifts by an immediate out of range (the RFC masks the
	// count), divisions and modulos by an immediate 0 (the RFC defines
	// their result) and callx (which the kernel does not load), and
	// accepts exit with a non-zero offset (the verifier never reads it;
	// the RFC wants unused fields zero).
	Kernel bool
	// Budget is the number of instructions a run may execute; 0 means
	// DefaultBudget. A run that would execute more stops with an *Error
	// wrapping ErrBudget. The VM counts when a jump goes back (and when a
	// subprogram returns), and counts the instructions a forward jump
	// skips as executed: straight code costs nothing for it.
	Budget int
	// Helpers adds helper functions, or replaces the built-in ones, by
	// number: map helpers, for instance, once the program's maps exist
	// outside the kernel, or a bpf_get_prandom_u32 that returns what a
	// test wants. A program may call a helper only if the VM knows it.
	Helpers map[asm.HelperFunc]Helper
	// Trace receives the text bpf_trace_printk formats, one Write per
	// call, as the kernel writes it to the trace pipe
	// (/sys/kernel/tracing/trace_pipe) without the line prefix. Writes
	// from concurrent runs are serialised. Nil discards the text; the
	// helper still returns its length.
	Trace io.Writer
	// Clock returns the nanoseconds bpf_ktime_get_ns, _boot_ns,
	// _coarse_ns and _tai_ns return. Nil means the time elapsed on the
	// process's monotonic clock since the package was initialised
	// (the kernel counts from boot).
	Clock func() uint64
	// Rand returns the numbers of bpf_get_prandom_u32. Nil means
	// math/rand/v2's generator.
	Rand func() uint32
	// Maps gives the maps the program names (asm.LoadMapPtr,
	// asm.LoadMapValuePtr, `r1 = map[name]` in asm text), by name, as
	// sockfilter.LoadOptions.Maps does for the kernel: the VM runs
	// bpf_map_lookup_elem, _update_elem, _delete_elem and the ring buffer
	// helpers on them. A name the program uses and Maps does not give is
	// an error of New that names it.
	Maps map[string]*Map
	// CPU is the CPU the runs are on: what bpf_get_smp_processor_id
	// returns, whose value of a per-CPU map a program sees, whose local
	// lists an LRU map uses. It must be below the CPUs of each per-CPU
	// or LRU map (MapSpec.CPUs).
	CPU int
}

// VM is a program ready to run, made by New. It is immutable, and safe for
// concurrent runs: each run has its own registers, stack and context.
type VM struct {
	insns   asm.Instructions // as given to New, labels resolved, for errors
	code    []insn
	helpers []Helper // the Options.Helpers calls refer to, by insn.off
	custom  map[asm.HelperFunc]Helper
	budget  int
	// stackZero is how many bytes at the top of each frame's stack are
	// cleared when the frame starts: 0 when the program never takes r10,
	// its deepest access when it uses r10 only with constant offsets,
	// StackSize otherwise.
	stackZero int
	// pure is set for programs that address no memory and call nothing,
	// which run without an Env.
	pure bool
	// r6ctx is set when r6 = r1 is the first instruction and nothing
	// else writes r6: r6 then holds the context whenever r1 did.
	r6ctx bool
	// loads is set for programs with loads from memory, which may read
	// the context: runs build it as they start.
	loads bool
	// prologue is set when the first instruction is r6 = r1: the run
	// does it and starts at the second.
	prologue bool
	// filter is the program in the filter form, which runs it on socket
	// buffers, or nil when the program is not in that form.
	filter  *filter
	maps    []*Map          // the maps the program uses, by the index of their handles
	optMaps map[string]*Map // Options.Maps, while New decodes
	cpu     int
	clock   func() uint64
	rand    func() uint32
	trace   io.Writer
	traceMu sync.Mutex
	envs    sync.Pool           // *Env
	env     atomic.Pointer[Env] // an Env kept at hand: cheaper than the pool
	cookies atomic.Uint64       // the socket cookies of test runs
}

// Errors of New and of runs, wrapped with details.
var (
	// ErrUnsupported: New refuses an instruction the VM cannot run, such
	// as a call of a helper it does not have or a kfunc call.
	ErrUnsupported = errors.New("not supported by the VM")
	// ErrMemory: a load, store or helper touched memory outside the
	// stack, the context, the packet or memory a helper exposed, or
	// wrote memory that is read-only.
	ErrMemory = errors.New("invalid memory access")
	// ErrBudget: the run executed Options.Budget instructions.
	ErrBudget = errors.New("instruction budget exhausted")
	// ErrCall: a call went wrong: too deep, to a helper the VM does not
	// know (callx), with arguments the helper cannot take, or a helper of
	// Options.Helpers failed.
	ErrCall = errors.New("invalid call")
)

// Error is the error of a run the program could not finish: an invalid
// memory access or call, or an exhausted budget. The VM never panics on a
// program's account and never reads or writes outside the memory it gives
// the program.
type Error struct {
	Index       int             // the instruction, an index into the Instructions given to New
	Instruction asm.Instruction // the instruction, labels resolved
	Err         error           // wraps ErrMemory, ErrBudget or ErrCall
}

// Error says where and what: "run program: instruction 4 (r0 = *(u32
// *)(r1 +200)): ...".
func (e *Error) Error() string {
	return fmt.Sprintf("run program: instruction %d (%s): %v", e.Index, e.Instruction.String(), e.Err)
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// New prepares insns to run. It checks them as asm.Instructions.ValidateRFC
// does, or as asm.Instructions.Validate does with Options.Kernel, and
// refuses, with an *asm.InstructionError naming the instruction, what the
// VM cannot run: a call of a helper it does not know (the error says
// whether socket filters may call it at all), a kfunc call, an LD_IMM64 of
// a map value or kernel variable, a stack access at a constant offset from
// r10 outside its 512 bytes. It does not verify the program as the kernel
// does: instead every memory access and every call is checked when it
// runs. A nil opts means the defaults of Options.
func New(insns asm.Instructions, opts *Options) (*VM, error) {
	if opts == nil {
		opts = &Options{}
	}
	var err error
	if opts.Kernel {
		err = insns.Validate()
	} else {
		err = insns.ValidateRFC()
	}
	if err != nil {
		return nil, fmt.Errorf("new vm: %w", err)
	}
	resolved, err := insns.Resolve()
	if err != nil {
		return nil, fmt.Errorf("new vm: %w", err)
	}
	if opts.CPU < 0 {
		return nil, fmt.Errorf("new vm: CPU %d: CPUs count from 0", opts.CPU)
	}
	v := &VM{insns: resolved, budget: opts.Budget, clock: opts.Clock, rand: opts.Rand, trace: opts.Trace,
		cpu: opts.CPU, optMaps: opts.Maps}
	if v.budget <= 0 {
		v.budget = DefaultBudget
	}
	if v.clock == nil {
		v.clock = monotonic
	}
	if v.rand == nil {
		v.rand = rand.Uint32
	}
	err = v.decode(opts)
	v.optMaps = nil
	if err != nil {
		return nil, fmt.Errorf("new vm: %w", err)
	}
	v.envs.New = func() any { return newEnv(v) }
	return v, nil
}

// epoch is where the default clock starts.
var epoch = time.Now()

func monotonic() uint64 { return uint64(time.Since(epoch)) }

// RunFrame runs the program on frame as a live SOCK_RAW packet socket on a
// link of type link would (packet(7)), and returns r0 truncated to 32
// bits, the number of bytes of the frame the filter keeps. The program's
// data starts at the link-layer header: skb->len is the frame's length,
// skb->protocol comes from the EtherType (from the IP version for
// LinkRawIP), the legacy loads at SKF_LL_OFF and SKF_NET_OFF find the
// link-layer and network headers; skb->pkt_type is PACKET_HOST, and the
// interface indexes and VLAN tag are zero (see RunFrameInfo). A frame of
// a Linux cooked link (LinkLinuxSLL, LinkLinuxSLL2: a capture file's on
// the "any" device) is run with its cooked header in the link-layer
// header's place, as pcapfilter's Offline programs for it read it: the
// network header follows it, and skb->protocol, skb->pkt_type and, for
// SLL2, skb->ifindex come from it. A legacy load past the end of the
// frame ends the program returning 0, as in the kernel. frame is only
// read.
func (v *VM) RunFrame(frame []byte, link packet.LinkType) (uint32, error) {
	// The commonest case, small enough to inline into the caller's loop.
	if f := v.filter; f != nil && f.needs == needNone && link == packet.LinkEthernet && len(frame) < maxFilterFrame {
		// filter.exec, written out to save a call.
		r := f.regs
		pc := int(uint32(f.start))
		for {
			ret, at := f.run(&r, frame, &ethBases, pc)
			if at < 0 {
				return ret, nil
			}
			pc = f.slow(&r, at, nil)
		}
	}
	return v.runFrame(frame, link)
}

// runFrame is RunFrame.
func (v *VM) runFrame(frame []byte, link packet.LinkType) (uint32, error) {
	if f := v.filter; f != nil && len(frame) < maxFilterFrame {
		if f.needs == needNone && link == packet.LinkRawIP {
			return f.exec(frame, &rawBases, nil), nil
		}
		var fc frameCtx
		if err := fc.live(frame, link, nil); err != nil {
			return 0, err
		}
		return f.exec(fc.pkt, &fc.base, &fc), nil
	}
	if v.pure && link == packet.LinkEthernet {
		return v.runPure(frame, &ethBases)
	}
	return v.RunFrameInfo(frame, link, nil)
}

// RunFrameInfo is RunFrame with what the kernel knows about the frame
// besides its bytes, as a Conn reports it or a capture file keeps it:
// skb->pkt_type from info.Direction (PACKET_HOST when unknown),
// skb->ifindex from info.Ifindex and skb->ingress_ifindex too unless the
// frame was outgoing, the VLAN tag the device removed (vlan_present,
// vlan_tci, vlan_proto) from info.HasVLAN, VLANTCI and VLANTPID, and
// skb->len from info.Length when the frame was cut shorter than that (a
// capture with a snap length): loads past the bytes present then fail as
// past the end. info.Time is not used. A nil info is RunFrame.
func (v *VM) RunFrameInfo(frame []byte, link packet.LinkType, info *packet.Info) (uint32, error) {
	if v.pure {
		// A program that reads neither the context nor memory needs the
		// frame and its headers only.
		switch link {
		case packet.LinkEthernet:
			return v.runPure(frame, &ethBases)
		case packet.LinkRawIP:
			return v.runPure(frame, &rawBases)
		}
	}
	var fc frameCtx
	if err := fc.live(frame, link, info); err != nil {
		return 0, err
	}
	if f := v.filter; f != nil && len(frame) < maxFilterFrame {
		return f.exec(fc.pkt, &fc.base, &fc), nil
	}
	e := v.getEnv()
	defer v.putEnv(e)
	r0, err := v.run(e, &fc, ctxAddr, 0)
	return uint32(r0), err
}

// RunTest runs the program on frame as the kernel's BPF_PROG_TEST_RUN
// does, which is what (*sockfilter.Program).Test(frame, link) returns: the
// frame is taken as received on the loopback device, eth_type_trans
// consumes its Ethernet header, and the data starts at the network
// header, so that skb->len is 14 bytes short of the frame and offsets from
// skb->data too; skb->pkt_type is PACKET_HOST only for the all-zeros
// destination address of lo (PACKET_MULTICAST for group addresses,
// broadcast included, PACKET_OTHERHOST for the others); skb->ifindex is
// lo's, 1; skb->sk is the test run's socket, whose family and addresses
// come from the IP header. A LinkRawIP frame is given an Ethernet header
// first, as Program.Test does. With this view the VM can be compared with
// the kernel instruction for instruction; unlike the kernel, it takes
// frames of any length from 14 bytes up.
func (v *VM) RunTest(frame []byte, link packet.LinkType) (uint32, error) {
	var fc frameCtx
	if f := v.filter; f != nil && link == packet.LinkEthernet && len(frame) < maxFilterFrame {
		if _, err := fc.setTest(frame, link, nil); err != nil {
			return 0, err
		}
		return f.exec(fc.pkt, &fc.base, &fc), nil
	}
	if v.pure && link == packet.LinkEthernet {
		if _, err := fc.setTest(frame, link, nil); err != nil {
			return 0, err
		}
		return v.runPure(frame, &testBases)
	}
	e := v.getEnv()
	defer v.putEnv(e)
	var err error
	if e.buf, err = fc.setTest(frame, link, e.buf); err != nil {
		return 0, err
	}
	if f := v.filter; f != nil && len(frame) < maxFilterFrame {
		return f.exec(fc.pkt, &fc.base, &fc), nil
	}
	r0, err := v.run(e, &fc, ctxAddr, 0)
	return uint32(r0), err
}

// RunMemory runs the program with r1 pointing at a copy of mem and r2
// holding its length, and returns r0: the convention of uBPF and of the
// public conformance suites (bpf_conformance). There is no socket buffer:
// the legacy packet loads and the helpers that take one fail. mem is only
// read.
func (v *VM) RunMemory(mem []byte) (uint64, error) {
	e := v.getEnv()
	defer v.putEnv(e)
	e.memory(mem)
	var fc frameCtx
	return v.run(e, &fc, memAddr, uint64(len(mem)))
}

// getEnv returns an Env for a run: the one kept at hand, or one from the
// pool when a concurrent run has it.
func (v *VM) getEnv() *Env {
	if e := v.env.Swap(nil); e != nil {
		return e
	}
	return v.envs.Get().(*Env)
}

func (v *VM) putEnv(e *Env) {
	e.reset()
	if !v.env.CompareAndSwap(nil, e) {
		v.envs.Put(e)
	}
}
