package sockfilter

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/internal/kparse"
)

// helper returns the BPF helper that reads the clock.
func (c KernelClock) helper() asm.HelperFunc {
	switch c {
	case ClockTAI:
		return asm.FnKtimeGetTaiNs
	case ClockBoot:
		return asm.FnKtimeGetBootNs
	}
	return asm.FnKtimeGetNs
}

// clockid returns the clock_gettime(2) clock of c.
func (c KernelClock) clockid() int32 {
	switch c {
	case ClockTAI:
		return unix.CLOCK_TAI
	case ClockBoot:
		return unix.CLOCK_BOOTTIME
	}
	return unix.CLOCK_MONOTONIC
}

var (
	clockMu    sync.Mutex
	clockFound KernelClock
)

// kernelClock returns the best clock socket filters may read on this
// kernel: it loads a program calling each helper in turn until the
// verifier takes one. A failure for want of privileges is not cached.
func kernelClock() (KernelClock, error) {
	clockMu.Lock()
	defer clockMu.Unlock()
	if clockFound != 0 {
		return clockFound, nil
	}
	for _, c := range []KernelClock{ClockTAI, ClockBoot, ClockMonotonic} {
		p, err := Load(asm.Instructions{asm.Call(c.helper()), asm.Mov.Imm(asm.R0, 0), asm.Exit()}, nil)
		if err == nil {
			p.Close()
			clockFound = c
			return c, nil
		}
		if errors.Is(err, unix.EPERM) {
			return 0, err
		}
	}
	return 0, errors.New("no clock helper: the kernel refuses bpf_ktime_get_ns, which Linux 4.1 has")
}

// clockOffset returns the conversion of c's stamps to wall-clock time.
// CLOCK_TAI is CLOCK_REALTIME plus the kernel's TAI offset (adjtimex(2),
// a whole number of seconds, 0 unless a time daemon set it), so the
// conversion is exact. The others are converted by the offset between
// them and CLOCK_REALTIME as read now: exact until the wall clock is set
// or slewed.
func clockOffset(c KernelClock) (kparse.Clock, error) {
	if c == ClockTAI {
		var tx unix.Timex
		if _, err := unix.Adjtimex(&tx); err != nil {
			return kparse.Clock{}, fmt.Errorf("read the TAI offset: %w", os.NewSyscallError("adjtimex", err))
		}
		return kparse.Clock{Offset: -int64(tx.Tai) * 1e9}, nil
	}
	var r1, k, r2 unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r1); err != nil {
		return kparse.Clock{}, os.NewSyscallError("clock_gettime", err)
	}
	if err := unix.ClockGettime(c.clockid(), &k); err != nil {
		return kparse.Clock{}, os.NewSyscallError("clock_gettime", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r2); err != nil {
		return kparse.Clock{}, os.NewSyscallError("clock_gettime", err)
	}
	return kparse.Clock{Offset: (r1.Nano()+r2.Nano())/2 - k.Nano()}, nil
}
