package pcapfilter

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// Access is how a spliced filter reads the packet (see SpliceOptions).
type Access uint8

// The access modes. The zero Access is invalid.
const (
	// DirectAccess reads the packet between two packet pointers,
	// PacketStart and PacketEnd (the verifier's PTR_TO_PACKET and
	// PTR_TO_PACKET_END), checking each load against the end as the
	// verifier requires: for tc (BPF_PROG_TYPE_SCHED_CLS and SCHED_ACT,
	// Linux 4.7), XDP (4.8), cgroup_skb (4.20), lwt and sk_skb programs,
	// which load data and data_end from their context.
	DirectAccess Access = iota + 1
	// SkbLoadBytes reads the packet with bpf_skb_load_bytes (Linux 4.5)
	// from the struct __sk_buff in Context, relative to skb->data: for
	// programs on a socket buffer without direct packet access, or where
	// the data is not linear.
	SkbLoadBytes
	// ProbeReadKernel reads the packet with bpf_probe_read_kernel (Linux
	// 5.5) from the kernel's struct sk_buff whose address is in Context,
	// at skb->head + skb->mac_header (or skb->network_header), up to the
	// end of its linear data, with the struct's offsets from Layout: for
	// tracing programs on functions and tracepoints that take a socket
	// buffer (kprobe, fentry, raw tracepoints such as net_dev_queue and
	// netif_receive_skb), as cilium/pwru does.
	ProbeReadKernel
)

var accessNames = [...]string{DirectAccess: "DirectAccess", SkbLoadBytes: "SkbLoadBytes", ProbeReadKernel: "ProbeReadKernel"}

// String returns the constant's name, "DirectAccess".
func (a Access) String() string {
	if int(a) < len(accessNames) && accessNames[a] != "" {
		return accessNames[a]
	}
	return fmt.Sprintf("Access(%d)", uint8(a))
}

// SpliceOptions says how a filter is spliced into another program: how
// it reads the packet, which registers and stack it may use, what its
// labels are called and where it goes once it has decided. See the
// package documentation's section on splicing for the contract.
type SpliceOptions struct {
	// Access is how the filter reads the packet.
	Access Access

	// Compile are the options CompileSplice compiles the expression
	// with (see CompileWith): NoResolve, for a tool that must not wait
	// on DNS, or Offline. Nil is Compile's behaviour. Splice ignores it.
	Compile *CompileOptions

	// PacketStart and PacketEnd hold, for DirectAccess, the packet
	// pointers to the first byte of the packet (the link-layer header
	// for packet.LinkEthernet, the network header for packet.LinkRawIP)
	// and one past its last: a tc program's skb->data and
	// skb->data_end. The filter reads them and never writes them.
	PacketStart, PacketEnd asm.Register

	// Context holds the socket buffer: for SkbLoadBytes the struct
	// __sk_buff * (the program's context), for ProbeReadKernel the
	// address of the kernel's struct sk_buff, and for DirectAccess with
	// SkbContext the struct __sk_buff *. The filter reads it and never
	// writes it (but see Working).
	Context asm.Register

	// SkbContext says, for DirectAccess, that Context holds the program's
	// struct __sk_buff * (tc, cgroup_skb): `len` is then skb->len, the
	// length from skb->data, for which PacketStart must be skb->data.
	// Without it `len` is PacketEnd - PacketStart, which the verifier
	// allows only with CAP_PERFMON (pointer subtraction), and filters
	// that read other fields of the socket buffer are refused.
	SkbContext bool

	// Layout gives, for ProbeReadKernel, the offsets of struct sk_buff's
	// members in the running kernel: KernelSkbLayout reads them from its
	// BTF.
	Layout SkbLayout

	// Working are the registers the filter may write, besides the
	// registers r0 to r5, which SkbLoadBytes and ProbeReadKernel clobber
	// as any helper call does. They must not include the registers of
	// PacketStart, PacketEnd or Context, or r10. Nil means r0 to r9
	// except r6 and those three. Splice says how many more a filter
	// needs when they are too few.
	Working []asm.Register

	// StackOffset is the number of bytes below the frame pointer r10
	// that the filter leaves alone: it uses the stack from
	// r10 - StackOffset down, at most StackSize bytes (0: the rest of
	// the 512-byte stack). StackOffset must be a multiple of 8.
	StackOffset, StackSize int

	// LabelPrefix is put before each label of the filter, so that
	// several filters can be spliced into one program. Empty means
	// "pcapfilter.".
	LabelPrefix string

	// Match and NoMatch are the labels the filter jumps to when the
	// packet matches and when it does not; an empty one means falling
	// through to the instruction after the filter. When both are
	// empty, the filter sets Result to 1 if the packet matches and to 0
	// if not, and falls through.
	Match, NoMatch string
	// Result is the register the filter sets when Match and NoMatch are
	// empty: r0 unless set otherwise.
	Result asm.Register
}

