package sockfilter

// DefaultPerfBufferSize is the size of each CPU's buffer unless
// PerfReaderOptions says otherwise.
const DefaultPerfBufferSize = 64 << 10

// PerfReaderOptions tunes NewPerfReader. The zero value, like a nil
// *PerfReaderOptions, gives buffers of DefaultPerfBufferSize bytes and a
// wake-up for every record.
type PerfReaderOptions struct {
	// BufferSize is the size in bytes of each CPU's buffer, rounded up to
	// a power-of-two number of pages; 0 means DefaultPerfBufferSize. A
	// record that does not fit when written is lost and counted (Lost).
	BufferSize int
	// Watermark is how many bytes a CPU's buffer holds before the kernel
	// wakes a sleeping reader; 0 wakes it for every record. With a
	// watermark a reader that has caught up may sleep with records
	// waiting below it: read with a deadline.
	Watermark int
}

// PerfRecord is a record a program wrote with bpf_perf_event_output.
type PerfRecord struct {
	// CPU is the CPU whose buffer held the record: the one the program
	// ran on, with BPF_F_CURRENT_CPU.
	CPU int
	// Data is what the program wrote, followed by up to 7 zero bytes: the
	// kernel pads a record to 8 bytes, and keeps no other length; a
	// program that needs its records' lengths writes them in. It is in a
	// buffer the reader owns, valid until the next read.
	Data []byte
}
