//go:build linux

package tpacket

import (
	"bufio"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestLayout checks the Go mirrors of the ring's structs against the member
// offsets and sizes the kernel's BTF gives (testdata/layout.golden; see
// testdata/gen-layout.sh there).
func TestLayout(t *testing.T) {
	golden := readLayout(t, "testdata/layout.golden")
	types := map[string]reflect.Type{
		"tpacket3_hdr":         reflect.TypeFor[frameHeader](),
		"tpacket_hdr_variant1": reflect.TypeFor[frameVariant1](),
		"tpacket_block_desc":   reflect.TypeFor[blockDesc](),
		"tpacket_hdr_v1":       reflect.TypeFor[blockHeaderV1](),
		"tpacket_bd_ts":        reflect.TypeFor[blockTimestamp](),
		"sockaddr_ll":          reflect.TypeFor[sockaddrLL](),
	}
	if len(golden) != len(types) {
		t.Errorf("layout.golden has %d structs; the test knows %d", len(golden), len(types))
	}
	for cname, typ := range types {
		t.Run(cname, func(t *testing.T) {
			want, ok := golden[cname]
			if !ok {
				t.Fatalf("%s missing from layout.golden", cname)
			}
			if got := typ.Size(); got != want.size {
				t.Errorf("size %d, kernel %d", got, want.size)
			}
			var got []member
			for f := range typ.Fields() {
				if f.Name != "_" {
					got = append(got, member{strings.ToLower(f.Name), f.Offset})
				}
			}
			var kern []member
			for _, m := range want.members {
				name := strings.TrimPrefix(strings.TrimPrefix(m.name, "tp_"), "sll_")
				kern = append(kern, member{strings.ReplaceAll(name, "_", ""), m.off})
			}
			if !reflect.DeepEqual(got, kern) {
				t.Errorf("members differ\n got: %v\nkern: %v", got, kern)
			}
		})
	}
}

type member struct {
	name string
	off  uintptr
}

type layout struct {
	size    uintptr
	members []member
}

func readLayout(t *testing.T, path string) map[string]layout {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]layout{}
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			t.Fatalf("bad line %q", sc.Text())
		}
		if !strings.HasPrefix(sc.Text(), "\t") {
			size, err := strconv.ParseUint(strings.TrimPrefix(fields[1], "size="), 10, 64)
			if err != nil {
				t.Fatalf("bad line %q: %v", sc.Text(), err)
			}
			cur = fields[0]
			out[cur] = layout{size: uintptr(size)}
			continue
		}
		off, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil || cur == "" {
			t.Fatalf("bad line %q", sc.Text())
		}
		l := out[cur]
		l.members = append(l.members, member{fields[0], uintptr(off)})
		out[cur] = l
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
