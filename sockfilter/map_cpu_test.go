package sockfilter

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []int
		err  string
	}{
		{"0\n", []int{0}, ""},
		{"0-3\n", []int{0, 1, 2, 3}, ""},
		{"0,2-3,7", []int{0, 2, 3, 7}, ""},
		{"5-5", []int{5}, ""},
		{"", nil, "empty CPU list"},
		{"3-1", nil, "runs backwards"},
		{"0-3,2", nil, "not in increasing order"},
		{"a", nil, `bad CPU number "a"`},
		{"-1", nil, `bad CPU number ""`},
		{"01", nil, `bad CPU number "01"`},
		{"0-99999", nil, `bad CPU number "99999"`},
		{"0,,1", nil, `bad CPU number ""`},
	} {
		got, err := parseCPUList(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseCPUList(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestPossibleCPUs(t *testing.T) {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		t.Skip(err)
	}
	n, err := PossibleCPUs()
	if err != nil {
		t.Fatal(err)
	}
	// The kernel numbers possible CPUs from 0 without gaps in practice.
	s := strings.TrimSpace(string(b))
	if last := s[strings.LastIndexAny(s, ",-")+1:]; strconv.Itoa(n-1) != last {
		t.Errorf("PossibleCPUs = %d for %q", n, s)
	}
}

// FuzzParseCPUList checks that parseCPUList never panics and returns
// CPUs in increasing order within bounds, and that a list printed back
// from them parses to the same CPUs.
func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0", "0-3\n", "0,2-3,7", "1-0", "8191", "0-8191", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := parseCPUList(s)
		if err != nil {
			return
		}
		parts := make([]string, len(cpus))
		for i, c := range cpus {
			if c < 0 || c >= maxCPUs || i > 0 && c <= cpus[i-1] {
				t.Fatalf("parseCPUList(%q) = %v", s, cpus)
			}
			parts[i] = strconv.Itoa(c)
		}
		again, err := parseCPUList(strings.Join(parts, ","))
		if err != nil || !slices.Equal(again, cpus) {
			t.Fatalf("round trip of %v: %v, %v", cpus, again, err)
		}
	})
}
