package sockfilter

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// mapCounter counts its runs in the array "counts" (through
// bpf_map_lookup_elem) and in the array "direct" (through a pointer to its
// value, LD_IMM64 BPF_PSEUDO_MAP_VALUE), and records each skb->len in the
// hash "lens" (bpf_map_update_elem with BPF_ANY, value 1). It returns
// skb->len.
var mapCounter = asm.Instructions{
	asm.Mov.Reg(asm.R6, asm.R1),
	skb.Len.Load(asm.R7, asm.R6),

	// counts[0] += 1
	asm.StoreImm(asm.R10, -4, 0, asm.Word),
	asm.LoadMapPtr(asm.R1, "counts"),
	asm.Mov.Reg(asm.R2, asm.R10),
	asm.Add.Imm(asm.R2, -4),
	asm.Call(asm.FnMapLookupElem),
	asm.JEq.Imm(asm.R0, 0, "direct"),
	asm.Mov.Imm(asm.R1, 1),
	asm.AtomicAdd.Mem(asm.R0, 0, asm.R1, asm.DWord),

	// direct[0] += 1, without a lookup
	asm.LoadMapValuePtr(asm.R0, "direct", 0).WithLabel("direct"),
	asm.Mov.Imm(asm.R1, 1),
	asm.AtomicAdd.Mem(asm.R0, 0, asm.R1, asm.DWord),

	// lens[skb->len] = 1
	asm.StoreMem(asm.R10, -8, asm.R7, asm.Word),
	asm.StoreImm(asm.R10, -16, 1, asm.DWord),
	asm.LoadMapPtr(asm.R1, "lens"),
	asm.Mov.Reg(asm.R2, asm.R10),
	asm.Add.Imm(asm.R2, -8),
	asm.Mov.Reg(asm.R3, asm.R10),
	asm.Add.Imm(asm.R3, -16),
	asm.Mov.Imm(asm.R4, 0), // BPF_ANY
	asm.Call(asm.FnMapUpdateElem),

	asm.Mov.Reg(asm.R0, asm.R7),
	asm.Exit(),
}

// ethHeaderLen is the length of an Ethernet header, which the kernel's
// test run takes off skb->len.
const ethHeaderLen = 14

// arpFrame returns an Ethernet frame of n bytes with EtherType ARP, which
// BPF_PROG_TEST_RUN takes at any length above the Ethernet header.
func arpFrame(n int) []byte {
	f := make([]byte, n)
	f[12], f[13] = 0x08, 0x06
	return f
}

func TestLoadWithMaps(t *testing.T) {
	testutil.RequirePrivileged(t)
	counts := newTestMap(t, MapSpec{Type: Array, Name: "counts", ValueSize: 8, MaxEntries: 1})
	direct := newTestMap(t, MapSpec{Type: Array, Name: "direct", ValueSize: 8, MaxEntries: 1})
	lens := newTestMap(t, MapSpec{Type: Hash, Name: "lens", KeySize: 4, ValueSize: 8, MaxEntries: 64})

	p := mustLoadMaps(t, mapCounter, map[string]*Map{"counts": counts, "direct": direct, "lens": lens, "unused": counts})
	// The kernel holds the maps now: closing ours changes nothing.
	const runs = 10
	for i := range runs {
		n := 20 + i
		ret, err := p.Test(arpFrame(n), packet.LinkEthernet)
		if err != nil {
			t.Fatal(err)
		}
		// Under test skb->len is the frame less its Ethernet header.
		if want := uint32(n - ethHeaderLen); ret != want {
			t.Errorf("run %d returned %d, want %d", i, ret, want)
		}
	}
	for _, m := range []*Map{counts, direct} {
		v, err := m.Lookup(ne32(0))
		if err != nil {
			t.Fatal(err)
		}
		if got := binary.NativeEndian.Uint64(v); got != runs {
			t.Errorf("map %s counted %d runs, want %d", m.Name(), got, runs)
		}
	}
	got := readAllSingle(t, lens)
	if len(got) != runs {
		t.Errorf("lens has %d keys, want %d: %v", len(got), runs, got)
	}
	for i := range runs {
		if got[uint32(20+i-ethHeaderLen)] != 1 {
			t.Errorf("lens lacks skb->len %d: %v", 20+i-ethHeaderLen, got)
		}
	}
	// The program as written keeps its map names.
	if s := p.Instructions().String(); !strings.Contains(s, "r1 = map[counts]") || !strings.Contains(s, "r0 = map[direct][0]+0") {
		t.Errorf("Instructions lost the map names:\n%s", s)
	}

	// Closing the maps leaves the program's working.
	counts.Close()
	if _, err := p.Test(arpFrame(30), packet.LinkEthernet); err != nil {
		t.Errorf("Test after closing a map: %v", err)
	}
}

