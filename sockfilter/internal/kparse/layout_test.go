package kparse

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// encodeRecord writes the record the kernel's program writes for a frame
// Parse decoded into r without an Info, seen by a socket that said info
// about it: a model of the program's output, in Go.
func encodeRecord(r *packet.Record, info *packet.Info, clk Clock) []byte {
	b := make([]byte, RecordSize)
	ne := binary.NativeEndian
	b[OffVersion] = Version
	var flags byte
	set := func(ok bool, f byte) {
		if ok {
			flags |= f
		}
	}
	set(r.Fragment, FlagFragment)
	set(r.MoreFragments, FlagMoreFrags)
	set(r.DontFragment, FlagDontFrag)
	set(r.Transport, FlagTransport)
	set(r.Src.IsValid(), FlagAddrs)
	set(info.HasVLAN, FlagVLANStrip)
	b[OffFlags] = flags
	b[OffStatus], b[OffErrLayer] = byte(r.Status), byte(r.ErrLayer)
	if info.Direction != packet.DirectionUnknown {
		b[OffPktType] = byte(info.Direction - 1)
	}
	b[OffVLANs], b[OffIPVersion], b[OffIPProto] = r.VLANs, r.IPVersion, r.IPProto
	ne.PutUint64(b[OffTime:], clk.Stamp(info.Time))
	ne.PutUint32(b[OffIfindex:], uint32(info.Ifindex))
	ne.PutUint32(b[OffLength:], uint32(r.Length))
	ne.PutUint16(b[OffEtherType:], r.EtherType)
	ne.PutUint16(b[OffVLAN:], r.VLAN)
	ne.PutUint16(b[OffInnerVLAN:], r.InnerVLAN)
	if info.HasVLAN {
		ne.PutUint16(b[OffVLANTCI:], info.VLANTCI)
		ne.PutUint16(b[OffVLANTPID:], info.VLANTPID)
	}
	b[OffTTL], b[OffICMPType], b[OffICMPCode] = r.TTL, r.ICMPType, r.ICMPCode
	ne.PutUint16(b[OffARPOp:], r.ARPOp)
	if r.Src.IsValid() {
		s, d := r.Src.Addr().AsSlice(), r.Dst.Addr().AsSlice()
		copy(b[OffSrc:], s)
		copy(b[OffDst:], d)
	}
	if r.HasPorts() {
		ne.PutUint16(b[OffSrcPort:], r.Src.Port())
		ne.PutUint16(b[OffDstPort:], r.Dst.Port())
	}
	ne.PutUint16(b[OffFragOff:], r.FragOffset)
	ne.PutUint16(b[OffWindow:], r.Window)
	ne.PutUint32(b[OffFragID:], r.FragID)
	ne.PutUint32(b[OffIPPayload:], uint32(r.IPPayloadLen))
	ne.PutUint32(b[OffPayload:], uint32(r.PayloadLen))
	ne.PutUint16(b[OffTCPFlags:], uint16(r.TCPFlags))
	ne.PutUint32(b[OffSeq:], r.Seq)
	ne.PutUint32(b[OffAck:], r.Ack)
	return b
}

// corpus returns the Ethernet and raw IP frames of testdata and generated
// ones, whole, with their link types.
func corpus(t testing.TB) (frames [][]byte, links []packet.LinkType) {
	for _, f := range testutil.Frames(t) {
		if f.Link == testutil.LinkEthernet || f.Link == testutil.LinkRawIP {
			frames = append(frames, f.Data)
			links = append(links, packet.LinkType(f.Link))
		}
	}
	for _, f := range testutil.GenFrames(18, 2000) {
		frames = append(frames, f)
		links = append(links, packet.LinkEthernet)
	}
	return frames, links
}

// TestDecodeRoundTrip decodes the records of the corpus' frames, as the
// program writes them, with and without a VLAN tag the device removed:
// each must be Parse's record of the frame with that Info.
func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	frames, links := corpus(t)
	clk := Clock{Offset: 1_700_000_000_000_000_000 - 12345}
	infos := []packet.Info{
		{Time: time.Unix(1_700_000_001, 123456789), Ifindex: 3, Direction: packet.DirectionHost},
		{Time: time.Unix(1_700_000_002, 1), Ifindex: 7, Direction: packet.DirectionOutgoing,
			HasVLAN: true, VLANTCI: 5<<13 | 42, VLANTPID: 0x88a8},
	}
	for i, frame := range frames {
		for _, info := range infos {
			var plain, want, got packet.Record
			var gotInfo packet.Info
			packet.Parse(frame, links[i], nil, &plain)
			info.Length = len(frame)
			packet.Parse(frame, links[i], &info, &want)
			if err := Decode(encodeRecord(&plain, &info, clk), clk, &got, &gotInfo); err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if !got.Time.Equal(want.Time) {
				t.Fatalf("frame %d: time %v, want %v", i, got.Time, want.Time)
			}
			got.Time, want.Time, gotInfo.Time, info.Time = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if got != want || gotInfo != info {
				t.Fatalf("frame %d (% x):\n got %+v %+v\nwant %+v %+v", i, frame, got, gotInfo, want, info)
			}
		}
	}
}

