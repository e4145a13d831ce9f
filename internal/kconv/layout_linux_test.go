package kconv

import (
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/internal/btf"
)

// TestLayoutMatchesBTF checks Linux618AMD64 against the running kernel's
// BTF when it is a 6.18 kernel on x86-64: each offset is the member's in
// struct sk_buff or struct net_device.
func TestLayoutMatchesBTF(t *testing.T) {
	spec, err := btf.LoadKernel()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	got, err := LayoutFromBTF(spec)
	if err != nil {
		t.Fatal(err)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	if rel := unix.ByteSliceToString(u.Release[:]); !strings.HasPrefix(rel, "6.18.") || runtime.GOARCH != "amd64" {
		t.Skipf("Linux %s on %s: Linux618AMD64 is 6.18's on amd64; its own layout is %+v", rel, runtime.GOARCH, got)
	}
	if got != Linux618AMD64 {
		t.Errorf("the running kernel's layout is\n%+v\nLinux618AMD64 is\n%+v", got, Linux618AMD64)
	}
}
