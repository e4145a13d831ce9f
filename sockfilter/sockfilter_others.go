//go:build !linux

package sockfilter

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// This file lets a program that imports sockfilter compile on systems other
// than Linux, as mdlayher/packet's packet_others.go does: every function
// that needs the kernel returns errNotLinux, which matches
// errors.ErrUnsupported. The packages under sockfilter that need no kernel
// (packet, pcapfile, skb, pcapfilter, vm) work everywhere.

var errNotLinux = fmt.Errorf("%w: loading eBPF programs and opening packet sockets need Linux, not %s", errors.ErrUnsupported, runtime.GOOS)

// Program is an eBPF socket filter loaded into the kernel; on this system
// there is none.
type Program struct{}

// Load returns an error: programs load on Linux only.
func Load(insns asm.Instructions, opts *LoadOptions) (*Program, error) {
	return nil, fmt.Errorf("load program: %w", errNotLinux)
}

// FD returns -1.
func (p *Program) FD() int { return -1 }

// Close returns nil.
func (p *Program) Close() error { return nil }

// Instructions returns nil.
func (p *Program) Instructions() asm.Instructions { return nil }

// Name returns "".
func (p *Program) Name() string { return "" }

// VerifierLog returns "".
func (p *Program) VerifierLog() (log string, truncated bool) { return "", false }

// Info returns an error.
func (p *Program) Info() (ProgramInfo, error) {
	return ProgramInfo{}, fmt.Errorf("program info: %w", errNotLinux)
}

// Test returns an error.
func (p *Program) Test(frame []byte, link packet.LinkType) (uint32, error) {
	return 0, fmt.Errorf("test program: %w", errNotLinux)
}

// Conn is an AF_PACKET socket; on this system there is none.
type Conn struct{}

// Listen returns an error: packet sockets are Linux's.
func Listen(ifname string, prog *Program, cfg *Config) (*Conn, error) {
	return nil, fmt.Errorf("listen on interface %q: %w", ifname, errNotLinux)
}

// InterfaceLinkType returns an error.
func InterfaceLinkType(ifname string) (packet.LinkType, error) {
	return 0, fmt.Errorf("interface %q: %w", ifname, errNotLinux)
}

// Interface returns "".
func (c *Conn) Interface() string { return "" }

// Ifindex returns 0.
func (c *Conn) Ifindex() int { return 0 }

// LinkType returns 0.
func (c *Conn) LinkType() packet.LinkType { return 0 }

// Ring returns false and an error.
func (c *Conn) Ring() (bool, error) { return false, errNotLinux }

// Close returns nil.
func (c *Conn) Close() error { return nil }

// ReadFrame returns an error.
func (c *Conn) ReadFrame(buf []byte) (n int, info packet.Info, err error) {
	return 0, packet.Info{}, fmt.Errorf("read frame: %w", errNotLinux)
}

// ReadFrameContext returns an error.
func (c *Conn) ReadFrameContext(ctx context.Context, buf []byte) (n int, info packet.Info, err error) {
	return c.ReadFrame(buf)
}

// NextFrame returns an error.
func (c *Conn) NextFrame() (frame []byte, info packet.Info, err error) {
	return nil, packet.Info{}, fmt.Errorf("read frame: %w", errNotLinux)
}

// NextFrameContext returns an error.
func (c *Conn) NextFrameContext(ctx context.Context) (frame []byte, info packet.Info, err error) {
	return c.NextFrame()
}

// NextFrames returns an error.
func (c *Conn) NextFrames(frames [][]byte, infos []packet.Info) (int, error) {
	return 0, fmt.Errorf("read frame: %w", errNotLinux)
}

// SetReadDeadline returns an error.
func (c *Conn) SetReadDeadline(t time.Time) error {
	return fmt.Errorf("set read deadline: %w", errNotLinux)
}

// SetProgram returns an error.
func (c *Conn) SetProgram(prog *Program) error {
	return fmt.Errorf("set program: %w", errNotLinux)
}

// Detach returns an error.
func (c *Conn) Detach() error { return fmt.Errorf("detach program: %w", errNotLinux) }

// LockFilter returns an error.
func (c *Conn) LockFilter() error { return fmt.Errorf("lock filter: %w", errNotLinux) }

// Stats returns an error.
func (c *Conn) Stats() (Stats, error) { return Stats{}, fmt.Errorf("read statistics: %w", errNotLinux) }
