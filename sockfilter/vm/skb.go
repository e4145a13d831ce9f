package vm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// The sizes of struct __sk_buff and of the part of struct bpf_sock a
// socket filter may read (include/uapi/linux/bpf.h).
const (
	ctxSize  = 192
	sockSize = 80
)

// Offsets in struct __sk_buff the skb package does not name, and in
// struct bpf_sock.
const (
	ctxSk = 168 // __bpf_md_ptr(struct bpf_sock *, sk)

	sockFamily         = 4
	sockSrcIP4         = 24
	sockSrcIP6         = 28
	sockDstIP4         = 52
	sockDstIP6         = 56
	sockState          = 72
	sockRxQueueMapping = 76
)

// Which sizes of access (bit n for an access of n bytes) a socket filter
// may make at each offset of its context and of the socket in a test run,
// as the verifier allows them on Linux 6.18 (sk_filter_is_valid_access,
// bpf_skb_is_valid_access, bpf_sock_common_is_valid_access).
var (
	ctxRead, ctxWrite [ctxSize]uint8
	sockRead          [sockSize]uint8
)

func init() {
	// narrow allows the loads of 1, 2 and 4 bytes inside the u32 at off.
	narrow := func(t []uint8, off int) {
		for i := range 4 {
			t[off+i] |= 1
		}
		t[off] |= 2 | 4
		t[off+2] |= 2
	}
	// whole allows the loads of 1, 2 and 4 bytes at the start of the u32
	// at off only.
	whole := func(t []uint8, off int) { t[off] |= 1 | 2 | 4 }
	for off := skb.Len; off < skb.Hash+4; off += 4 {
		narrow(ctxRead[:], int(off))
	}
	for _, f := range []skb.Field{skb.NapiID, skb.GSOSegs, skb.GSOSize} {
		narrow(ctxRead[:], int(f))
	}
	for off := skb.CB; off < skb.CB+20; off += 4 {
		narrow(ctxWrite[:], int(off))
	}
	for _, off := range []skb.Field{skb.CB, skb.CB + 8} {
		ctxRead[off] |= 8
		ctxWrite[off] |= 8
	}
	ctxRead[ctxSk] |= 8

	sockRead[0] |= 4 // bound_dev_if
	whole(sockRead[:], sockFamily)
	for off := sockSrcIP4; off < sockSrcIP6+16; off += 4 {
		narrow(sockRead[:], off)
	}
	whole(sockRead[:], 44) // src_port
	sockRead[48] |= 1 | 2 | 4
	sockRead[49] |= 1 // dst_port
	for off := sockDstIP4; off < sockDstIP6+16; off += 4 {
		narrow(sockRead[:], off)
	}
	whole(sockRead[:], sockState)
	whole(sockRead[:], sockRxQueueMapping)
}

// The size of the load the kernel's conversion makes for each u32 of
// struct __sk_buff and struct bpf_sock, by offset/4: a narrow load of
// fewer bytes shifts and masks the field's value, one of as many bytes or
// more gets the whole value whatever its offset in the u32
// (convert_ctx_accesses, bpf_convert_ctx_access,
// bpf_sock_convert_ctx_access). 0 marks the control block, plain memory.
var ctxTarget = [ctxSize / 4]uint8{
	skb.Len / 4: 4, skb.PktType / 4: 1, skb.Mark / 4: 4, skb.QueueMapping / 4: 2,
	skb.Protocol / 4: 2, skb.VLANPresent / 4: 4, skb.VLANTCI / 4: 2, skb.VLANProto / 4: 2,
	skb.Priority / 4: 4, skb.IngressIfindex / 4: 4, skb.Ifindex / 4: 4, skb.TCIndex / 4: 2,
	skb.Hash / 4: 4, skb.NapiID / 4: 4, skb.GSOSegs / 4: 2, skb.GSOSize / 4: 2,
}

