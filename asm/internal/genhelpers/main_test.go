package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         []Helper
	}{
		{"with numbers (6.1+)", "#define ___BPF_FUNC_MAPPER(FN, ctx...)\t\\\n\tFN(unspec, 0, ##ctx)\t\\\n\tFN(map_lookup_elem, 1, ##ctx)\t\\\n\tFN(get_socket_uid, 2, ##ctx)\n\n/* after */\n",
			[]Helper{{"unspec", 0}, {"map_lookup_elem", 1}, {"get_socket_uid", 2}}},
		{"by position", "#define __BPF_FUNC_MAPPER(FN)\t\\\n\tFN(unspec),\t\\\n\tFN(xdp_adjust_head),\n",
			[]Helper{{"unspec", 0}, {"xdp_adjust_head", 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.header))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("%d: %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
	if _, err := Parse(strings.NewReader("#define ___BPF_FUNC_MAPPER(FN, ctx...)\t\\\n\tFN(unspec, 0, ##ctx)\t\\\n\tFN(two, 2, ##ctx)\n")); err == nil {
		t.Error("a gap in the numbers: no error")
	}
	if _, err := Parse(strings.NewReader("int x;\n")); err == nil {
		t.Error("no list: no error")
	}
}

func TestGoName(t *testing.T) {
	for c, want := range map[string]string{
		"map_lookup_elem": "FnMapLookupElem", "get_current_uid_gid": "FnGetCurrentUIDGid",
		"xdp_adjust_head": "FnXDPAdjustHead", "skc_to_tcp6_sock": "FnSkcToTCP6Sock",
		"tcp_raw_gen_syncookie_ipv4": "FnTCPRawGenSyncookieIPv4", "get_numa_node_id": "FnGetNumaNodeID",
	} {
		if got := GoName(c); got != want {
			t.Errorf("GoName(%q) = %q, want %q", c, got, want)
		}
	}
}

// TestSystemHeader checks the committed table against the system's
// bpf.h, where there is one: every helper the header lists must be in the
// table with the same number. (The system's header may be older than the
// table's kernel; it cannot be newer, as the list is frozen.)
func TestSystemHeader(t *testing.T) {
	f, err := os.Open("/usr/include/linux/bpf.h")
	if err != nil {
		t.Skipf("no system bpf.h to compare with: %v", err)
	}
	defer f.Close()
	sys, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := os.ReadFile("../../helpers_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range sys {
		line := "\t" + GoName(h.Name) + " "
		i := strings.Index(string(gen), line)
		if i < 0 {
			t.Errorf("%s (bpf_%s) is not in helpers_gen.go", GoName(h.Name), h.Name)
			continue
		}
		rest, _, _ := strings.Cut(string(gen[i+len(line):]), "\n")
		if !strings.Contains(rest, "= "+strconv.Itoa(h.ID)+" ") {
			t.Errorf("%s: %q, want number %d", GoName(h.Name), rest, h.ID)
		}
	}
}
