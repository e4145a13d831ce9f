package vm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// skbLen returns skb->len for the frame pkt whose headers base gives: the
// bytes from skb->data, and those a capture cut off.
func skbLen(pkt []byte, base *[4]int) uint32 {
	return uint32(len(pkt) - base[baseData] + base[baseExtra])
}

// frameCtx is the socket buffer a run sees: the frame from its link-layer
// header, the offsets of skb->data, the link-layer header and the network
// header in it, and what struct __sk_buff says of it. It lives on the
// stack of the Run method.
type frameCtx struct {
	pkt      []byte
	base     [4]int // by baseData, baseMAC, baseNet, baseExtra
	ifindex  uint32
	inIf     uint32
	protocol uint16 // EtherType, host order
	vlanTCI  uint16
	vlanTPID uint16
	pktType  uint8
	hasVLAN  bool
	hasSkb   bool // false for RunMemory
	test     bool // the test-run view
}

// live sets fc up for a frame as a live packet socket sees it.
func (fc *frameCtx) live(f []byte, link packet.LinkType, info *packet.Info) error {
	fc.pkt, fc.hasSkb = f, true
	switch link {
	case packet.LinkEthernet:
		fc.base = ethBases
		fc.protocol = ethProtocol(f)
	case packet.LinkRawIP:
		fc.protocol = ipProtocol(f)
	case packet.LinkLinuxSLL:
		fc.base = sllBases
	case packet.LinkLinuxSLL2:
		fc.base = sll2Bases
	default:
		return fmt.Errorf("run program: unsupported link type %v", link)
	}
	if info != nil {
		if info.Length > len(f) {
			fc.base[baseExtra] = min(info.Length, 1<<31) - len(f)
		}
		if info.Direction != packet.DirectionUnknown {
			fc.pktType = uint8(info.Direction - 1)
		}
		fc.ifindex = uint32(info.Ifindex)
		if info.Direction != packet.DirectionOutgoing {
			fc.inIf = fc.ifindex
		}
		fc.hasVLAN, fc.vlanTCI, fc.vlanTPID = info.HasVLAN, info.VLANTCI, info.VLANTPID
	}
	if link == packet.LinkLinuxSLL || link == packet.LinkLinuxSLL2 {
		fc.cooked(f, link) // the header says more than info
	}
	return nil
}

// loIfindex is the loopback device's index.
const loIfindex = 1

// setTest sets fc up for a frame as BPF_PROG_TEST_RUN sees it. A raw IP
// frame gets an Ethernet header in buf, which it returns.
func (fc *frameCtx) setTest(f []byte, link packet.LinkType, buf []byte) ([]byte, error) {
	switch link {
	case packet.LinkEthernet:
	case packet.LinkRawIP:
		if len(f) == 0 {
			return buf, errors.New("run program: empty raw IP frame")
		}
		et := ipProtocol(f)
		if et == 0 {
			return buf, fmt.Errorf("run program: raw IP frame of IP version %d", f[0]>>4)
		}
		buf = append(buf[:0], make([]byte, wire.EtherTypeOff)...)
		buf = binary.BigEndian.AppendUint16(buf, et)
		buf = append(buf, f...)
		f = buf
	default:
		return buf, fmt.Errorf("run program: unsupported link type %v", link)
	}
	if len(f) < wire.EthernetHeaderLen {
		return buf, fmt.Errorf("run program: frame of %d bytes: the test run needs an Ethernet header (%d bytes)", len(f), wire.EthernetHeaderLen)
	}
	fc.pkt, fc.hasSkb, fc.test = f, true, true
	fc.base = testBases
	fc.protocol = ethProtocol(f)
	fc.pktType = loPktType(f)
	fc.ifindex = loIfindex
	return buf, nil
}