// ErrLinkLayer is wrapped by the error of CompileSplice for a filter that
// needs the link-layer header (`ether host`, `vlan`, `arp`), compiled for
// a packet that starts at the network header (packet.LinkRawIP).
var ErrLinkLayer = errors.New("the filter needs the link-layer header")

// CompileSplice compiles expr for packets of link type link, as Compile
// does, and splices it (see Splice). link says where the packet the
// filter reads starts: packet.LinkEthernet at the link-layer (Ethernet)
// header — tc on an Ethernet device, XDP, skb->mac_header —
// and packet.LinkRawIP at the network (IPv4 or IPv6) header — tc on a
// tun device, cgroup_skb, skb->network_header in a function of the IP
// layer. An expression that needs the link-layer header (`ether host`,
// `vlan`) or can match only frames without a network-layer packet
// (`arp`, `ether proto 0x88cc`) is refused for packet.LinkRawIP with an
// error wrapping ErrLinkLayer.
func CompileSplice(expr string, link packet.LinkType, opts *SpliceOptions) (asm.Instructions, error) {
	var copts *CompileOptions
	if opts != nil {
		copts = opts.Compile
	}
	insns, err := CompileWith(expr, link, copts)
	if link == packet.LinkRawIP {
		eth, ethErr := CompileWith(expr, packet.LinkEthernet, copts)
		switch {
		case err != nil && ethErr == nil:
			return nil, fmt.Errorf("splice: %w: %w; compile it for packet.LinkEthernet where the packet starts at its link-layer header", ErrLinkLayer, err)
		case err == nil && ethErr == nil && !canMatch(insns) && canMatch(eth):
			return nil, fmt.Errorf("splice %q: %w: it matches only frames that carry no IPv4 or IPv6 packet; compile it for packet.LinkEthernet where the packet starts at its link-layer header", expr, ErrLinkLayer)
		}
	}
	if err != nil {
		return nil, err
	}
	return Splice(insns, link, opts)
}

// Splice rewrites insns, a program of Compile for link type link, into
// code to splice into another program, as opts says: it reads the packet
// as opts.Access says, from the start that link gives (see
// CompileSplice), writes only the registers opts.Working and, for the
// helper modes, r0 to r5, uses only its stack area, prefixes its labels
// with opts.LabelPrefix and ends by going to opts.Match or opts.NoMatch
// (or by setting opts.Result). A load past the end of the packet means
// no match, as in libpcap.
//
// The code does not end in an exit: it jumps to the labels it is given,
// or falls through to the instruction after it, which the caller must
// supply. It uses 32-bit jumps (Linux 5.1) whatever the mode.
//
// Splice returns an error for options it cannot honour (too few working
// registers, too small a stack area, a register used twice), and for a
// program that is not one of Compile's for link: one that reads the
// frame relative to another header, calls helpers, or uses the context
// other than to read skb->len and the fields a mode gives.
func Splice(insns asm.Instructions, link packet.LinkType, opts *SpliceOptions) (asm.Instructions, error) {
	if opts == nil {
		return nil, errors.New("splice: no SpliceOptions: say at least how the filter reads the packet (Access)")
	}
	if link != packet.LinkEthernet && link != packet.LinkRawIP {
		return nil, fmt.Errorf("splice: link type %s is not supported: use packet.LinkEthernet or packet.LinkRawIP", link)
	}
	o, err := opts.normalize()
	if err != nil {
		return nil, fmt.Errorf("splice: %w", err)
	}
	s := &splicer{opts: o, link: link}
	virt, err := s.rewrite(insns)
	if err != nil {
		return nil, fmt.Errorf("splice: %w", err)
	}
	out, err := allocate(virt, &o, s.calls)
	if err != nil {
		return nil, fmt.Errorf("splice: %w", err)
	}
	if err := checkReach(out); err != nil {
		return nil, fmt.Errorf("splice: %w", err)
	}
	return out, nil
}

