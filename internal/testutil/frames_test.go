package testutil

import (
	"fmt"
	"testing"
)

func TestDecodeHexFrame(t *testing.T) {
	got, err := DecodeHexFrame("# comment\n0a0b 0c # ethernet\n\n0d\n")
	if err != nil || fmt.Sprintf("%x", got) != "0a0b0c0d" {
		t.Fatalf("DecodeHexFrame = %x, %v; want 0a0b0c0d, nil", got, err)
	}
	if _, err := DecodeHexFrame("0a0"); err == nil {
		t.Fatal("DecodeHexFrame accepted an odd number of digits")
	}
}

func TestFrames(t *testing.T) {
	frames := Frames(t)
	if len(frames) < 20 {
		t.Fatalf("%d frames in testdata/frames, want at least 20", len(frames))
	}
	raw := NamedFrame(t, "raw_udp4")
	if raw.Link != LinkRawIP || raw.Data[0]>>4 != 4 {
		t.Errorf("raw_udp4: link %d, first byte %#x", raw.Link, raw.Data[0])
	}
	eth := NamedFrame(t, "tcp4")
	if eth.Link != LinkEthernet || len(eth.Data) != 74 {
		t.Errorf("tcp4: link %d, %d bytes; want Ethernet, 74", eth.Link, len(eth.Data))
	}
	for name, link := range map[string]uint16{"sll_tcp4": LinkLinuxSLL, "sll2_udp6": LinkLinuxSLL2} {
		if f := NamedFrame(t, name); f.Link != link || f.Truncated() {
			t.Errorf("%s: link %d, truncated %v; want %d, whole", name, f.Link, f.Truncated(), link)
		}
	}
	if f := NamedFrame(t, "trunc_tcp4_opts"); !f.Truncated() || len(f.Data) != 60 || f.Length != 74 {
		t.Errorf("trunc_tcp4_opts: %d of %d bytes, want 60 of 74", len(f.Data), f.Length)
	}
	if len(Expressions(t)) < 100 {
		t.Error("fewer than 100 expressions in testdata/expressions.txt")
	}
}
