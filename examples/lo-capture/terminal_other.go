//go:build !linux

package main

import "io"

// terminal reports whether w is a terminal; lo-capture asks Linux only
// (TCGETS), and elsewhere takes every output for a pipe.
func terminal(w io.Writer) (bool, func() (rows, cols int)) { return false, nil }