// normalize checks o and returns it with its defaults filled in.
func (o *SpliceOptions) normalize() (SpliceOptions, error) {
	n := *o
	n.Working = slices.Clone(o.Working)
	var inputs []asm.Register
	switch o.Access {
	case DirectAccess:
		inputs = append(inputs, o.PacketStart, o.PacketEnd)
		if o.SkbContext {
			inputs = append(inputs, o.Context)
		}
	case SkbLoadBytes:
		inputs = append(inputs, o.Context)
	case ProbeReadKernel:
		inputs = append(inputs, o.Context)
		if err := o.Layout.check(); err != nil {
			return n, err
		}
	default:
		return n, fmt.Errorf("SpliceOptions.Access %v is not one of DirectAccess, SkbLoadBytes and ProbeReadKernel", o.Access)
	}
	for i, r := range inputs {
		if r > asm.R9 {
			return n, fmt.Errorf("input register %v is not one of r0 to r9", r)
		}
		if slices.Contains(inputs[:i], r) {
			return n, fmt.Errorf("register %v is both PacketStart, PacketEnd or Context: each needs its own", r)
		}
	}
	if n.Working == nil {
		for r := asm.R0; r <= asm.R9; r++ {
			if r != asm.R6 && !slices.Contains(inputs, r) {
				n.Working = append(n.Working, r)
			}
		}
	}
	for i, r := range n.Working {
		switch {
		case r > asm.R9:
			return n, fmt.Errorf("working register %v is not one of r0 to r9", r)
		case slices.Contains(inputs, r):
			return n, fmt.Errorf("working register %v holds PacketStart, PacketEnd or Context, which the filter must not write", r)
		case slices.Contains(n.Working[:i], r):
			return n, fmt.Errorf("working register %v is listed twice", r)
		}
	}
	if o.Result > asm.R9 {
		return n, fmt.Errorf("result register %v is not one of r0 to r9", o.Result)
	}
	if o.StackOffset < 0 || o.StackOffset%8 != 0 || o.StackOffset >= maxStack {
		return n, fmt.Errorf("StackOffset %d is not a multiple of 8 in [0, %d): the verifier wants stack accesses aligned", o.StackOffset, maxStack)
	}
	if n.StackSize == 0 {
		n.StackSize = maxStack - o.StackOffset
	}
	if n.StackSize < 0 || o.StackOffset+n.StackSize > maxStack {
		return n, fmt.Errorf("StackSize %d from StackOffset %d goes past the %d bytes of a program's stack", n.StackSize, o.StackOffset, maxStack)
	}
	if n.LabelPrefix == "" {
		n.LabelPrefix = "pcapfilter."
	}
	for _, l := range []string{o.Match, o.NoMatch} {
		if l != "" && strings.HasPrefix(l, n.LabelPrefix) {
			return n, fmt.Errorf("label %q starts with the filter's LabelPrefix %q: the filter's own labels could take it", l, n.LabelPrefix)
		}
	}
	return n, nil
}

// maxStack is the size of a BPF program's stack (MAX_BPF_STACK).
const maxStack = 512

// canMatch reports whether the program of Compile insns can return
// non-zero: whether any exit is not right after `r0 = 0` that nothing
// jumps between.
func canMatch(insns asm.Instructions) bool {
	for i, ins := range insns {
		if ins.OpCode != asm.Exit().OpCode {
			continue
		}
		if i == 0 || ins.Label != "" {
			return true
		}
		p := insns[i-1]
		zero := p.OpCode.Class().IsALU() && p.OpCode.ALUOp() == asm.Mov &&
			p.OpCode.Source() == asm.ImmSource && p.Dst == asm.R0 && p.Constant == 0
		if !zero {
			return true
		}
	}
	return false
}