func mustLoadMaps(t *testing.T, insns asm.Instructions, maps map[string]*Map) *Program {
	t.Helper()
	p, err := Load(insns, &LoadOptions{Maps: maps})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestLoadMapErrors(t *testing.T) {
	testutil.RequirePrivileged(t)
	counts := newTestMap(t, MapSpec{Type: Array, Name: "counts", ValueSize: 8, MaxEntries: 1})
	direct := newTestMap(t, MapSpec{Type: Array, Name: "direct", ValueSize: 8, MaxEntries: 1})
	lens := newTestMap(t, MapSpec{Type: Hash, Name: "lens", KeySize: 4, ValueSize: 8, MaxEntries: 64})
	closed := newTestMap(t, MapSpec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 64})
	closed.Close()

	notALoad := asm.Mov.Imm(asm.R0, 0)
	notALoad.Map = "counts"
	for _, tt := range []struct {
		name  string
		insns asm.Instructions
		maps  map[string]*Map
		want  []string
		is    error
	}{
		{"missing map", mapCounter, map[string]*Map{"counts": counts, "direct": direct},
			[]string{`the program uses map "lens", which LoadOptions.Maps does not give (it gives "counts", "direct")`, "instruction 15 (r1 = map[lens])"}, nil},
		{"no maps", mapCounter, nil, []string{`map "counts"`, "(it gives none)"}, nil},
		{"nil map", mapCounter, map[string]*Map{"counts": nil}, []string{`nil *Map as "counts"`}, nil},
		{"closed map", mapCounter, map[string]*Map{"counts": counts, "direct": direct, "lens": closed}, []string{"map closed"}, ErrClosed},
		{"not a map load", asm.Instructions{notALoad, asm.Exit()}, map[string]*Map{"counts": counts}, []string{`names map "counts" but is not a map load`}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(tt.insns, &LoadOptions{Maps: tt.maps})
			if err == nil {
				p.Close()
				t.Fatal("Load succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not match %v", err, tt.is)
			}
		})
	}
	// Without Load, the reference does not assemble.
	if _, err := mapCounter.Assemble(); !errors.Is(err, asm.ErrUnresolvedMap) {
		t.Errorf("Assemble: %v, want ErrUnresolvedMap", err)
	}
	// The kernel refuses a value pointer into a hash map, before the
	// verifier walks the program.
	prog := asm.Instructions{asm.LoadMapValuePtr(asm.R0, "lens", 0), asm.Mov.Imm(asm.R0, 0), asm.Exit()}
	_, err := Load(prog, &LoadOptions{Maps: map[string]*Map{"lens": lens}})
	var verr *VerifierError
	if !errors.As(err, &verr) || !strings.Contains(verr.Reason, "direct value access") {
		t.Errorf("Load of a value pointer into a hash: %v, want a VerifierError about direct value access", err)
	}
}

// TestLoadWithMapsText loads the program from asm text.
func TestLoadWithMapsText(t *testing.T) {
	testutil.RequirePrivileged(t)
	const src = `
	r6 = r1
	*(u32 *)(r10 -4) = 0
	r1 = map[hits]
	r2 = r10
	r2 += -4
	call bpf_map_lookup_elem#1
	if r0 == 0x0 goto out
	r1 = 5
	lock *(u64 *)(r0 +0) += r1
out:
	r0 = 0
	exit
`
	insns, err := asm.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	hits := newTestMap(t, MapSpec{Type: Array, ValueSize: 8, MaxEntries: 1})
	p := mustLoadMaps(t, insns, map[string]*Map{"hits": hits})
	for range 3 {
		if _, err := p.Test(arpFrame(20), packet.LinkEthernet); err != nil {
			t.Fatal(err)
		}
	}
	v, err := hits.Lookup(ne32(0))
	if err != nil || binary.NativeEndian.Uint64(v) != 15 {
		t.Errorf("hits = %x, %v; want 15", v, err)
	}
}
