//go:build linux

package sys

import (
	"bufio"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestLayout checks every attribute struct against the member offsets the
// kernel's own BTF gives (testdata/layout.golden, see gen-layout.sh there).
func TestLayout(t *testing.T) {
	golden := readLayout(t, "testdata/layout.golden")
	types := map[string]reflect.Type{
		"ProgLoadAttr":       reflect.TypeFor[ProgLoadAttr](),
		"ProgTestRunAttr":    reflect.TypeFor[ProgTestRunAttr](),
		"ObjGetInfoByFDAttr": reflect.TypeFor[ObjGetInfoByFDAttr](),
		"ProgInfo":           reflect.TypeFor[ProgInfo](),
		"MapCreateAttr":      reflect.TypeFor[MapCreateAttr](),
		"MapElemAttr":        reflect.TypeFor[MapElemAttr](),
		"MapBatchAttr":       reflect.TypeFor[MapBatchAttr](),
		"ObjPinAttr":         reflect.TypeFor[ObjPinAttr](),
		"MapInfo":            reflect.TypeFor[MapInfo](),
	}
	// Go names that are not the C name with its underscores dropped.
	rename := map[string]string{"GPLCompatibleBits": "gpl_compatible"}
	for name, typ := range types {
		t.Run(name, func(t *testing.T) {
			want, ok := golden[name]
			if !ok {
				t.Fatalf("%s missing from layout.golden", name)
			}
			if got := typ.Size(); got != want.size {
				t.Errorf("size %d, kernel %d", got, want.size)
			}
			var got []member
			for f := range typ.Fields() {
				if f.Name == "_" {
					continue
				}
				c := rename[f.Name]
				if c == "" {
					c = f.Name
				}
				got = append(got, member{strings.ToLower(strings.ReplaceAll(c, "_", "")), f.Offset})
			}
			var kern []member
			for _, m := range want.members {
				kern = append(kern, member{strings.ReplaceAll(m.name, "_", ""), m.off})
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
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) != 2 {
			t.Fatalf("bad line %q", line)
		}
		if !strings.HasPrefix(line, "\t") {
			n, err := strconv.Atoi(strings.TrimPrefix(fields[1], "size="))
			if err != nil {
				t.Fatalf("bad line %q", line)
			}
			cur = fields[0]
			out[cur] = layout{size: uintptr(n)}
			continue
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		l := out[cur]
		l.members = append(l.members, member{fields[0], uintptr(n)})
		out[cur] = l
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
