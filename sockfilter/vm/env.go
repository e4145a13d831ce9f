package vm

// Env is the state of one run of a program: its stacks, the memory it
// may address and the context it is given. A Helper gets the Env of the
// run that calls it, to reach the program's memory; it must not keep it
// after it returns. Programs that use no memory and call nothing (most
// compiled filters) run without one.
type Env struct {
	vm      *VM
	regions [numRegions]region
	depth   int // the current frame: 0 for the main program
	pc      int // the instruction being run, for the errors of helpers
	// The fields of struct __sk_buff and of the test run's struct
	// bpf_sock, built when first read.
	ctxReady  bool
	sockReady bool
	exposed   bool   // Expose used a region
	cookie    uint64 // the test run's socket cookie, once asked for
	ctx       [ctxSize]byte
	sock      [sockSize]byte
	mayGoto   [MaxFrames]uint32
	frames    [MaxFrames]frame // the callers' state, frames[d-1] for depth d

	reserved []reservation // the ring buffer records the run holds
	mem      []byte        // RunMemory's copy of its input
	buf      []byte        // RunTest's raw IP frame behind an Ethernet header
	printk   []byte        // bpf_trace_printk's output
	stack    [MaxFrames * StackSize]byte
}

// frame is what a BPF-to-BPF call saves of its caller.
type frame struct {
	ret  int       // the instruction after the call
	regs [4]uint64 // r6 to r9
}

// newEnv returns an Env for v's runs. The stack's region is set once: a
// run only moves its bottom.
func newEnv(v *VM) *Env {
	e := &Env{vm: v}
	e.regions[regionStack] = region{b: e.stack[:], kind: kindRW}
	return e
}

// reset readies e for the next run, dropping what the run referred to;
// the stack is cleared as frames start. It rewrites only what changed, for
// a slice written to the heap costs a write barrier.
func (e *Env) reset() {
	e.regions[regionCtx].kind, e.regions[regionSock].kind = kindNone, kindNone
	if e.regions[regionMem].kind != kindNone {
		e.regions[regionMem] = region{}
	}
	if e.exposed {
		for id := regionExposed; id < numRegions; id++ {
			e.regions[id] = region{}
		}
		e.exposed = false
	}
	e.depth, e.ctxReady, e.sockReady, e.cookie = 0, false, false, 0
	if len(e.reserved) > 0 {
		e.releaseRecords() // a run that failed holding them
	}
}

// start sets e up for a run on fc: the main frame's stack and, when there
// is a socket buffer, the context.
func (e *Env) start(fc *frameCtx) {
	e.regions[regionStack].lo = uint64(len(e.stack) - StackSize)
	e.clearStack(0)
	e.mayGoto[0] = mayGotoLoops
	if fc.hasSkb {
		e.regions[regionCtx].kind = kindCtx
		if fc.test {
			e.regions[regionSock].kind = kindSock
		}
	}
}

// clearStack zeroes what the program may use of frame d's stack, so that a
// run never sees what an earlier one left.
func (e *Env) clearStack(d int) {
	if n := e.vm.stackZero; n > 0 {
		top := len(e.stack) - d*StackSize
		clear(e.stack[top-n : top])
	}
}

// memory sets e up for RunMemory.
func (e *Env) memory(mem []byte) {
	e.mem = append(e.mem[:0], mem...)
	e.regions[regionMem] = region{b: e.mem, kind: kindRW}
}
