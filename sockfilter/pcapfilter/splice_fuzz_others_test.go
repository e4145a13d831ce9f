//go:build !linux

package pcapfilter

import (
	"testing"

	"github.com/purebpf/purebpf/asm"
)

// loadTarget loads nothing: there is no kernel to load into.
func loadTarget(t testing.TB, tg spliceTarget, prog asm.Instructions) error { return nil }
