//go:build linux

package tpacket

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The TPACKET_V3 ring's defaults (sockfilter's DefaultRingBlockSize and
// DefaultRingBlockCount). A ring of 32 blocks of 1 MiB holds about
// 170,000 small frames: on lo, a UDP datagram with 64 bytes of payload takes
// 192 bytes of ring (tpacket3_hdr, sockaddr_ll, alignment, 106 bytes of
// frame), so at a million datagrams a second a block fills in 5 ms and the
// ring rides out a reader stalled for 170 ms, 16 times what libpcap's 2 MiB
// default buffer does. The reader wakes once per block, not per frame: 200
// wakeups a second at that rate. Blocks of 1 MiB (order-8 allocations) are
// found contiguous more easily than the 4 MiB maximum, and many blocks
// waste less than few when a block timeout retires a block half full at
// low rates.
const (
	DefaultBlockSize  = 1 << 20
	DefaultBlockCount = 32
)

// The limits of a ring's shape.
//
// The kernel accepts blocks of any size below 2 GiB and as many of them as
// fit in 32-bit frame counts (packet_set_ring), and tries to allocate what
// it is asked for: a block up to 4 MiB (MAX_PAGE_ORDER) from the page
// allocator, a larger one with vzalloc page by page (alloc_one_pg_vec_page),
// all of it zeroed, unswappable and charged to no cgroup. A 2 GiB block
// took 5 s to set up; a ring of TiBs would exhaust the machine.
const (
	// MaxBlockSize bounds a block: 16 times the largest block the page
	// allocator hands out whole, and a sixteenth of a second to set up.
	// A larger block holds no larger frame that matters (lo's MTU is 64
	// KiB) and only delays the reader's wakeups.
	MaxBlockSize = 64 << 20
	// MaxBlockCount: the kernel numbers blocks in 16 bits
	// (tpacket_kbdq_core.kactive_blk_num).
	MaxBlockCount = math.MaxUint16
	// MemoryShare is the share of the machine's memory (MemTotal) a ring
	// may take: a quarter.
	MemoryShare = 4
	// max32BitRing bounds a ring on a 32-bit machine.
	max32BitRing = 256 << 20
)

// frameSize is tp_frame_size. A TPACKET_V3 ring packs frames of any length
// into its blocks, so the kernel only checks that it is aligned and holds a
// header; it needs no other meaning.
const frameSize = 1 << 11

// Geometry is a ring's shape, checked.
type Geometry struct {
	blockSize, blockCount int
	timeoutMS             uint32 // tp_retire_blk_tov; 0 lets the kernel choose
}

// Size returns the ring's size in bytes.
func (g Geometry) Size() int { return g.blockSize * g.blockCount }

// NewGeometry checks a ring's block size, block count and block timeout,
// as sockfilter.Config gives them, and fills in the defaults for zeros.
// memTotal is the machine's memory in bytes (MemTotal; see MemTotal); a
// ring may take up to a MemoryShare of it. Where the defaults alone would
// take more, the block count shrinks to fit.
func NewGeometry(blockSize, blockCount int, timeout time.Duration, memTotal uint64) (Geometry, error) {
	g := Geometry{blockSize: blockSize, blockCount: blockCount}
	if g.blockSize == 0 {
		g.blockSize = DefaultBlockSize
	}
	page := os.Getpagesize()
	switch {
	case g.blockSize < 0 || g.blockSize%page != 0:
		return g, fmt.Errorf("ring block size %d is not a multiple of the page size (%d bytes)", blockSize, page)
	case g.blockSize > MaxBlockSize:
		return g, fmt.Errorf("ring block size %d is more than the maximum of %d (%s)", blockSize, MaxBlockSize, sizeText(MaxBlockSize))
	case g.blockCount < 0 || g.blockCount > MaxBlockCount:
		return g, fmt.Errorf("ring block count %d is not between 1 and %d", blockCount, MaxBlockCount)
	case timeout < 0:
		return g, fmt.Errorf("ring block timeout %v is negative", timeout)
	}
	limit := memTotal / MemoryShare
	if strconv.IntSize == 32 {
		// The ring's address range is a Go heap object (see Mapping),
		// which a 32-bit address space has no room for past this.
		limit = min(limit, max32BitRing)
	}
	if g.blockCount == 0 {
		g.blockCount = DefaultBlockCount
		if fit := limit / uint64(g.blockSize); fit < uint64(g.blockCount) {
			g.blockCount = int(max(fit, 1))
		}
	}
	if size := uint64(g.blockSize) * uint64(g.blockCount); size > limit {
		why := fmt.Sprintf("a quarter of the machine's %s of memory", sizeText(memTotal))
		if limit < memTotal/MemoryShare {
			why = "the most a 32-bit address space has room for"
		}
		return g, fmt.Errorf("ring of %d blocks of %s (%s) is more than a ring may take, %s (%s): ask for fewer or smaller blocks (Config.RingBlockCount, Config.RingBlockSize)",
			g.blockCount, sizeText(uint64(g.blockSize)), sizeText(size), sizeText(limit), why)
	}
	// The kernel counts in milliseconds: round up, so that a timeout asked
	// for is never zero, which would mean the kernel's choice.
	ms := (timeout + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxUint32 {
		return g, fmt.Errorf("ring block timeout %v is too long", timeout)
	}
	g.timeoutMS = uint32(ms)
	return g, nil
}

// MemTotal returns the machine's memory in bytes, as sysinfo(2) gives it
// (MemTotal in /proc/meminfo).
func MemTotal() (uint64, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, os.NewSyscallError("sysinfo", err)
	}
	return uint64(si.Totalram) * uint64(si.Unit), nil
}

// sizeText writes n bytes in the largest binary unit that divides it, or
// with one decimal in GiB or MiB.
func sizeText(n uint64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift {
			if n%(1<<u.shift) == 0 {
				return fmt.Sprintf("%d %s", n>>u.shift, u.name)
			}
			return fmt.Sprintf("%.1f %s", float64(n)/float64(uint64(1)<<u.shift), u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
