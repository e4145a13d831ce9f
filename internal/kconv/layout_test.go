package kconv

import (
	"testing"

	"github.com/purebpf/purebpf/internal/btf"
)

// TestLayoutMatchesBTF checks Linux618AMD64 against the running kernel's
// BTF, when it is a 6.18 x86-64 kernel's layout: each offset is the
// member's in struct sk_buff or struct net_device.
func TestLayoutMatchesBTF(t *testing.T) {
	spec, err := btf.LoadKernel()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	got, err := kernelLayout(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got != Linux618AMD64 {
		t.Errorf("the running kernel's layout is\n%+v\nLinux618AMD64 is\n%+v", got, Linux618AMD64)
	}
}

// kernelLayout reads the layout from spec.
func kernelLayout(spec *btf.Spec) (Layout, error) {
	l := Linux618AMD64
	skb, err := spec.Find(btf.KindStruct, "sk_buff")
	if err != nil {
		return l, err
	}
	dev, err := spec.Find(btf.KindStruct, "net_device")
	if err != nil {
		return l, err
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
			return l, err
		}
		*f.dst = int16(m.Offset / 8)
	}
	ps, err := spec.PointerSize()
	if err != nil {
		return l, err
	}
	l.PointerSize = int(ps)
	return l, nil
}
