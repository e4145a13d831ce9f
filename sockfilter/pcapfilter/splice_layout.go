package pcapfilter

import (
	"errors"
	"fmt"
	"os"

	"github.com/purebpf/purebpf/internal/btf"
)

// SkbLayout gives the byte offsets of the members of the kernel's struct
// sk_buff (include/linux/skbuff.h) that ProbeReadKernel reads. They
// depend on the kernel's version and configuration: KernelSkbLayout reads
// them from the running kernel's BTF, SkbLayoutFromBTF from BTF data. The
// zero SkbLayout is invalid. Only 64-bit kernels are supported, where
// skb->tail is an offset from skb->head (NET_SKBUFF_DATA_USES_OFFSET).
type SkbLayout struct {
	// Head is `unsigned char *head`, the start of the buffer.
	Head int16
	// Tail is `sk_buff_data_t tail`, the end of the linear data as an
	// offset from head.
	Tail int16
	// DataLen is `unsigned int data_len`, the bytes of the frame in pages
	// after the linear data.
	DataLen int16
	// MACHeader and NetworkHeader are `__u16 mac_header` and `__u16
	// network_header`, offsets from head; 0xffff when not set.
	MACHeader, NetworkHeader int16
}

// check returns an error if l cannot be a layout of struct sk_buff: a zero
// or negative offset, misaligned or overlapping members.
func (l SkbLayout) check() error {
	if l == (SkbLayout{}) {
		return errors.New("SpliceOptions.Layout is not set: fill it with KernelSkbLayout")
	}
	type member struct {
		name      string
		off, size int16
	}
	ms := []member{{"head", l.Head, 8}, {"tail", l.Tail, 4}, {"data_len", l.DataLen, 4},
		{"mac_header", l.MACHeader, 2}, {"network_header", l.NetworkHeader, 2}}
	for i, m := range ms {
		if m.off < 0 || m.off%m.size != 0 || m.off > maxSkbOffset {
			return fmt.Errorf("SkbLayout: %s at %d is not a %d-byte aligned offset below %d", m.name, m.off, m.size, maxSkbOffset)
		}
		for _, o := range ms[:i] {
			if m.off < o.off+o.size && o.off < m.off+m.size {
				return fmt.Errorf("SkbLayout: %s at %d overlaps %s at %d", m.name, m.off, o.name, o.off)
			}
		}
	}
	return nil
}

// maxSkbOffset bounds the offsets of SkbLayout: struct sk_buff is some
// 240 bytes.
const maxSkbOffset = 4096

// KernelSkbLayout returns the layout of struct sk_buff of the running
// kernel, from its BTF in /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF,
// Linux 5.4).
func KernelSkbLayout() (SkbLayout, error) {
	b, err := os.ReadFile(btf.KernelPath)
	if err != nil {
		return SkbLayout{}, fmt.Errorf("kernel sk_buff layout: %w (the kernel needs CONFIG_DEBUG_INFO_BTF)", err)
	}
	l, err := SkbLayoutFromBTF(b)
	if err != nil {
		return SkbLayout{}, fmt.Errorf("kernel sk_buff layout: %w", err)
	}
	return l, nil
}

// SkbLayoutFromBTF returns the layout of struct sk_buff that the BTF data
// b (such as the contents of /sys/kernel/btf/vmlinux) describes. It
// finds the members inside the anonymous structs and unions that hold
// them, and returns an error for a member that is missing, a bitfield or
// not of the size ProbeReadKernel reads, as on a 32-bit kernel.
func SkbLayoutFromBTF(b []byte) (SkbLayout, error) {
	spec, err := btf.Parse(b)
	if err != nil {
		return SkbLayout{}, err
	}
	id, err := spec.Find(btf.KindStruct, "sk_buff")
	if err != nil {
		return SkbLayout{}, err
	}
	var l SkbLayout
	for _, m := range []struct {
		name string
		size uint64
		dst  *int16
	}{
		{"head", 8, &l.Head}, {"tail", 4, &l.Tail}, {"data_len", 4, &l.DataLen},
		{"mac_header", 2, &l.MACHeader}, {"network_header", 2, &l.NetworkHeader},
	} {
		f, err := spec.Field(id, m.name)
		if err != nil {
			return SkbLayout{}, err
		}
		size, err := spec.Sizeof(f.Type)
		if err != nil {
			return SkbLayout{}, fmt.Errorf("sk_buff->%s: %w", m.name, err)
		}
		if f.BitfieldSize != 0 || f.Offset%8 != 0 || size != m.size || f.Offset/8 > maxSkbOffset {
			return SkbLayout{}, fmt.Errorf("sk_buff->%s is %d bytes at bit %d (bitfield %d): want a %d-byte member (a 64-bit kernel)", m.name, size, f.Offset, f.BitfieldSize, m.size)
		}
		if m.name == "tail" {
			r, err := spec.Resolve(f.Type)
			if err != nil {
				return SkbLayout{}, err
			}
			if t, _ := spec.Type(r); t.Kind != btf.KindInt {
				return SkbLayout{}, errors.New("sk_buff->tail is a pointer, not an offset from head: a 32-bit kernel, which ProbeReadKernel does not support")
			}
		}
		*m.dst = int16(f.Offset / 8)
	}
	return l, l.check()
}
