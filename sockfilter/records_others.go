//go:build !linux

package sockfilter

import (
	"context"
	"fmt"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// This file is records_linux.go's and flows_linux.go's counterpart on
// other systems: the kernel builds records and flows on Linux only, so
// every function returns errNotLinux, which matches errors.ErrUnsupported.

// RecordConn is a capture in records; on this system there is none.
type RecordConn struct{}

// ListenRecords returns an error.
func ListenRecords(ifname string, filter asm.Instructions, cfg *RecordConfig) (*RecordConn, error) {
	return nil, fmt.Errorf("listen for records on interface %q: %w", ifname, errNotLinux)
}

// NextRecords returns an error.
func (c *RecordConn) NextRecords(recs []packet.Record, infos []packet.Info) (int, error) {
	return 0, fmt.Errorf("read records: %w", errNotLinux)
}

// NextRecordsContext returns an error.
func (c *RecordConn) NextRecordsContext(ctx context.Context, recs []packet.Record, infos []packet.Info) (int, error) {
	return 0, fmt.Errorf("read records: %w", errNotLinux)
}

// SetReadDeadline returns an error.
func (c *RecordConn) SetReadDeadline(t time.Time) error {
	return fmt.Errorf("set read deadline: %w", errNotLinux)
}

// Stats returns an error.
func (c *RecordConn) Stats() (RecordStats, error) {
	return RecordStats{}, fmt.Errorf("read statistics: %w", errNotLinux)
}

// Close returns nil.
func (c *RecordConn) Close() error { return nil }

// Interface returns "".
func (c *RecordConn) Interface() string { return "" }

// Ifindex returns 0.
func (c *RecordConn) Ifindex() int { return 0 }

// LinkType returns 0.
func (c *RecordConn) LinkType() packet.LinkType { return 0 }

// Clock returns 0.
func (c *RecordConn) Clock() KernelClock { return 0 }

// PerfBuffers returns false.
func (c *RecordConn) PerfBuffers() bool { return false }

// FlowConn is a flow table in the kernel; on this system there is none.
type FlowConn struct{}

// ListenFlows returns an error.
func ListenFlows(ifname string, filter asm.Instructions, cfg *FlowConfig) (*FlowConn, error) {
	return nil, fmt.Errorf("listen for flows on interface %q: %w", ifname, errNotLinux)
}

// ReadFlows returns an error.
func (c *FlowConn) ReadFlows(dst []flow.Flow) ([]flow.Flow, error) {
	return dst, fmt.Errorf("read flows: %w", errNotLinux)
}

// Flush returns an error.
func (c *FlowConn) Flush(dst []flow.Flow) ([]flow.Flow, error) {
	return dst, fmt.Errorf("flush flows: %w", errNotLinux)
}

// Table returns an error.
func (c *FlowConn) Table(dst []FlowEntry) ([]FlowEntry, error) {
	return dst, fmt.Errorf("read flow table: %w", errNotLinux)
}

// Stats returns an error.
func (c *FlowConn) Stats() (FlowStats, error) {
	return FlowStats{}, fmt.Errorf("read statistics: %w", errNotLinux)
}

// Close returns nil.
func (c *FlowConn) Close() error { return nil }

// Interface returns "".
func (c *FlowConn) Interface() string { return "" }

// Ifindex returns 0.
func (c *FlowConn) Ifindex() int { return 0 }

// LinkType returns 0.
func (c *FlowConn) LinkType() packet.LinkType { return 0 }

// Clock returns 0.
func (c *FlowConn) Clock() KernelClock { return 0 }

// Now returns time.Now().
func (c *FlowConn) Now() time.Time { return time.Now() }
