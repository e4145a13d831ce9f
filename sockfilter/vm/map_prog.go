package vm

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/purebpf/purebpf/asm"
)

// The maps a program uses are regions of its address space from
// mapRegion: map i of VM.maps is region mapRegion+i. In a hash map or an
// array, a value's address is its element's index above Map.shift bits
// that hold the offset in the value, so that an access past the value's
// end, which the kernel's verifier would refuse, lands in no value; in a
// ring buffer it is the record's offset in the data, which the program
// may reach only while it holds the record reserved.
const (
	mapRegion = 16
	maxMaps   = 1 << 12

	// pseudoVMMap marks the value LD_IMM64 of one of VM.maps loads: the
	// map's index in its low half.
	pseudoVMMap = 0xff
)

// mapAddr returns the address of offset o of map i.
func mapAddr(i int, o uint64) uint64 { return uint64(mapRegion+i)<<32 | o }

// reservation is a ring buffer record a run has reserved and not yet
// submitted or discarded.
type reservation struct {
	m      *Map
	off, n uint64
}

// decodeMapRef resolves an LD_IMM64 that names a map (asm.LoadMapPtr,
// asm.LoadMapValuePtr) to one of Options.Maps.
func (v *VM) decodeMapRef(ins *asm.Instruction, in insn) (insn, error) {
	m := v.optMaps[ins.Map]
	if m == nil {
		return in, fmt.Errorf("%w: the program uses map %q, which Options.Maps does not give%s", asm.ErrUnresolvedMap, ins.Map, givenMaps(v.optMaps))
	}
	if (m.perCPU() || m.lru != nil) && v.cpu >= m.cpus {
		return in, fmt.Errorf("%w: map %q is made for %d CPUs, and the VM runs on CPU %d (Options.CPU)", ErrUnsupported, ins.Map, m.cpus, v.cpu)
	}
	i := -1
	for j, mm := range v.maps {
		if mm == m {
			i = j
		}
	}
	if i < 0 {
		if len(v.maps) == maxMaps {
			return in, fmt.Errorf("%w: a program may use %d maps at most", ErrUnsupported, maxMaps)
		}
		i = len(v.maps)
		v.maps = append(v.maps, m)
	}
	in.op = opMov64K
	switch ins.Src {
	case asm.PseudoMapFD:
		in.imm = handle(pseudoVMMap, uint32(i))
	case asm.PseudoMapValue:
		// map_direct_value_addr: an array of one element.
		off := uint64(uint32(ins.Constant >> 32))
		if m.spec.Type != Array || m.spec.MaxEntries != 1 || off >= uint64(m.spec.ValueSize) {
			return in, fmt.Errorf("%w: map[%s][0]+%d: a value's address needs an array of one element and an offset within its %d bytes",
				asm.ErrInvalidProgram, ins.Map, off, m.spec.ValueSize)
		}
		in.imm = mapAddr(i, off)
	default:
		return in, fmt.Errorf("%w: ld_imm64 source %d names map %q: only map[name] and map[name][0]+off do", asm.ErrInvalidProgram, ins.Src, ins.Map)
	}
	return in, nil
}

