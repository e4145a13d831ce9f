package vm

import (
	"errors"
	"fmt"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// Helper is a helper function the VM calls for a program, as the kernel
// calls one of its BPF_CALL_x functions: it gets the run's Env and r1 to
// r5, and returns r0. Pointer arguments are addresses in the program's
// memory, for Env.Memory; a helper that hands out memory of its own maps
// it with Env.Expose. An error ends the run with an *Error wrapping
// ErrCall, and the error. A Helper may be called by concurrent runs.
type Helper func(e *Env, r1, r2, r3, r4, r5 uint64) (uint64, error)

// builtins are the helpers the VM implements: those of the socket
// filter's set that make sense without a kernel.
var builtins = map[asm.HelperFunc]bool{
	asm.FnKtimeGetNs:           true,
	asm.FnKtimeGetBootNs:       true,
	asm.FnKtimeGetCoarseNs:     true,
	asm.FnKtimeGetTaiNs:        true,
	asm.FnGetPrandomU32:        true,
	asm.FnGetSmpProcessorID:    true,
	asm.FnGetNumaNodeID:        true,
	asm.FnTracePrintk:          true,
	asm.FnSkbLoadBytes:         true,
	asm.FnSkbLoadBytesRelative: true,
	asm.FnGetSocketCookie:      true,
	asm.FnGetSocketUID:         true,
}

// socketFilterHelpers are the helpers Linux 6.18 lets a socket filter
// loaded with CAP_BPF and CAP_PERFMON call (sk_filter_func_proto,
// bpf_sk_base_func_proto, bpf_base_func_proto), as a probe that loads a
// call of each finds them; the others are refused as the verifier refuses
// them.
var socketFilterHelpers = map[asm.HelperFunc]bool{}

func init() {
	for _, fn := range []asm.HelperFunc{
		1, 2, 3, 5, 6, 7, 8, 12, 14, 15, 16, 17, 22, 25, 26, 35, 37, 42, 46, 47, 55, 68, 80,
		87, 88, 89, 93, 94, 105, 106, 109, 112, 113, 114, 115, 117, 118, 120, 122, 123, 125,
		130, 131, 132, 133, 134, 136, 137, 138, 139, 140, 141, 148, 149, 153, 154, 156, 157,
		158, 160, 164, 165, 169, 170, 171, 172, 175, 176, 177, 178, 180, 181, 182, 191,
		194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 208, 209, 210, 211,
	} {
		socketFilterHelpers[fn] = true
	}
}

// helperError says why a program may not call fn, or returns "".
func helperError(fn asm.HelperFunc, custom map[asm.HelperFunc]Helper) string {
	switch {
	case custom[fn] != nil, builtins[fn], mapHelpers[fn]:
		return ""
	case fn.String() == "unknown":
		return fmt.Sprintf("call of helper %d, which the kernel does not have", int32(fn))
	case !socketFilterHelpers[fn]:
		return fmt.Sprintf("call of %v#%d, which socket filters may not call", fn, int32(fn))
	}
	return fmt.Sprintf("call of %v#%d: the VM does not implement it; Options.Helpers can provide it", fn, int32(fn))
}

// The kinds of helper call, in insn.aux.
const (
	helperBuiltin uint8 = iota
	helperCustom        // insn.off indexes VM.helpers
)

// call runs the helper of an opCall.
func (v *VM) call(e *Env, fc *frameCtx, in *insn, r *[16]uint64) (uint64, error) {
	fn := asm.HelperFunc(int32(in.imm))
	if in.aux == helperCustom {
		return callCustom(e, fn, v.helpers[in.off], r)
	}
	return v.builtin(e, fc, fn, r)
}

// callX runs the helper whose number callx found in a register.
func (v *VM) callX(e *Env, fc *frameCtx, n uint64, r *[16]uint64) (uint64, error) {
	fn := asm.HelperFunc(int32(n))
	if uint64(fn) != n {
		return 0, fmt.Errorf("%w: callx of helper %#x, which no helper has", ErrCall, n)
	}
	if mapHelpers[fn] && v.custom[fn] == nil {
		return v.mapCall(e, fn, r)
	}
	if h := v.custom[fn]; h != nil {
		return callCustom(e, fn, h, r)
	}
	if why := helperError(fn, nil); why != "" {
		return 0, fmt.Errorf("%w: callx: %s", ErrCall, why)
	}
	return v.builtin(e, fc, fn, r)
}

func callCustom(e *Env, fn asm.HelperFunc, h Helper, r *[16]uint64) (uint64, error) {
	x, err := h(e, r[1], r[2], r[3], r[4], r[5])
	if err != nil {
		if errors.Is(err, ErrCall) || errors.Is(err, ErrMemory) {
			return 0, fmt.Errorf("%v: %w", fn, err)
		}
		return 0, fmt.Errorf("%w: %v: %w", ErrCall, fn, err)
	}
	return x, nil
}

// Values the helpers return.
const (
	efault      = ^uint64(14 - 1) // -EFAULT
	overflowUID = 65534           // what bpf_get_socket_uid returns without a socket
)

// builtin runs a helper of the VM's own.
func (v *VM) builtin(e *Env, fc *frameCtx, fn asm.HelperFunc, r *[16]uint64) (uint64, error) {
	switch fn {
	case asm.FnKtimeGetNs, asm.FnKtimeGetBootNs, asm.FnKtimeGetCoarseNs, asm.FnKtimeGetTaiNs:
		return v.clock(), nil
	case asm.FnGetPrandomU32:
		return uint64(v.rand()), nil
	case asm.FnGetSmpProcessorID:
		return uint64(v.cpu), nil
	case asm.FnGetNumaNodeID:
		return 0, nil
	case asm.FnTracePrintk:
		return v.tracePrintk(e, r)
	}
	if mapHelpers[fn] {
		return v.mapCall(e, fn, r)
	}
	if r[1] != ctxAddr || !fc.hasSkb {
		return 0, fmt.Errorf("%w: %v takes the socket buffer (the context pointer) in r1", ErrCall, fn)
	}
	switch fn {
	case asm.FnSkbLoadBytes:
		return e.skbLoadBytes(fc, r[2], r[3], r[4])
	case asm.FnSkbLoadBytesRelative:
		return e.skbLoadBytesRelative(fc, r[2], r[3], r[4], r[5])
	case asm.FnGetSocketCookie:
		// A packet socket's frames have no socket; the test run's has a
		// cookie of its own.
		if !fc.test {
			return 0, nil
		}
		if e.cookie == 0 {
			e.cookie = v.cookies.Add(1)
		}
		return e.cookie, nil
	case asm.FnGetSocketUID:
		return socketUID(fc), nil
	}
	return 0, fmt.Errorf("%w: internal error: no built-in helper %v", ErrCall, fn)
}

// skbLoadBytes is bpf_skb_load_bytes(skb, offset, to, len): it copies len
// bytes from offset after skb->data to the program's memory at to, and
// returns 0, or clears to and returns -EFAULT when the frame is too short.
func (e *Env) skbLoadBytes(fc *frameCtx, offset, to, n uint64) (uint64, error) {
	dst, err := e.Memory(to, uint64(uint32(n)), true)
	if err != nil {
		return 0, fmt.Errorf("bpf_skb_load_bytes: %w", err)
	}
	o, ok := loadBytes(fc.pkt, &fc.base, offset, uint64(len(dst)))
	return fc.copyPkt(dst, o, ok)
}

// skbLoadBytesRelative is bpf_skb_load_bytes_relative(skb, offset, to,
// len, start_header): bpf_skb_load_bytes from the link-layer header
// (BPF_HDR_START_MAC) or the network header (BPF_HDR_START_NET).
func (e *Env) skbLoadBytesRelative(fc *frameCtx, offset, to, n, start uint64) (uint64, error) {
	dst, err := e.Memory(to, uint64(uint32(n)), true)
	if err != nil {
		return 0, fmt.Errorf("bpf_skb_load_bytes_relative: %w", err)
	}
	o, ok := loadBytesRelative(fc.pkt, &fc.base, offset, uint64(len(dst)), start)
	return fc.copyPkt(dst, o, ok)
}

// loadBytes returns where in the frame pkt, whose headers base gives, the
// n bytes bpf_skb_load_bytes reads at offset are, or ok false when they
// are not all there.
func loadBytes(pkt []byte, base *[4]int, offset, n uint64) (o int, ok bool) {
	off := uint32(offset)
	if off > 1<<31-1 || uint64(off)+n > uint64(skbLen(pkt, base)) {
		return 0, false
	}
	o = base[baseData] + int(off)
	return o, o+int(n) <= len(pkt)
}

// loadBytesRelative returns where in the frame pkt, whose headers base
// gives, the n bytes bpf_skb_load_bytes_relative reads at offset from
// start are, or ok false when they are not all there or start names no
// header.
func loadBytesRelative(pkt []byte, base *[4]int, offset, n, start uint64) (o int, ok bool) {
	off := uint32(offset)
	switch skb.HeaderStart(uint32(start)) {
	case skb.HeaderMAC:
		o = base[baseMAC]
	case skb.HeaderNet:
		o = base[baseNet]
	default:
		return 0, false
	}
	if off > 0xffff {
		return 0, false
	}
	o += int(off)
	return o, o+int(n) <= len(pkt)
}

// copyPkt copies the frame's bytes from o to dst when ok, or clears dst
// and returns -EFAULT.
func (fc *frameCtx) copyPkt(dst []byte, o int, ok bool) (uint64, error) {
	if !ok {
		clear(dst)
		return efault, nil
	}
	copy(dst, fc.pkt[o:])
	return 0, nil
}

// socketUID is bpf_get_socket_uid: the test run's socket belongs to root;
// a packet socket's frames have no socket, which gives overflowuid.
func socketUID(fc *frameCtx) uint64 {
	if fc.test {
		return 0
	}
	return overflowUID
}
