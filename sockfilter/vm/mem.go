package vm

import (
	"encoding/binary"
	"fmt"

	"github.com/purebpf/purebpf/asm"
)

// The program's address space. A pointer is a region number in bits 32
// and up and an offset in the low 32 bits, so that the region of any
// address is one shift away and pointer arithmetic that leaves a region
// lands in none. Region 0 holds NULL.
const (
	regionStack   = 1 // the stacks of all frames; r10 of frame d is at its top minus d frames
	regionCtx     = 2 // struct __sk_buff
	regionSock    = 3 // the struct bpf_sock skb->sk points to in a test run
	regionMem     = 4 // RunMemory's copy of its input
	regionExposed = 5 // the first region Env.Expose hands out
	numRegions    = 8

	stackAddr = regionStack << 32
	stackTop  = stackAddr + MaxFrames*StackSize // r10 of the main program
	ctxAddr   = regionCtx << 32
	sockAddr  = regionSock << 32
	memAddr   = regionMem << 32
)

// Values LD_IMM64 gives for the pseudo sources that name objects rather
// than memory: a tag in the top 16 bits, the pseudo source in the next 16
// and the fd, index or instruction in the low 32.
const handleTag = 0xbf0b << 48

// handle returns the value of an LD_IMM64 of src with immediate ref.
func handle(src asm.Register, ref uint32) uint64 {
	return handleTag | uint64(src)<<32 | uint64(ref)
}

// The kinds of region.
const (
	kindNone     uint8 = iota // no memory: every access fails
	kindRW                    // plain memory the program may read and write
	kindReadOnly              // plain memory the program may read
	kindCtx                   // struct __sk_buff: checked field by field
	kindSock                  // struct bpf_sock: checked field by field
)

// region is a range of memory the program may address.
type region struct {
	b    []byte
	lo   uint64 // the lowest valid offset: the bottom of the current frame's stack
	kind uint8
}

var le = binary.LittleEndian

// load returns the n bytes at a when the program may read them directly,
// or nil: the caller then takes slowLoad. It inlines.
func (e *Env) load(a, n uint64) []byte {
	id := a >> 32
	if id >= numRegions {
		return nil
	}
	r := &e.regions[id]
	o := a & 0xffffffff
	if r.kind != kindRW && r.kind != kindReadOnly || o < r.lo || o+n > uint64(len(r.b)) {
		return nil
	}
	return r.b[o : o+n]
}

// store returns the n bytes at a when the program may write them directly,
// or nil: the caller then takes slowStore. It inlines.
func (e *Env) store(a, n uint64) []byte {
	id := a >> 32
	if id >= numRegions {
		return nil
	}
	r := &e.regions[id]
	o := a & 0xffffffff
	if r.kind != kindRW || o < r.lo || o+n > uint64(len(r.b)) {
		return nil
	}
	return r.b[o : o+n]
}

// slowLoad reads n bytes at a from the context or the socket, field by
// field, or fails.
func (e *Env) slowLoad(fc *frameCtx, a, n uint64) (uint64, error) {
	o := a & 0xffffffff
	switch id := a >> 32; {
	case id == regionCtx && e.regions[id].kind == kindCtx:
		if o+n > ctxSize || ctxRead[o]&uint8(n) == 0 {
			return 0, e.fault("read", a, n)
		}
		e.fillCtx(fc)
		return narrowLoad(e.ctx[:], ctxTarget[:], o, n), nil
	case id == regionSock && e.regions[id].kind == kindSock:
		if o+n > sockSize || sockRead[o]&uint8(n) == 0 {
			return 0, e.fault("read", a, n)
		}
		e.fillSock(fc)
		return narrowLoad(e.sock[:], sockTarget[:], o, n), nil
	}
	if p := e.mapMemory(a, n); p != nil {
		return readLE(p, n), nil
	}
	return 0, e.fault("read", a, n)
}

// slowStore writes the n low bytes of v at a in the context, where a
// socket filter may write only the control block, or fails.
func (e *Env) slowStore(fc *frameCtx, a, n, v uint64) error {
	o := a & 0xffffffff
	if a>>32 == regionCtx && e.regions[regionCtx].kind == kindCtx && o+n <= ctxSize && ctxWrite[o]&uint8(n) != 0 {
		e.fillCtx(fc)
		writeLE(e.ctx[o:], n, v)
		return nil
	}
	if p := e.mapMemory(a, n); p != nil {
		writeLE(p, n, v)
		return nil
	}
	return e.fault("write", a, n)
}

func readLE(b []byte, n uint64) uint64 {
	switch n {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(le.Uint16(b))
	case 4:
		return uint64(le.Uint32(b))
	}
	return le.Uint64(b)
}

