//go:build linux

package tpacket

import (
	"strings"
	"testing"
)

func TestNewGeometry(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name                  string
		blockSize, blockCount int
		memTotal              uint64
		wantSize, wantCount   int
		err                   string
	}{
		{"defaults", 0, 0, 16 * gib, DefaultBlockSize, DefaultBlockCount, ""},
		{"defaults on a small machine", 0, 0, 64 << 20, DefaultBlockSize, 16, ""},
		{"defaults on a tiny machine", 0, 0, 1 << 20, DefaultBlockSize, 1, "ring of 1 blocks of 1 MiB (1 MiB) is more than a ring may take, 256 KiB (a quarter of the machine's 1 MiB of memory)"},
		{"a quarter", 1 << 20, 4096, 16 * gib, 1 << 20, 4096, ""},
		{"past a quarter", 1 << 20, 4097, 16 * gib, 0, 0, "ring of 4097 blocks of 1 MiB (4.0 GiB) is more than a ring may take, 4 GiB (a quarter of the machine's 16 GiB of memory): ask for fewer or smaller blocks (Config.RingBlockCount, Config.RingBlockSize)"},
		{"largest block", MaxBlockSize, 1, 16 * gib, MaxBlockSize, 1, ""},
		{"block too large", MaxBlockSize + 4096, 1, 16 * gib, 0, 0, "ring block size 67112960 is more than the maximum of 67108864 (64 MiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewGeometry(tt.blockSize, tt.blockCount, 0, tt.memTotal)
			switch {
			case tt.err != "":
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Errorf("error %v; want %q", err, tt.err)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case g.blockSize != tt.wantSize || g.blockCount != tt.wantCount:
				t.Errorf("%d blocks of %d; want %d of %d", g.blockCount, g.blockSize, tt.wantCount, tt.wantSize)
			}
		})
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[uint64]string{
		100: "100 bytes", 4096: "4 KiB", 1 << 20: "1 MiB", 3 << 29: "1.5 GiB", 1 << 40: "1 TiB", 1<<20 + 1: "1.0 MiB",
	} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q; want %q", n, got, want)
		}
	}
}