// TestDecodeRefuses checks that records of another size, version or with
// impossible fields are errors.
func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	good := encodeRecord(&packet.Record{Length: 60, CapLen: 60}, &packet.Info{}, Clock{})
	var r packet.Record
	if err := Decode(good, Clock{}, &r, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:RecordSize-1] }},
		{"version", func(b []byte) []byte { b[OffVersion] = Version + 1; return b }},
		{"flags", func(b []byte) []byte { b[OffFlags] = 0x80; return b }},
		{"status", func(b []byte) []byte { b[OffStatus] = 3; return b }},
		{"layer", func(b []byte) []byte { b[OffErrLayer] = 200; return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(append([]byte(nil), good...))
			if err := Decode(b, Clock{}, &r, nil); err == nil {
				t.Error("decoded")
			}
		})
	}
}

// TestDecodeNoAllocs pins Decode at zero allocations.
func TestDecodeNoAllocs(t *testing.T) {
	var r packet.Record
	var info packet.Info
	b := encodeRecord(&packet.Record{Length: 60, CapLen: 60}, &packet.Info{}, Clock{})
	if n := testing.AllocsPerRun(100, func() { Decode(b, Clock{}, &r, &info) }); n != 0 {
		t.Errorf("Decode: %v allocations", n)
	}
}

// FuzzDecode decodes arbitrary bytes: no panic, and a record that decodes
// has the sizes and the Proto a record of Parse's can have.
func FuzzDecode(f *testing.F) {
	frames, links := corpus(f)
	for i := 0; i < len(frames); i += 37 {
		var r packet.Record
		packet.Parse(frames[i], links[i], nil, &r)
		f.Add(encodeRecord(&r, &packet.Info{Direction: packet.DirectionHost}, Clock{}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r packet.Record
		var info packet.Info
		if err := Decode(b, Clock{}, &r, &info); err != nil {
			return
		}
		if r.Length != r.CapLen || info.Length != r.Length || r.Proto > packet.ProtoOther {
			t.Fatalf("decoded %+v, %+v", r, info)
		}
		if (b[OffFlags]&FlagAddrs != 0) != (r.Src.IsValid() && r.Dst.IsValid()) || r.HasPorts() && !r.Src.IsValid() {
			t.Fatalf("addresses %v, ports %v of %+v", r.Src, r.HasPorts(), r)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	var plain packet.Record
	packet.Parse(testutil.NamedFrame(b, "udp4").Data, packet.LinkEthernet, nil, &plain)
	raw := encodeRecord(&plain, &packet.Info{Direction: packet.DirectionHost, Ifindex: 1}, Clock{})
	var r packet.Record
	var info packet.Info
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(raw, Clock{}, &r, &info); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeOverwrites decodes into a Record and an Info whose every
// field holds something: Decode sets them all, as a fresh decode would,
// even fields added to packet.Record after Decode was written.
func TestDecodeOverwrites(t *testing.T) {
	t.Parallel()
	frames, links := corpus(t)
	for i := 0; i < len(frames); i += 7 {
		var plain, fresh packet.Record
		var freshInfo packet.Info
		packet.Parse(frames[i], links[i], nil, &plain)
		b := encodeRecord(&plain, &packet.Info{Ifindex: 2}, Clock{})
		if err := Decode(b, Clock{}, &fresh, &freshInfo); err != nil {
			t.Fatal(err)
		}
		used, usedInfo := filled(t, &packet.Record{}), filled(t, &packet.Info{})
		if err := Decode(b, Clock{}, used.(*packet.Record), usedInfo.(*packet.Info)); err != nil {
			t.Fatal(err)
		}
		if *used.(*packet.Record) != fresh || *usedInfo.(*packet.Info) != freshInfo {
			t.Fatalf("frame %d: decoded into a used Record: %+v %+v; fresh: %+v %+v", i, used, usedInfo, fresh, freshInfo)
		}
	}
}

// filled sets every field of the struct p points to to something not
// zero, and returns p.
func filled(t *testing.T, p any) any {
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(77)
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(7)
		case reflect.Struct:
			switch f.Interface().(type) {
			case time.Time:
				f.Set(reflect.ValueOf(time.Unix(99, 9)))
			case netip.AddrPort:
				f.Set(reflect.ValueOf(netip.MustParseAddrPort("[2001:db8::9]:9")))
			default:
				t.Fatalf("field %s of type %v: teach filled to fill it", v.Type().Field(i).Name, f.Type())
			}
		default:
			t.Fatalf("field %s of kind %v: teach filled to fill it", v.Type().Field(i).Name, f.Kind())
		}
	}
	return p
}
