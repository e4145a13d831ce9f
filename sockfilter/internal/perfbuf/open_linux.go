//go:build linux

package perfbuf

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Buffer is a PERF_COUNT_SW_BPF_OUTPUT event on one CPU with its ring
// mapped: what a perf event array's entry for that CPU must hold.
type Buffer struct {
	FD   int // the event's fd, close-on-exec
	CPU  int
	Ring *Ring
	mem  unsafe.Pointer
	len  uintptr
}

// Open opens a BPF output event on cpu (perf_event_open(2) with pid -1:
// every task on that CPU), maps its ring of pages data pages (a power of
// two) and enables it. With watermark 0 the kernel wakes a reader polling
// the fd for every record (wakeup_events 1), else once watermark bytes
// are waiting.
func Open(cpu, pages, watermark int) (*Buffer, error) {
	if pages <= 0 || pages&(pages-1) != 0 {
		return nil, fmt.Errorf("perf buffer of %d pages: it must be a power of two", pages)
	}
	attr := unix.PerfEventAttr{
		Type:        unix.PERF_TYPE_SOFTWARE,
		Config:      unix.PERF_COUNT_SW_BPF_OUTPUT,
		Size:        uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Sample_type: unix.PERF_SAMPLE_RAW,
		Wakeup:      1,
	}
	if watermark > 0 {
		attr.Bits |= unix.PerfBitWatermark
		attr.Wakeup = uint32(watermark)
	}
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		err = os.NewSyscallError("perf_event_open", err)
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("open perf event on CPU %d: needs CAP_PERFMON (or CAP_SYS_ADMIN), or sysctl kernel.perf_event_paranoid of 0 or less: %w", cpu, err)
		}
		return nil, fmt.Errorf("open perf event on CPU %d: %w", cpu, err)
	}
	page := uintptr(os.Getpagesize())
	b := &Buffer{FD: fd, CPU: cpu, len: page * uintptr(1+pages)}
	b.mem, err = unix.MmapPtr(fd, 0, nil, b.len, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("map perf buffer of CPU %d: %w", cpu, os.NewSyscallError("mmap", err))
	}
	meta := (*unix.PerfEventMmapPage)(b.mem)
	off, size := uintptr(meta.Data_offset), uintptr(meta.Data_size)
	if size == 0 { // before Linux 4.1: the data follow the first page
		off, size = page, page*uintptr(pages)
	}
	data := unsafe.Slice((*byte)(unsafe.Add(b.mem, off)), size)
	if b.Ring, err = New(&meta.Data_head, &meta.Data_tail, data); err != nil {
		b.Close()
		return nil, err
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
		b.Close()
		return nil, fmt.Errorf("enable perf event on CPU %d: %w", cpu, os.NewSyscallError("ioctl PERF_EVENT_IOC_ENABLE", err))
	}
	return b, nil
}

// Close unmaps the ring and closes the event. Records the Ring copied out
// stay readable.
func (b *Buffer) Close() {
	if b.mem != nil {
		unix.MunmapPtr(b.mem, b.len)
		b.mem = nil
	}
	if b.FD >= 0 {
		unix.Close(b.FD)
		b.FD = -1
	}
}
