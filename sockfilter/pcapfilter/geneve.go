package pcapfilter

import (
	"strconv"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// `geneve [vni]`: UDP to port 6081 in IPv4 or IPv6, a Geneve header of
// version 0 (and the VNI if given), and then everything after it reads
// the frame inside, at an offset that depends on the frame: the Geneve
// header's options length, and, for IPv4, the IP header's (gencode.c's
// gen_geneve, gen_geneve_offsets).
//
// As libpcap, the program computes three offsets when the Geneve test
// holds, and keeps them in scratch words (its M[0], M[1], M[2]; here
// stack slots, zeroed when the program starts; a second `geneve`, inside
// the first, has three more):
//
//	G        = the Geneve header: the UDP header's offset + 8
//	header   = G + 8 + 4 * (options length): the inner frame (M[1])
//	linktype = header + 12 if the Geneve protocol is 0x6558 (an Ethernet
//	           frame inside), else G + 2, the protocol field (M[0])
//	payload  = linktype + 2, the network header, or header (M[2])
//
// Everything parsed after `geneve` reads relative to them: `ip` tests the
// 2 bytes at linktype, `ip host` loads at payload + 12, `tcp port` at
// payload + 4 * IHL, `ether host` at header (where there is an Ethernet
// header: header != payload). A path that did not go through the Geneve
// test reads them as 0, as libpcap's program does in its user-space
// filter when its scratch memory is zero (it is not initialised: such
// verdicts are undefined in libpcap).
//
// The parser marks these loads with offsets in three far ranges (one per
// slot, geneveBase), which the pred tree's rewrite (geneveRewrite) turns
// into loads indexed by the slot's value once the expression is parsed:
// the other primitives need not know about Geneve. The test that computes
// the offsets is a test of a valGeneve value, always 0 (a load past the
// end rejects, as in libpcap), whose false edge goes to reject.

const genevePort = 6081

// maxGeneve is the number of `geneve` keywords an expression may have:
// one inside the other at most, each with its three slots.
const maxGeneve = 2

// geneveBase returns the base of the offsets relative to slot k: the
// slots of the first `geneve` are 0 (linktype), 1 (header) and 2
// (payload), those of the second 3, 4 and 5. An ordinary offset stays
// below 1<<26.
func geneveBase(k int) int32 { return int32(k+1) << 28 }

// geneveSlot returns the stack offset of slot k, below the arithmetic's
// spill slots (maxSpill).
func geneveSlot(k uint32) int16 { return int16(-512 + 8*int(k)) }

// parseGeneve parses `geneve [vni]` after the keyword at t.
func (p *parser) parseGeneve(t token) (pred, *Error) {
	if p.geneves == maxGeneve {
		return nil, p.fail(t, "more than %d geneve keywords are not supported by this compiler", maxGeneve)
	}
	if p.liveCooked() {
		return nil, p.fail(t, "%s on the \"any\" device is not supported by this compiler: its inner frame is read at offsets counted from the cooked header, which the \"any\" device's live socket does not have; capture on the interface itself, or filter a file of it (CompileOptions.Offline)", quote(t.text))
	}
	level := p.geneves
	vni, has, err := p.optNumber(t, "Geneve VNI", 0xffffff)
	if err != nil {
		return nil, err
	}
	nl := p.nl()
	check := func(payload func(off int32, size uint8) *val) pred {
		x := and(test(payload(2, 2), cmpEq, genevePort),
			not(test(payload(8, 1), cmpSet, 0xc0)))
		if has {
			x = and(x, test(aluVal(aluAnd, payload(12, 4), constVal(0xffffff00)), cmpEq, vni<<8))
		}
		return x
	}
	// The offset of the Geneve header, on the IPv4 and on the IPv6 path,
	// then the offsets of the inner frame from it, on both.
	v4 := and(p.linkType(wire.EtherTypeIPv4), test(linkLoad(nl+9, 1), cmpEq, 17), p.noFrag(),
		check(func(off int32, size uint8) *val { return ipv4PayloadLoad(nl, off, size) }),
		test(&val{kind: valGeneve, size: 4, nl: nl, k: uint32(level)}, cmpEq, 0))
	v6 := and(p.linkType(wire.EtherTypeIPv6), test(linkLoad(nl+6, 1), cmpEq, 17),
		check(func(off int32, size uint8) *val { return linkLoad(nl+40+off, size) }),
		test(&val{kind: valGeneve, size: 6, nl: nl, k: uint32(level)}, cmpEq, 0))
	inner := test(&val{kind: valGeneve, k: uint32(level)}, cmpEq, 0)
	p.geneve, p.link = true, packet.LinkEthernet
	p.geneves++
	p.shift = geneveBase(3*level+2) - wire.EthernetHeaderLen
	p.geneveShift = p.shift
	p.linkHdr = geneveBase(3*level + 1)
	return and(or(v4, v6), inner), nil
}

// linkTypeOff returns the offset of the link type (EtherType or PPP
// protocol) the next link-type test reads.
func (p *parser) linkTypeOff() int32 {
	if p.geneve && p.link != linkPPP {
		return geneveBase(3*(p.geneves-1)) + p.shift - p.geneveShift
	}
	return wire.EtherTypeOff + p.shift
}

// geneveLinkCheck returns, inside Geneve, the test that the inner frame
// has an Ethernet header (header != payload: gen_geneve_ll_check), which
// Ethernet addresses need; nil outside.
func (p *parser) geneveLinkCheck() pred {
	if !p.geneve {
		return nil
	}
	s := uint32(3 * (p.geneves - 1))
	return not(&predTest{v: slotVal(s + 1), op: cmpEq, r: slotVal(s + 2)})
}

func slotVal(k uint32) *val { return &val{kind: valSlot, k: k} }

// geneveRewrite returns x with the loads at offsets relative to the
// Geneve slots made loads indexed by the slot.
func geneveRewrite(x pred) pred {
	memo := make(map[*val]*val)
	var rv func(v *val) *val
	rv = func(v *val) *val {
		if v == nil {
			return nil
		}
		if r, ok := memo[v]; ok {
			return r
		}
		r := *v
		r.idx, r.a, r.b = rv(v.idx), rv(v.a), rv(v.b)
		if v.kind == valLoad {
			at := v.off
			if v.base == baseIPv4 {
				at = v.nl
			}
			if k, rel, ok := geneveRel(at); ok {
				slot := slotVal(k)
				idx := slot
				if v.base == baseIPv4 {
					// 4 * IHL of the IPv4 header at slot + rel.
					ihl := aluVal(aluLsh, aluVal(aluAnd,
						&val{kind: valLoad, base: baseLink, off: rel, idx: slot, size: 1},
						constVal(0xf)), constVal(2))
					idx = aluVal(aluAdd, ihl, slot)
					r.off = rel + v.off
				} else {
					r.off = rel
				}
				if r.off < 0 {
					// Below the slot (mpls's bottom-of-stack bit
					// right after geneve): libpcap's indexed load
					// at x + k, k negative as a 32-bit number,
					// always fails.
					r.off = maxFrameOffset
				}
				if r.idx != nil {
					idx = aluVal(aluAdd, r.idx, idx)
				}
				r.base, r.nl, r.idx = baseLink, 0, idx
			}
		}
		memo[v] = &r
		return &r
	}
	var rp func(x pred) pred
	rp = func(x pred) pred {
		switch x := x.(type) {
		case *predAnd:
			return &predAnd{rp(x.a), rp(x.b), x.n}
		case *predOr:
			return &predOr{rp(x.a), rp(x.b), x.n}
		case *predNot:
			return &predNot{rp(x.x), x.n}
		case *predTest:
			return &predTest{v: rv(x.v), op: x.op, k: x.k, r: rv(x.r)}
		}
		return x
	}
	return rp(x)
}

// geneveRel returns the slot an offset is relative to, and the offset
// from it.
func geneveRel(off int32) (uint32, int32, bool) {
	for k := range 3 * maxGeneve {
		if b := geneveBase(k); off >= b-1<<26 && off < b+1<<26 {
			return uint32(k), off - b, true
		}
	}
	return 0, 0, false
}

// geneveTest emits node n, whose test is an always-true valGeneve, and
// goes on to n.jt. Of version 4 or 6, it stores G + 2 (where the link
// type is if the Geneve protocol is not 0x6558) into slot 0; of version
// 0, it reads it and stores the offsets of the inner frame into the
// slots, with G in r9.
func (e *emitter) geneveTest(n, next *node) {
	v := n.t.v
	e.usesR6 = true
	slot := func(i uint32) int16 { return geneveSlot(3*v.k + i) }
	rel, at, inner := geneveRel(v.nl)
	switch {
	case v.size == 4 && inner:
		// The IPv4 header is at an offset in a slot of the
		// first `geneve`.
		e.emit(asm.LoadMem(asm.R9, asm.RFP, geneveSlot(rel), asm.Word),
			asm.Add.Imm32(asm.R9, at),
			asm.LoadInd(asm.R9, e.base, asm.Byte),
			asm.And.Imm32(asm.R0, 0xf),
			asm.LSh.Imm32(asm.R0, 2),
			asm.Add.Reg32(asm.R0, asm.R9),
			asm.Add.Imm32(asm.R0, 8+2),
			asm.StoreMem(asm.RFP, slot(0), asm.R0, asm.Word))
	case v.size == 6 && inner:
		e.emit(asm.LoadMem(asm.R0, asm.RFP, geneveSlot(rel), asm.Word),
			asm.Add.Imm32(asm.R0, at+40+8+2),
			asm.StoreMem(asm.RFP, slot(0), asm.R0, asm.Word))
	case v.size == 4:
		if e.st.ihl == v.nl {
			e.emit(asm.Mov.Reg(asm.R0, asm.R7))
		} else {
			e.emit(asm.LoadAbs(e.base+v.nl, asm.Byte),
				asm.And.Imm32(asm.R0, 0xf),
				asm.LSh.Imm32(asm.R0, 2))
		}
		e.emit(asm.Add.Imm32(asm.R0, v.nl+8+2),
			asm.StoreMem(asm.RFP, slot(0), asm.R0, asm.Word))
	case v.size == 6:
		e.emit(asm.StoreImm(asm.RFP, slot(0), 40+v.nl+8+2, asm.Word))
	default:
		e.chains++
		skip := "geneve" + strconv.Itoa(e.chains) + ".notEthernet"
		e.emit(asm.LoadMem(asm.R9, asm.RFP, slot(0), asm.Word),
			asm.Add.Imm32(asm.R9, -2), // G
			asm.LoadInd(asm.R9, e.base, asm.Byte),
			asm.And.Imm32(asm.R0, 0x3f),
			asm.LSh.Imm32(asm.R0, 2),
			asm.Add.Imm32(asm.R0, 8),
			asm.Add.Reg32(asm.R0, asm.R9), // header
			asm.StoreMem(asm.RFP, slot(1), asm.R0, asm.Word),
			asm.LoadInd(asm.R9, e.base+2, asm.Half),
			asm.LoadMem(asm.R9, asm.RFP, slot(1), asm.Word),
			asm.JNE.Imm32(asm.R0, 0x6558, skip),
			asm.Add.Imm32(asm.R9, 12),
			asm.StoreMem(asm.RFP, slot(0), asm.R9, asm.Word),
			asm.Add.Imm32(asm.R9, 2),
			asm.StoreMem(asm.RFP, slot(2), asm.R9, asm.Word).WithLabel(skip))
	}
	e.st.r0 = nil
	if n.jt != next {
		e.emit(asm.Goto(label(n.jt)))
	}
}

// slotPrologue zeroes the first n Geneve slots, at the start of a program
// that reads them.
func slotPrologue(n int) asm.Instructions {
	var p asm.Instructions
	for k := range uint32(n) {
		p = append(p, asm.StoreImm(asm.RFP, geneveSlot(k), 0, asm.Word))
	}
	return p
}

// slotsRead returns the number of Geneve slots up to the last one v reads.
func (v *val) slotsRead() int {
	if v == nil {
		return 0
	}
	n := max(v.idx.slotsRead(), v.a.slotsRead(), v.b.slotsRead())
	if v.kind == valSlot {
		n = max(n, int(v.k)+1)
	}
	return n
}

// slotBounded reports whether v, an index, is a Geneve offset: a slot, or
// a slot plus 4 * IHL. Each is less than the length of the frame plus
// 8 + 252 + 14 + 60 (the Geneve header and its options, an Ethernet
// header, an IPv4 header), far from the 1 MiB a legacy load reaches.
func (v *val) slotBounded() bool {
	if v.kind == valSlot {
		return true
	}
	if v.kind != valALU || v.op != aluAdd || v.b.kind != valSlot {
		return false
	}
	ihl := v.a
	return ihl.kind == valALU && ihl.op == aluLsh && ihl.b.kind == valConst && ihl.b.k == 2 &&
		ihl.a.kind == valALU && ihl.a.op == aluAnd && ihl.a.b.kind == valConst && ihl.a.b.k == 0xf
}