// givenMaps lists the names maps has, for an error.
func givenMaps(maps map[string]*Map) string {
	if len(maps) == 0 {
		return " (it gives none)"
	}
	names := make([]string, 0, len(maps))
	for n := range maps {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	return " (it gives " + strings.Join(names, ", ") + ")"
}

// Map returns the map a value LD_IMM64 of a named map loaded refers to,
// for a Helper that takes a map, or nil for another value.
func (e *Env) Map(h uint64) *Map {
	m, _ := e.vm.mapArg(h)
	return m
}

// mapArg returns the map and its index a handle names, or nil.
func (v *VM) mapArg(h uint64) (*Map, int) {
	if h>>48 != handleTag>>48 || h>>32&0xffff != pseudoVMMap || uint32(h) >= uint32(len(v.maps)) {
		return nil, -1
	}
	return v.maps[uint32(h)], int(uint32(h))
}

// mapMemory returns the n bytes at a in a map the program uses, when the
// program may touch them, or nil.
func (e *Env) mapMemory(a, n uint64) []byte {
	i := a>>32 - mapRegion
	if a>>32 < mapRegion || i >= uint64(len(e.vm.maps)) || n > 1<<32 {
		return nil
	}
	m, o := e.vm.maps[i], a&0xffffffff
	if m.ring != nil {
		for _, r := range e.reserved {
			if r.m == m && o >= r.off && o+n <= r.off+r.n {
				return m.ring.data[o : o+n]
			}
		}
		return nil
	}
	el, vo := o>>m.shift, o&(1<<m.shift-1)
	if el >= uint64(len(m.mem)/m.elem) || vo+n > uint64(m.spec.ValueSize) {
		return nil
	}
	return m.valueAt(int(el), e.vm.cpuOf(m))[vo : vo+n]
}

// cpuOf returns which of m's values the VM's runs see.
func (v *VM) cpuOf(m *Map) int {
	if m.perCPU() {
		return v.cpu
	}
	return 0
}

// mapHelpers are the helpers of maps and ring buffers the VM runs.
var mapHelpers = map[asm.HelperFunc]bool{
	asm.FnMapLookupElem: true, asm.FnMapUpdateElem: true, asm.FnMapDeleteElem: true,
	asm.FnRingbufOutput: true, asm.FnRingbufReserve: true, asm.FnRingbufSubmit: true,
	asm.FnRingbufDiscard: true, asm.FnRingbufQuery: true,
}

// mapCall runs a map helper: r1 is the map (or, for submit and discard,
// the record), as the kernel's BPF_CALL functions of kernel/bpf/helpers.c
// and ringbuf.c take them; errors come back negated in r0, as there.
func (v *VM) mapCall(e *Env, fn asm.HelperFunc, r *[16]uint64) (uint64, error) {
	if fn == asm.FnRingbufSubmit || fn == asm.FnRingbufDiscard {
		return e.ringCommit(fn, r[1])
	}
	m, i := v.mapArg(r[1])
	if m == nil {
		return 0, fmt.Errorf("%w: %v takes a map in r1 (r1 = map[name], from Options.Maps), not %#x", ErrCall, fn, r[1])
	}
	isRing := fn >= asm.FnRingbufOutput && fn <= asm.FnRingbufQuery
	if isRing != (m.ring != nil) {
		return 0, fmt.Errorf("%w: %v on map %s, a %v", ErrCall, fn, m.describe(), m.spec.Type)
	}
	if isRing {
		return e.ringCall(fn, m, i, r)
	}
	key, err := e.Memory(r[2], uint64(m.spec.KeySize), false)
	if err != nil {
		return 0, fmt.Errorf("%v: the key: %w", fn, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch fn {
	case asm.FnMapLookupElem:
		el := m.element(key)
		if el < 0 {
			return 0, nil
		}
		if m.lru != nil {
			m.lru.setRef(el)
		}
		return mapAddr(i, uint64(el)<<m.shift), nil
	case asm.FnMapUpdateElem:
		value, err := e.Memory(r[3], uint64(m.spec.ValueSize), false)
		if err != nil {
			return 0, fmt.Errorf("%v: the value: %w", fn, err)
		}
		return negErrno(m.update(key, value, r[4], v.cpuOf(m), false)), nil
	}
	return negErrno(m.delete(key)), nil
}

func negErrno(errno int) uint64 { return uint64(-int64(errno)) }

// ringCall runs bpf_ringbuf_output, _reserve and _query on m, map i.
func (e *Env) ringCall(fn asm.HelperFunc, m *Map, i int, r *[16]uint64) (uint64, error) {
	var data []byte
	if fn == asm.FnRingbufOutput {
		var err error
		if data, err = e.Memory(r[2], r[3], false); err != nil {
			return 0, fmt.Errorf("%v: the data: %w", fn, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rb := m.ring
	switch fn {
	case asm.FnRingbufQuery:
		return rb.query(r[2]), nil
	case asm.FnRingbufReserve:
		if r[3] != 0 {
			return 0, nil
		}
		off, ok := rb.reserve(r[2])
		if !ok {
			return 0, nil
		}
		e.reserved = append(e.reserved, reservation{m: m, off: off, n: r[2]})
		return mapAddr(i, off), nil
	}
	// bpf_ringbuf_output
	if r[4]&^(rbNoWakeup|rbForceWakeup) != 0 {
		return negErrno(errEINVAL), nil
	}
	off, ok := rb.reserve(r[3])
	if !ok {
		return negErrno(errEAGAIN), nil
	}
	copy(rb.data[off:], data)
	rb.commit(off, false)
	return 0, nil
}

// ringCommit runs bpf_ringbuf_submit and _discard of the record at addr,
// which the run must hold reserved.
func (e *Env) ringCommit(fn asm.HelperFunc, addr uint64) (uint64, error) {
	i := addr>>32 - mapRegion
	for j, res := range e.reserved {
		if addr>>32 >= mapRegion && i < uint64(len(e.vm.maps)) && e.vm.maps[i] == res.m && addr&0xffffffff == res.off {
			res.m.mu.Lock()
			res.m.ring.commit(res.off, fn == asm.FnRingbufDiscard)
			res.m.mu.Unlock()
			e.reserved = append(e.reserved[:j], e.reserved[j+1:]...)
			return 0, nil
		}
	}
	return 0, fmt.Errorf("%w: %v of %#x, which is no ring buffer record this run holds reserved", ErrCall, fn, addr)
}

// releaseRecords discards the records a run ends holding, and returns how
// many there were.
func (e *Env) releaseRecords() int {
	n := len(e.reserved)
	for _, res := range e.reserved {
		res.m.mu.Lock()
		res.m.ring.commit(res.off, true)
		res.m.mu.Unlock()
	}
	clear(e.reserved)
	e.reserved = e.reserved[:0]
	return n
}

// atomicShared runs an atomic read-modify-write on map memory p, which
// concurrent runs and the caller share, with the processor's atomic
// instructions. The kernel's verifier wants atomics aligned; so does the
// VM here.
func atomicShared(in *insn, p []byte, r *[16]uint64) error {
	n := len(p)
	if uintptr(unsafe.Pointer(&p[0]))%uintptr(n) != 0 {
		return fmt.Errorf("%w: atomic update of %d bytes of a map value at a misaligned address (the verifier refuses it)", ErrMemory, n)
	}
	src := r[in.src&15]
	var old uint64
	if n == 4 {
		w := (*uint32)(unsafe.Pointer(&p[0]))
		old = uint64(atomicRMW32(in.aux, w, uint32(src), uint32(r[0])))
	} else {
		w := (*uint64)(unsafe.Pointer(&p[0]))
		old = atomicRMW64(in.aux, w, src, r[0])
	}
	switch {
	case in.aux&^atomicFetch == atomicCmpXchg:
		r[0] = old
	case in.aux&atomicFetch != 0:
		r[in.src&15] = old
	}
	return nil
}

// atomicRMW32 applies the atomic operation op with operand x (and, for
// cmpxchg, the expected value want) to *w, and returns the old value.
func atomicRMW32(op uint8, w *uint32, x, want uint32) uint32 {
	for {
		old := atomic.LoadUint32(w)
		var nv uint32
		switch op &^ atomicFetch {
		case atomicAdd:
			nv = old + x
		case atomicOr:
			nv = old | x
		case atomicAnd:
			nv = old & x
		case atomicXor:
			nv = old ^ x
		case atomicXchg:
			nv = x
		case atomicCmpXchg:
			if old != want {
				return old
			}
			nv = x
		}
		if atomic.CompareAndSwapUint32(w, old, nv) {
			return old
		}
	}
}

func atomicRMW64(op uint8, w *uint64, x, want uint64) uint64 {
	for {
		old := atomic.LoadUint64(w)
		var nv uint64
		switch op &^ atomicFetch {
		case atomicAdd:
			nv = old + x
		case atomicOr:
			nv = old | x
		case atomicAnd:
			nv = old & x
		case atomicXor:
			nv = old ^ x
		case atomicXchg:
			nv = x
		case atomicCmpXchg:
			if old != want {
				return old
			}
			nv = x
		}
		if atomic.CompareAndSwapUint64(w, old, nv) {
			return old
		}
	}
}
