//go:build !linux

package testutil

// Privileged reports false: purebpf's privileged operations need Linux.
func Privileged() bool { return false }
