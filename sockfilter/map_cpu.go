package sockfilter

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// PossibleCPUs returns the number of CPUs the kernel may ever bring
// online, the count in /sys/devices/system/cpu/possible
// (num_possible_cpus): how many values a per-CPU map holds under each key.
func PossibleCPUs() (int, error) { return possibleCPUs() }

var possibleCPUs = sync.OnceValues(func() (int, error) {
	cpus, err := readCPUList("/sys/devices/system/cpu/possible")
	return len(cpus), err
})

// readCPUList reads a CPU list file of sysfs.
func readCPUList(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CPU list: %w", err)
	}
	cpus, err := parseCPUList(string(b))
	if err != nil {
		return nil, fmt.Errorf("read CPU list %s: %w", path, err)
	}
	return cpus, nil
}

// maxCPUs bounds the CPUs a list may name (the kernel's NR_CPUS is at most
// 8192).
const maxCPUs = 1 << 13

// parseCPUList parses a CPU list as sysfs prints it (cpulist_parse in
// lib/bitmap.c, without strides): comma-separated CPU numbers and ranges
// such as "0-3,8,10-11", ending with a newline. It returns the CPUs in
// increasing order.
func parseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty CPU list")
	}
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := parseCPU(lo)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = parseCPU(hi); err != nil {
				return nil, err
			}
		}
		switch {
		case last < first:
			return nil, fmt.Errorf("CPU range %q runs backwards", part)
		case len(cpus) > 0 && first <= cpus[len(cpus)-1]:
			return nil, fmt.Errorf("CPU list %q is not in increasing order", s)
		}
		for c := first; c <= last; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

func parseCPU(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= maxCPUs || s != strconv.Itoa(n) {
		return 0, fmt.Errorf("bad CPU number %q", s)
	}
	return n, nil
}
