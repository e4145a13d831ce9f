package pcapfilter

import (
	"fmt"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/wire"
)

// `protochain N`, `ip protochain N` and `ip6 protochain N`: the IP header's
// protocol, then, while it names a header the walk knows, the next header
// of that header, until it is N (gencode.c's gen_protochain).
//
// libpcap walks with a loop, which classic BPF in the kernel cannot run
// (its program has a backward jump: libpcap filters in user space then).
// Its walk, in terms of A (the protocol) and X (the offset of the header
// from the IP header):
//
//	A = the IP header's protocol; X = 4*IHL (IPv4) or 40 (IPv6)
//	again:
//	  if A == N or A == 59 (no next header): stop
//	  IPv6 only: if A is 0, 60, 43 or 44 (hop-by-hop, destination
//	    options, routing, fragment): A, X = P[X], X + (P[X+1]+1)*8; again
//	  if A == 51 (AH): A, X = P[X], (P[X+1]+2)*4; again
//	  stop
//	stop: the filter holds if A == N
//
// (an AH header sets X to its length, not to X plus its length: that is
// libpcap 1.10's walk, kept). The program unrolls the walk maxChain
// times: a frame whose walk goes on longer (libpcap's may never end) stops
// there with A, matching only if A is N. A load past the end of the frame
// rejects it, as in libpcap.

// maxChain is the number of headers the unrolled walk looks at.
const maxChain = 16

// protochainVal returns the value of the walk of the IP header (version
// 4 or 6) at nl looking for proto: the protocol where it stops.
func protochainVal(version uint8, nl int32, proto uint32) *val {
	return &val{kind: valChain, size: version, nl: nl, k: proto}
}

// parseProtochain parses the protocol after `protochain` (at t) qualified
// by proto: "", "ip" or "ip6".
func (p *parser) parseProtochain(t token, proto string) (pred, *Error) {
	switch proto {
	case "", "ip", "ip6":
	default:
		return nil, p.fail(t, "%s cannot qualify \"protochain\": use ip or ip6", quote(proto))
	}
	if p.geneve {
		return nil, p.fail(t, "\"protochain\" cannot follow geneve (libpcap: not supported with variable length headers)")
	}
	n := p.next()
	var v uint32
	var ok bool
	switch n.kind {
	case tokWord:
		v, ok = parseNumber(n.text)
	case tokQuote:
		v, ok = ipProtoNames[n.text]
	}
	switch {
	case n.kind == tokWord && isBigNumber(n.text):
		return nil, p.fail(n, "%s", errBigNumber(n.text))
	case !ok && n.kind == tokWord && isName(n.text) && !keywords[n.text]:
		return nil, p.fail(n, "unknown protocol %s", quote(n.text))
	case !ok && n.kind == tokWord && keywords[n.text]:
		return nil, p.fail(n, "expected a protocol number after \"protochain\", found %s: write \\%s", n, n.text)
	case !ok:
		return nil, p.fail(n, "expected a protocol number after \"protochain\", found %s", n)
	}
	nl := p.nl()
	chain := func(etype uint16, version uint8) pred {
		return and(p.linkType(etype), test(protochainVal(version, nl, v), cmpEq, v))
	}
	switch proto {
	case "ip":
		return chain(wire.EtherTypeIPv4, 4), nil
	case "ip6":
		return chain(wire.EtherTypeIPv6, 6), nil
	}
	return or(chain(wire.EtherTypeIPv4, 4), chain(wire.EtherTypeIPv6, 6)), nil
}

// protochainTest emits node n, whose test is the walk's value v compared
// with a constant: the unrolled walk with A in r0 and X in r9, P[X]
// saved in a stack slot while P[X+1] is read. Where the test is
// `v == v.k`, the walk's stops go straight to n's successors; the walk
// leaves A in r0 on every way out.
func (e *emitter) protochainTest(n, next *node) {
	v := n.t.v
	e.usesR6 = true
	e.chains++
	prefix := fmt.Sprintf("chain%d.", e.chains)
	done := prefix + "done"
	onTrue, onFalse := done, done
	if n.t.op == cmpEq && n.t.k == v.k {
		onTrue, onFalse = label(n.jt), label(n.jf)
	}
	nl := e.base + v.nl
	if v.size == 4 {
		if e.st.ihl == v.nl {
			e.emit(asm.Mov.Reg(asm.R9, asm.R7))
		} else {
			e.emit(asm.LoadAbs(nl, asm.Byte),
				asm.And.Imm32(asm.R0, 0xf),
				asm.LSh.Imm32(asm.R0, 2),
				asm.Mov.Reg(asm.R9, asm.R0))
		}
		e.emit(asm.LoadAbs(nl+9, asm.Byte))
	} else {
		e.emit(asm.LoadAbs(nl+6, asm.Byte), asm.Mov.Imm(asm.R9, 40))
	}
	e.depth++
	slot := int16(-8 - 8*e.depth)
	for i := range maxChain {
		ext, step := fmt.Sprintf("%sext%d", prefix, i), fmt.Sprintf("%sstep%d", prefix, i)
		e.emit(asm.JEq.Imm32(asm.R0, int32(v.k), onTrue),
			asm.JEq.Imm32(asm.R0, 59, onFalse))
		if v.size == 6 {
			for _, h := range []int32{0, 60, 43, 44} {
				e.emit(asm.JEq.Imm32(asm.R0, h, ext))
			}
		}
		e.emit(asm.JNE.Imm32(asm.R0, 51, onFalse),
			// AH: X = (P[X+1]+2)*4.
			asm.LoadInd(asm.R9, nl, asm.Byte),
			asm.StoreMem(asm.RFP, slot, asm.R0, asm.Word),
			asm.LoadInd(asm.R9, nl+1, asm.Byte),
			asm.Add.Imm32(asm.R0, 2),
			asm.LSh.Imm32(asm.R0, 2),
			asm.Mov.Reg32(asm.R9, asm.R0))
		if v.size == 6 {
			e.emit(asm.Goto(step),
				// An extension header: X += (P[X+1]+1)*8.
				asm.LoadInd(asm.R9, nl, asm.Byte).WithLabel(ext),
				asm.StoreMem(asm.RFP, slot, asm.R0, asm.Word),
				asm.LoadInd(asm.R9, nl+1, asm.Byte),
				asm.Add.Imm32(asm.R0, 1),
				asm.LSh.Imm32(asm.R0, 3),
				asm.Add.Reg32(asm.R9, asm.R0))
		}
		e.emit(asm.LoadMem(asm.R0, asm.RFP, slot, asm.Word).WithLabel(step))
	}
	e.depth--
	e.st.r0 = v
	start := len(e.insns)
	e.branch(n.t.op, false, n.t.k, n.jt, n.jf, next)
	if onTrue == done {
		if len(e.insns) == start {
			e.emit(asm.Goto(label(next)))
		}
		e.insns[start] = e.insns[start].WithLabel(done)
	}
}
