//go:build !linux

package sockfilter

import (
	"errors"
	"testing"
)

// TestNotLinux checks that on other systems the kernel's objects say they
// need Linux, in an error that matches errors.ErrUnsupported.
func TestNotLinux(t *testing.T) {
	if _, err := Load(nil, nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Load: %v", err)
	}
	if _, err := Listen("lo", &Program{}, nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Listen: %v", err)
	}
	if _, err := InterfaceLinkType("lo"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("InterfaceLinkType: %v", err)
	}
}