var sockTarget = [sockSize / 4]uint8{
	0: 4, sockFamily / 4: 2, sockSrcIP4 / 4: 4, 7: 4, 8: 4, 9: 4, 10: 4, 11: 2, 12: 2,
	sockDstIP4 / 4: 4, 14: 4, 15: 4, 16: 4, 17: 4, sockState / 4: 1, sockRxQueueMapping / 4: 2,
}

// narrowLoad reads n bytes at offset o of a structure b whose u32 fields
// the kernel loads with the sizes of target, as the kernel's conversion of
// the load does.
func narrowLoad(b []byte, target []uint8, o, n uint64) uint64 {
	t := target[o/4]
	if t == 0 || n == 8 {
		return readLE(b[o:], n)
	}
	return narrowWord(le.Uint32(b[o&^3:]), t, o, n)
}

// narrowWord is narrowLoad from w, the u32 that holds offset o, of a
// field the kernel loads with t bytes.
func narrowWord(w uint32, t uint8, o, n uint64) uint64 {
	v := uint64(w)
	if n < uint64(t) {
		v = v >> (8 * (o & 3)) & (1<<(8*n) - 1)
	}
	return v
}

// ctxLoad is the load of n bytes at offset o of struct __sk_buff, which
// the program may make (ctxRead), in a run on fc that wrote nothing to the
// control block.
func ctxLoad(fc *frameCtx, o, n uint64) uint64 {
	return narrowWord(ctxWord(fc, o&^3), ctxTarget[o/4], o, n)
}

// ctxFields are the fields of struct __sk_buff whose values come from the
// frame: the others are 0 for every frame the VM runs.
var ctxFields = [...]skb.Field{skb.Len, skb.PktType, skb.Protocol, skb.VLANPresent,
	skb.VLANTCI, skb.VLANProto, skb.IngressIfindex, skb.Ifindex}

// ctxWord returns the u32 at offset o, a multiple of 4, of struct
// __sk_buff for fc, as the kernel's conversions of context loads read it
// (convert_ctx_access in net/core/filter.c): the __be16 fields hold the
// bytes in network order.
func ctxWord(fc *frameCtx, o uint64) uint32 {
	switch skb.Field(o) {
	case skb.Len:
		return skbLen(fc.pkt, &fc.base)
	case skb.PktType:
		return uint32(fc.pktType)
	case skb.Protocol:
		return uint32(bits.ReverseBytes16(fc.protocol))
	case skb.VLANPresent:
		if fc.hasVLAN {
			return 1
		}
	case skb.VLANTCI:
		if fc.hasVLAN {
			return uint32(fc.vlanTCI)
		}
	case skb.VLANProto:
		if fc.hasVLAN {
			return uint32(bits.ReverseBytes16(fc.vlanTPID))
		}
	case skb.IngressIfindex:
		return fc.inIf
	case skb.Ifindex:
		return fc.ifindex
	}
	return 0
}

// fillCtx builds struct __sk_buff for the frame (ctxWord).
func (e *Env) fillCtx(fc *frameCtx) {
	if e.ctxReady {
		return
	}
	// The other fields stay zero from newEnv: only these change, and the
	// control block the program may write.
	c := &e.ctx
	for _, f := range ctxFields {
		le.PutUint32(c[f:], ctxWord(fc, uint64(f)))
	}
	clear(c[skb.CB : skb.CB+20])
	var sk uint64
	if fc.test {
		sk = sockAddr
	}
	le.PutUint64(c[ctxSk:], sk)
	e.ctxReady = true
}

// fillSock builds the struct bpf_sock of the socket the test run makes
// for the frame (bpf_prog_test_run_skb): AF_INET or AF_INET6 with the
// addresses of the IP header when the frame holds it, and TCP_CLOSE.
func (e *Env) fillSock(fc *frameCtx) {
	if e.sockReady {
		return
	}
	e.sockReady = true
	s := &e.sock
	clear(s[:])
	ip := fc.pkt[wire.EthernetHeaderLen:]
	switch fc.protocol {
	case wire.EtherTypeIPv4:
		s[sockFamily] = 2 // AF_INET
		if len(ip) >= wire.IPv4HeaderLen {
			copy(s[sockSrcIP4:sockSrcIP4+4], ip[12:16])
			copy(s[sockDstIP4:sockDstIP4+4], ip[16:20])
		}
	case wire.EtherTypeIPv6:
		s[sockFamily] = 10 // AF_INET6
		if len(ip) >= wire.IPv6HeaderLen {
			copy(s[sockSrcIP6:sockSrcIP6+16], ip[8:24])
			copy(s[sockDstIP6:sockDstIP6+16], ip[24:40])
		}
	}
	s[sockState] = 7 // TCP_CLOSE
	le.PutUint32(s[sockRxQueueMapping:], 0xffffffff)
}

