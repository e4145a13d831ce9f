package packet

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/purebpf/purebpf/internal/wire"
)

// FuzzParse feeds Parse with an Info arbitrary frames, of each link type
// it knows (link%4: Ethernet, raw IP, SLL, SLL2), with a wire length, and
// checks that it does not panic; that on error the error is a
// *ParseError pointing into the frame and the Record says the same
// (Status, ErrLayer); and that the Record is consistent, whole or not:
// lengths nest, a fragment with an offset has no transport header, ports
// come with a transport header or PortsOnly, and the text and JSON written
// for it are whole. Its seed corpus, in testdata/fuzz/FuzzParse, holds the
// frames of testdata/frames and broken variants of them.
//
//	go test ./sockfilter/packet -run '^$' -fuzz FuzzParse -fuzztime 2m -parallel 1
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, frame []byte, linkSel uint8, wireLen uint16) {
		link := [...]LinkType{LinkEthernet, LinkRawIP, LinkLinuxSLL, LinkLinuxSLL2}[linkSel%4]
		r := Record{Proto: ProtoTCP, Length: -1, Transport: true} // not zero
		err := Parse(frame, link, &Info{Length: int(wireLen)}, &r)

		// Parse with a nil Info is Parse with the captured length on the wire.
		if int(wireLen) <= len(frame) {
			var r2 Record
			err2 := Parse(frame, link, nil, &r2)
			if (err == nil) != (err2 == nil) || r2 != r {
				t.Fatalf("Parse with no Info gives %+v, %v; with the wire length %+v, %v", r2, err2, r, err)
			}
		}

		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if pe.Offset < 0 || pe.Offset > len(frame) || pe.Layer == LayerNone || pe.Layer.String() != layerNames[pe.Layer] || pe.Reason == "" ||
				!(errors.Is(err, ErrTruncated) || errors.Is(err, ErrMalformed)) {
				t.Fatalf("bad error %#v", pe)
			}
			want := StatusMalformed
			if errors.Is(err, ErrTruncated) {
				want = StatusTruncated
			}
			if r.Status != want || r.ErrLayer != pe.Layer {
				t.Fatalf("after %v: Status %v ErrLayer %v", err, r.Status, r.ErrLayer)
			}
		} else if r.Status != StatusOK || r.ErrLayer != LayerNone || r.PortsOnly {
			t.Fatalf("no error, but Status %v ErrLayer %v PortsOnly %v", r.Status, r.ErrLayer, r.PortsOnly)
		}

		if r.CapLen != len(frame) || r.Length != max(int(wireLen), len(frame)) {
			t.Fatalf("CapLen %d Length %d for %d bytes, %d on the wire", r.CapLen, r.Length, len(frame), wireLen)
		}
		if r.PayloadLen < 0 || r.PayloadLen > r.IPPayloadLen || r.IPPayloadLen > r.Length {
			t.Fatalf("PayloadLen %d, IPPayloadLen %d, Length %d do not nest", r.PayloadLen, r.IPPayloadLen, r.Length)
		}
		if (r.Proto == ProtoUnknown && err == nil) || r.VLANs > maxVLANTags {
			t.Fatalf("Proto %v VLANs %d", r.Proto, r.VLANs)
		}
		if !r.Transport && (r.PayloadLen != 0 || (!r.PortsOnly && (r.Src.Port() != 0 || r.Dst.Port() != 0)) || r.TCPFlags != 0 || r.ICMPType != 0) {
			t.Fatalf("transport fields without a transport header: %+v", r)
		}
		if r.PortsOnly && (r.Transport || r.Status != StatusTruncated || !(r.ErrLayer == LayerTCP && r.Proto == ProtoTCP || r.ErrLayer == LayerUDP && r.Proto == ProtoUDP)) {
			t.Fatalf("PortsOnly in %+v", r)
		}
		if r.Transport && r.Proto != ProtoTCP && r.Proto != ProtoUDP && r.Proto != ProtoICMP && r.Proto != ProtoICMPv6 {
			t.Fatalf("Transport for %v", r.Proto)
		}
		if r.FragOffset != 0 && (!r.Fragment || r.Transport) {
			t.Fatalf("fragment at offset %d: Fragment %v Transport %v", r.FragOffset, r.Fragment, r.Transport)
		}
		if !r.Fragment && r.MoreFragments {
			t.Fatal("MoreFragments without Fragment")
		}
		switch r.IPVersion {
		case 0:
			if r.IPPayloadLen != 0 || r.TTL != 0 || r.Transport || (r.Proto != ProtoARP && (r.Src.IsValid() || r.Dst.IsValid())) {
				t.Fatalf("IP fields in a frame that is not IP: %+v", r)
			}
		case 4:
			if !r.Src.Addr().Is4() || !r.Dst.Addr().Is4() || r.EtherType != wire.EtherTypeIPv4 {
				t.Fatalf("IPv4 with %v > %v, EtherType %#x", r.Src, r.Dst, r.EtherType)
			}
		case 6:
			if !r.Src.Addr().Is6() || !r.Dst.Addr().Is6() || r.EtherType != wire.EtherTypeIPv6 {
				t.Fatalf("IPv6 with %v > %v, EtherType %#x", r.Src, r.Dst, r.EtherType)
			}
		default:
			t.Fatalf("IPVersion %d", r.IPVersion)
		}

		text := r.AppendLine(nil)
		if len(text) == 0 || text[len(text)-1] != '\n' {
			t.Fatalf("AppendLine: %q", text)
		}
		// A TextEncoder writes what AppendLine does over a stream: this
		// record, the same a nanosecond and a second later, one that
		// differs in each column the encoder caches, and this one again.
		var enc TextEncoder
		rt := r
		rt.Time = time.Unix(int64(wireLen)*7919, int64(wireLen)*15259)
		stream := []Record{rt, rt, rt, rt, rt, rt, rt, rt}
		stream[1].Time = rt.Time.Add(time.Nanosecond)
		stream[2].Time = rt.Time.Add(time.Second)
		stream[3].Length++
		stream[4].IPProto++
		stream[5].EtherType++
		stream[6].Src = netip.AddrPortFrom(rt.Src.Addr(), rt.Src.Port()+1)
		for i := range stream {
			if got, want := enc.Append(nil, &stream[i]), stream[i].AppendLine(nil); !bytes.Equal(got, want) {
				t.Fatalf("record %d of the stream: TextEncoder.Append %q, AppendLine %q", i, got, want)
			}
		}
		if js := r.AppendJSON(nil); !json.Valid(js) {
			t.Fatalf("AppendJSON: invalid JSON %s", js)
		}
		if r.Status != StatusOK && !bytes.Contains(text, []byte("[")) {
			t.Fatalf("AppendLine of a %v record has no mark: %q", r.Status, text)
		}
	})
}
