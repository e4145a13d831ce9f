package vm

import "github.com/purebpf/purebpf/asm"

// NewGeneral is New for a VM that runs every program in the general
// interpreter, for the tests that compare it with the filter form.
func NewGeneral(insns asm.Instructions, opts *Options) (*VM, error) {
	v, err := New(insns, opts)
	if err == nil {
		v.filter = nil
	}
	return v, err
}

// InFilterForm reports whether v runs socket buffers in the filter form.
func InFilterForm(v *VM) bool { return v.filter != nil }
