package vm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// Env is the state of one run of a program: its stacks, its context and
// the frame it runs on. A Helper gets the Env of the run that calls it, to
// reach the program's memory; it must not keep it after it returns.
type Env struct {
	vm      *VM
	regions [numRegions]region
	stack   [MaxFrames * StackSize]byte
	frames  [MaxFrames]frame // the callers' state, frames[d-1] for depth d
	depth   int              // the current frame: 0 for the main program
	mayGoto [MaxFrames]uint32
	pc      int // the instruction being run, for the errors of helpers

	// The socket buffer: the frame from its link-layer header, the
	// offsets of skb->data, the link-layer header and the network header
	// in it, and the fields of struct __sk_buff, built when first read.
	hasSkb   bool
	test     bool // the test-run view
	pkt      []byte
	base     [4]int // by baseData, baseMAC, baseNet
	skbLen   uint32
	protocol uint16 // EtherType, host order
	pktType  uint8
	ifindex  uint32
	inIf     uint32
	vlanTCI  uint16
	vlanTPID uint16
	hasVLAN  bool
	ctxReady bool
	cookie   uint64 // the test run's socket cookie, once asked for
	ctx      [ctxSize]byte
	sock     [sockSize]byte

	mem    []byte // RunMemory's copy of its input
	buf    []byte // RunTest's raw IP frame behind an Ethernet header
	printk []byte // bpf_trace_printk's output
}

// frame is what a BPF-to-BPF call saves of its caller.
type frame struct {
	ret  int       // the instruction after the call
	regs [4]uint64 // r6 to r9
}

// reset readies e for the next run; the stack is cleared as frames start.
func (e *Env) reset() {
	for i := range e.regions {
		e.regions[i] = region{}
	}
	e.depth, e.hasSkb, e.test, e.ctxReady, e.cookie = 0, false, false, false, 0
	e.pkt = nil
}

// start sets up the main frame's stack.
func (e *Env) start() {
	e.regions[regionStack] = region{b: e.stack[:], lo: uint64(len(e.stack) - StackSize), kind: kindRW}
	e.clearStack(0)
	e.mayGoto[0] = mayGotoLoops
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

// liveFrame sets e up for a frame as a live packet socket sees it.
func (e *Env) liveFrame(f []byte, link packet.LinkType, info *packet.Info) error {
	e.pkt, e.hasSkb = f, true
	e.skbLen = uint32(len(f))
	switch link {
	case packet.LinkEthernet:
		e.base = [4]int{baseData: 0, baseMAC: 0, baseNet: wire.EthernetHeaderLen}
		e.protocol = ethProtocol(f)
	case packet.LinkRawIP:
		e.base = [4]int{}
		e.protocol = ipProtocol(f)
	default:
		return fmt.Errorf("run program: unsupported link type %v", link)
	}
	e.pktType, e.ifindex, e.inIf, e.hasVLAN = 0, 0, 0, false // PACKET_HOST
	if info != nil {
		if info.Length > len(f) {
			e.skbLen = uint32(min(info.Length, 1<<31))
		}
		if info.Direction != packet.DirectionUnknown {
			e.pktType = uint8(info.Direction - 1)
		}
		e.ifindex = uint32(info.Ifindex)
		if info.Direction != packet.DirectionOutgoing {
			e.inIf = e.ifindex
		}
		e.hasVLAN, e.vlanTCI, e.vlanTPID = info.HasVLAN, info.VLANTCI, info.VLANTPID
	}
	e.regions[regionCtx] = region{kind: kindCtx}
	return nil
}

// The loopback device's index and its address, which is also the
// broadcast address it tells eth_type_trans.
const loIfindex = 1

// testFrame sets e up for a frame as BPF_PROG_TEST_RUN sees it.
func (e *Env) testFrame(f []byte, link packet.LinkType) error {
	switch link {
	case packet.LinkEthernet:
	case packet.LinkRawIP:
		if len(f) == 0 {
			return errors.New("run program: empty raw IP frame")
		}
		et := ipProtocol(f)
		if et == 0 {
			return fmt.Errorf("run program: raw IP frame of IP version %d", f[0]>>4)
		}
		e.buf = append(e.buf[:0], make([]byte, wire.EtherTypeOff)...)
		e.buf = binary.BigEndian.AppendUint16(e.buf, et)
		e.buf = append(e.buf, f...)
		f = e.buf
	default:
		return fmt.Errorf("run program: unsupported link type %v", link)
	}
	if len(f) < wire.EthernetHeaderLen {
		return fmt.Errorf("run program: frame of %d bytes: the test run needs an Ethernet header (%d bytes)", len(f), wire.EthernetHeaderLen)
	}
	e.pkt, e.hasSkb, e.test = f, true, true
	e.base = [4]int{baseData: wire.EthernetHeaderLen, baseMAC: 0, baseNet: wire.EthernetHeaderLen}
	e.skbLen = uint32(len(f) - wire.EthernetHeaderLen)
	e.protocol = ethProtocol(f)
	e.pktType = loPktType(f)
	e.ifindex, e.inIf, e.hasVLAN = loIfindex, 0, false
	e.regions[regionCtx] = region{kind: kindCtx}
	e.fillSock()
	e.regions[regionSock] = region{kind: kindSock}
	return nil
}