func writeLE(b []byte, n, v uint64) {
	switch n {
	case 1:
		b[0] = byte(v)
	case 2:
		le.PutUint16(b, uint16(v))
	case 4:
		le.PutUint32(b, uint32(v))
	default:
		le.PutUint64(b, v)
	}
}

// fault describes an access the program may not make.
func (e *Env) fault(what string, a, n uint64) error {
	o := int64(a & 0xffffffff)
	var where string
	switch id := a >> 32; {
	case a>>32 == 0 && a < 1<<16:
		where = "a NULL pointer"
	case id == regionStack:
		lo := int64(e.regions[regionStack].lo)
		where = fmt.Sprintf("r10%+d of the current frame, outside the stack (r10-%d to r10 and the callers' frames)", o-(stackTop-stackAddr)+int64(e.depth)*StackSize, StackSize)
		if o >= lo && o+int64(n) <= int64(len(e.stack)) {
			where = fmt.Sprintf("r10%+d of the current frame", o-(stackTop-stackAddr)+int64(e.depth)*StackSize)
		}
	case id == regionCtx && e.regions[id].kind == kindCtx:
		where = fmt.Sprintf("offset %d of struct __sk_buff, which a socket filter may not %s with that size", o, what)
	case id == regionSock && e.regions[id].kind == kindSock:
		where = fmt.Sprintf("offset %d of struct bpf_sock, which a socket filter may not read with that size", o)
	case id >= mapRegion && id-mapRegion < uint64(len(e.vm.maps)):
		m := e.vm.maps[id-mapRegion]
		where = fmt.Sprintf("offset %d of map %s, outside its values", o, m.describe())
		if m.ring != nil {
			where = fmt.Sprintf("offset %d of ring buffer %s, outside the records the run holds reserved", o, m.describe())
		}
	case id < numRegions && e.regions[id].kind != kindNone:
		r := &e.regions[id]
		where = fmt.Sprintf("offset %d of a region of %d bytes", o, len(r.b))
		if what == "write" && r.kind == kindReadOnly {
			where += ", which is read-only"
		}
	default:
		where = "no memory of the program"
	}
	return fmt.Errorf("%w: %s of %d bytes at %#x: %s", ErrMemory, what, n, a, where)
}

// Memory returns the n bytes of the program's memory at addr, for a
// Helper to read, and to write if write is set: the stack, memory
// RunMemory copied or Expose mapped, the values of maps and the ring
// buffer records the run holds, not the context. The slice aliases
// the program's memory and is valid until the helper returns. An address
// the program could not access, or could not write, is an error wrapping
// ErrMemory.
func (e *Env) Memory(addr, n uint64, write bool) ([]byte, error) {
	if n > 1<<32 {
		return nil, e.fault("access", addr, n)
	}
	var b []byte
	if write {
		b = e.store(addr, n)
	} else {
		b = e.load(addr, n)
	}
	if b == nil {
		b = e.mapMemory(addr, n)
	}
	if b == nil {
		what := "read"
		if write {
			what = "write"
		}
		return nil, e.fault(what, addr, n)
	}
	return b, nil
}

// Expose maps b into the program's address space for the rest of the run
// and returns its address, for a Helper that hands the program memory of
// its own, such as the value bpf_map_lookup_elem finds. The program may
// write it if writable. A run holds at most three such regions at once
// (an error wrapping ErrCall says when there is no room); the VM drops
// them when the run ends. The program reads and writes b in place.
func (e *Env) Expose(b []byte, writable bool) (uint64, error) {
	for id := regionExposed; id < numRegions; id++ {
		r := &e.regions[id]
		if r.kind != kindNone {
			continue
		}
		r.b, r.lo, r.kind = b, 0, kindReadOnly
		if writable {
			r.kind = kindRW
		}
		e.exposed = true
		return uint64(id) << 32, nil
	}
	return 0, fmt.Errorf("%w: no room to expose more memory in this run", ErrCall)
}

// Object returns what a value LD_IMM64 loaded names, for a Helper that
// takes one: the pseudo source (asm.PseudoMapFD, asm.PseudoMapIdx or
// asm.PseudoFunc) and its immediate (the map's fd, its index in the fd
// array, the index of the subprogram's first instruction). ok is false for
// a value that is not such a handle, and for a map of Options.Maps, which
// Env.Map returns.
func (e *Env) Object(v uint64) (src asm.Register, ref uint32, ok bool) {
	if v>>48 != handleTag>>48 || v>>32&0xffff == pseudoVMMap {
		return 0, 0, false
	}
	return asm.Register(v >> 32 & 0xffff), uint32(v), true
}