// The skb->protocol of IEEE 802.3 frames, whose EtherType field holds a
// length (linux/if_ether.h).
const (
	ethP8023 = 0x0001 // ETH_P_802_3: raw 802.3, as Novell's IPX used it
	ethP8022 = 0x0004 // ETH_P_802_2: 802.2 LLC
)

// ethProtocol returns skb->protocol as eth_type_trans sets it for an
// Ethernet frame.
func ethProtocol(f []byte) uint16 {
	if len(f) < wire.EthernetHeaderLen {
		return 0
	}
	t := binary.BigEndian.Uint16(f[wire.EtherTypeOff:])
	switch {
	case t >= wire.EtherTypeMin:
		return t
	case len(f) >= wire.EthernetHeaderLen+2 && f[14] == 0xff && f[15] == 0xff:
		return ethP8023
	}
	return ethP8022
}

// ipProtocol returns the EtherType of a raw IP frame from its version, or
// 0 when it is neither IPv4 nor IPv6.
func ipProtocol(f []byte) uint16 {
	if len(f) == 0 {
		return 0
	}
	switch f[0] >> 4 {
	case 4:
		return wire.EtherTypeIPv4
	case 6:
		return wire.EtherTypeIPv6
	}
	return 0
}

// loPktType returns the packet type eth_type_trans gives a frame on the
// loopback device, whose address and broadcast address are all zeros:
// PACKET_HOST for that address, PACKET_MULTICAST for group addresses
// (ff:ff:ff:ff:ff:ff included: it is not lo's broadcast address), else
// PACKET_OTHERHOST.
func loPktType(f []byte) uint8 {
	if [6]byte(f[:6]) == [6]byte{} {
		return 0
	}
	if f[0]&1 != 0 {
		return 2
	}
	return 3
}

// pktLoad reads the legacy load's value at byte o of pkt, size 0, 1
// or 2 for u8, u16 and u32, in network byte order.
func pktLoad(pkt []byte, o int, size op) (uint64, bool) {
	n := 1 << size
	if o < 0 || o+n > len(pkt) {
		return 0, false
	}
	switch size {
	case 0:
		return uint64(pkt[o]), true
	case 1:
		return uint64(binary.BigEndian.Uint16(pkt[o:])), true
	}
	return uint64(binary.BigEndian.Uint32(pkt[o:])), true
}

// indOffset returns the byte of the frame the legacy load at offset k
// (skb->data + k, or a header + k - SKF_NET_OFF or SKF_LL_OFF) reads, as
// bpf_skb_load_helper and bpf_internal_load_pointer_neg_helper find it.
func indOffset(base *[4]int, k int32) (int, bool) {
	switch {
	case k >= 0:
		return base[baseData] + int(k), true
	case k >= skb.NetOff:
		return base[baseNet] + int(k-skb.NetOff), true
	case k >= skb.LLOff:
		return base[baseMAC] + int(k-skb.LLOff), true
	}
	return 0, false
}

var errNoSkb = errors.New("a legacy packet load needs the socket buffer in r6 (r6 = r1 at the start of the program)")

// noSkb says why a legacy packet load cannot run.
func noSkb(hasSkb bool) error {
	if !hasSkb {
		return fmt.Errorf("%w: there is none: RunMemory gives no socket buffer", ErrCall)
	}
	return fmt.Errorf("%w: %v", ErrCall, errNoSkb)
}
