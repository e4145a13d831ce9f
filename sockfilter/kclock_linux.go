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
	case ClockCoarse:
		return asm.FnKtimeGetCoarseNs
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
	case ClockCoarse:
		return unix.CLOCK_MONOTONIC_COARSE
	}
	return unix.CLOCK_MONOTONIC
}

// since says which Linux has c's helper.
func (c KernelClock) since() string {
	switch c {
	case ClockTAI:
		return "6.1"
	case ClockBoot:
		return "5.8"
	case ClockCoarse:
		return "5.11"
	}
	return "4.1"
}

var (
	clockMu   sync.Mutex
	clockHave = map[KernelClock]bool{}
)

// haveClock reports whether socket filters may call c's helper on this
// kernel: it loads a program that does, once. A failure for want of
// privileges is not cached.
func haveClock(c KernelClock) (bool, error) {
	clockMu.Lock()
	defer clockMu.Unlock()
	if ok, known := clockHave[c]; known {
		return ok, nil
	}
	p, err := Load(asm.Instructions{asm.Call(c.helper()), asm.Mov.Imm(asm.R0, 0), asm.Exit()}, nil)
	if err == nil {
		p.Close()
	} else if errors.Is(err, unix.EPERM) {
		return false, err
	}
	clockHave[c] = err == nil
	return err == nil, nil
}

// kernelClock returns the clock want names, or for 0 the first of
// fallbacks the kernel has.
func kernelClock(want KernelClock, fallbacks ...KernelClock) (KernelClock, error) {
	if want != 0 {
		if want < ClockTAI || want > ClockCoarse {
			return 0, fmt.Errorf("unknown clock %v", want)
		}
		fallbacks = []KernelClock{want}
	}
	for _, c := range fallbacks {
		ok, err := haveClock(c)
		if err != nil {
			return 0, err
		}
		if ok {
			return c, nil
		}
	}
	if want != 0 {
		return 0, fmt.Errorf("the kernel has no %v clock for socket filters (%s needs Linux %s)", want, want.helper(), want.since())
	}
	return 0, errors.New("no clock helper: the kernel refuses bpf_ktime_get_ns, which Linux 4.1 has")
}

// The clocks ListenRecords and ListenFlows take by default, best first.
var (
	preciseClocks = []KernelClock{ClockTAI, ClockBoot, ClockMonotonic}
	flowClocks    = []KernelClock{ClockCoarse, ClockTAI, ClockBoot, ClockMonotonic}
)

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
