package kconv

import (
	"fmt"

	"github.com/purebpf/purebpf/internal/btf"
)

// LayoutFromBTF returns the layout of the kernel whose BTF is spec, for
// a little-endian 64-bit machine with efficient unaligned access, as
// x86-64 and arm64 are (the other fields are Linux618AMD64's).
func LayoutFromBTF(spec *btf.Spec) (Layout, error) {
	l := Linux618AMD64
	skb, err := spec.Find(btf.KindStruct, "sk_buff")
	if err != nil {
		return l, fmt.Errorf("kconv: %w", err)
	}
	dev, err := spec.Find(btf.KindStruct, "net_device")
	if err != nil {
		return l, fmt.Errorf("kconv: %w", err)
	}
	for _, f := range []struct {
		id   btf.TypeID
		name string
		dst  *int16
	}{
		{skb, "data", &l.Data}, {skb, "len", &l.Len}, {skb, "data_len", &l.DataLen},
		{skb, "protocol", &l.Protocol}, {skb, "mark", &l.Mark}, {skb, "hash", &l.Hash},
		{skb, "queue_mapping", &l.QueueMapping}, {skb, "vlan_tci", &l.VLANTCI},
		{skb, "vlan_all", &l.VLANAll}, {skb, "vlan_proto", &l.VLANProto}, {skb, "dev", &l.Dev},
		{skb, "__pkt_type_offset", &l.PktTypeOffset},
		{dev, "ifindex", &l.DevIfindex}, {dev, "type", &l.DevType},
	} {
		m, err := spec.Field(f.id, f.name)
		if err != nil {
			return l, fmt.Errorf("kconv: %w", err)
		}
		*f.dst = int16(m.Offset / 8)
	}
	ps, err := spec.PointerSize()
	if err != nil {
		return l, fmt.Errorf("kconv: %w", err)
	}
	l.PointerSize = int(ps)
	return l, nil
}

// KernelLayout returns the running kernel's layout, read from its BTF
// (/sys/kernel/btf/vmlinux).
func KernelLayout() (Layout, error) {
	spec, err := btf.LoadKernel()
	if err != nil {
		return Layout{}, fmt.Errorf("kconv: %w", err)
	}
	return LayoutFromBTF(spec)
}
