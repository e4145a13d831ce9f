// Package vm runs eBPF socket filters in pure Go, as the kernel runs them:
// on frames read from a capture file, in unit tests and in CI, with no
// privileges and on any operating system.
//
// New prepares a program (asm.Instructions); a *VM then runs it as many
// times as wanted, from as many goroutines as wanted, allocating nothing:
//
//   - RunFrame runs it on a frame as a live SOCK_RAW packet socket does
//     (packet(7)): skb->data at the link-layer header, skb->len the whole
//     frame, skb->protocol from the EtherType;
//   - RunFrameInfo adds what the kernel knows besides the bytes, a
//     packet.Info: the interface index, the direction (skb->pkt_type), the
//     VLAN tag the device removed, the length on the wire;
//   - RunTest runs it as BPF_PROG_TEST_RUN does, which is what
//     (*sockfilter.Program).Test returns: skb->data at the network header
//     and skb->len 14 bytes shorter, skb->pkt_type as the loopback device
//     sees the destination address, the test run's socket in skb->sk;
//   - RunMemory runs it with r1 pointing at a copy of some memory and r2
//     holding its length, the convention of uBPF and of the public
//     conformance suites.
//
// # Unit-testing a filter
//
// A filter written by hand, or compiled by pcapfilter, is tested like any
// Go code:
//
//	func TestDNSFilter(t *testing.T) {
//		v, err := vm.New(dnsFilter(), nil)
//		if err != nil {
//			t.Fatal(err)
//		}
//		for _, tc := range []struct {
//			frame []byte
//			keep  bool
//		}{
//			{dnsQuery, true},
//			{ntpRequest, false},
//		} {
//			n, err := v.RunFrame(tc.frame, packet.LinkEthernet)
//			if err != nil {
//				t.Fatal(err)
//			}
//			if (n != 0) != tc.keep {
//				t.Errorf("frame % x: the filter returns %d", tc.frame, n)
//			}
//		}
//	}
//
// The package's Example runs such a table.
//
// # The instruction set
//
// The VM runs every instruction asm can encode: RFC 9669's groups (base32
// and base64, divmul32 and divmul64 with signed division and modulo,
// atomic32 and atomic64 with the fetch variants, xchg and cmpxchg, the
// legacy packet loads) and callx, and the kernel's extensions: sign-extending
// moves and loads, bswap, JMP32, gotol, may_goto, LD_IMM64 of constants,
// maps (see Helpers) and subprograms, load-acquire and store-release,
// BPF-to-BPF calls. Results are the kernel's: division by zero gives 0,
// modulo by zero leaves the dividend (its low 32 bits zero-extended on 32
// bits), INT_MIN / -1 is INT_MIN and INT_MIN % -1 is 0, every 32-bit
// result is zero-extended, shifts by a register use the count's low 5 or 6
// bits. Memory is little-endian, as on the machines purebpf runs on.
//
// New refuses, with an *asm.InstructionError naming the instruction, what
// makes no sense before the program runs: undefined opcodes, non-zero
// reserved fields, jumps outside the program or its subprogram, paths
// that run off the end, writes to r10, calls of helpers it does not know,
// accesses at constant offsets from r10 outside the 512-byte stack. By
// default it follows RFC 9669 where the RFC defines what the kernel
// refuses (a shift by an immediate out of range masks the count, callx
// calls the helper whose number is in its register, division by an
// immediate 0 has its defined result) and wants unused fields zero;
// Options.Kernel applies the kernel's rules instead. New does not verify
// the program as the kernel's verifier does: every memory access and every
// call is checked when it runs, and a bad one ends the run with an *Error
// naming the instruction — never a panic, never an access outside the
// memory the VM gives the program.
//
// # Memory
//
// A program addresses its stack (512 bytes a frame, eight frames deep,
// zeroed when a frame starts), its context (struct __sk_buff: the fields a
// socket filter may read, with the narrow loads the kernel allows and their
// results, and the control block cb[], which it may write), the socket the
// test run gives skb->sk (struct bpf_sock), RunMemory's input, and memory
// a helper exposes (Env.Expose), the values of maps and the ring buffer
// records the run holds. Pointers are 64-bit values with the region in
// their upper half.
//
// # The socket buffer
//
// The legacy loads (asm.LoadAbs, asm.LoadInd, skb.LoadLink, skb.LoadNet)
// read relative to skb->data, or to the link-layer header at SKF_LL_OFF
// and the network header at SKF_NET_OFF, in network byte order; a load
// past the end of the frame ends the program returning 0, as in the
// kernel (there it returns from a subprogram; here it ends the run). The
// fields of struct __sk_buff come from the frame and the packet.Info:
// len, pkt_type, protocol, vlan_present, vlan_tci, vlan_proto,
// ingress_ifindex, ifindex; mark, queue_mapping, priority, tc_index,
// hash, napi_id, gso_segs and gso_size are 0, as for most frames on lo,
// for the VM cannot know them; skb->sk is NULL on a packet socket, the
// test run's socket (AF_INET or AF_INET6, the IP header's addresses,
// TCP_CLOSE) under RunTest.
//
// # Helpers
//
// The VM has the helpers of a socket filter that make sense without a
// kernel: bpf_skb_load_bytes, bpf_skb_load_bytes_relative,
// bpf_get_prandom_u32 (Options.Rand), bpf_ktime_get_ns, _boot_ns,
// _coarse_ns and _tai_ns (Options.Clock), bpf_get_socket_cookie (0 on a
// packet socket, a number of the VM's under RunTest),
// bpf_get_socket_uid (65534, overflowuid, on a packet socket; 0 under
// RunTest), bpf_get_smp_processor_id (Options.CPU) and
// bpf_get_numa_node_id (0), bpf_trace_printk, which writes to
// Options.Trace, and the map helpers (see Maps). Options.Helpers adds
// others, or replaces these: a Helper gets the run's Env to read and write
// the program's memory and to expose memory of its own; LD_IMM64 of a map
// fd gives a handle Env.Object decodes, of a named map one Env.Map does.
// Calls of the kernel's other helpers, of helpers socket filters may not
// call, and of kfuncs are refused by New.
//
// # Maps
//
// NewMap makes an array, a hash map, an LRU hash map, their per-CPU
// kinds or a ring buffer in the caller's memory, and Options.Maps gives
// them to a program by the names it uses (asm.LoadMapPtr, `r1 =
// map[name]`), as sockfilter.LoadOptions.Maps does for the kernel. The
// program runs bpf_map_lookup_elem, which returns a pointer to the value
// in the map, which it reads and writes in place (atomically with the
// atomic instructions), bpf_map_update_elem with BPF_ANY, BPF_NOEXIST and
// BPF_EXIST and the kernel's errors (-EEXIST, -ENOENT, -E2BIG, -EINVAL
// negated in r0), bpf_map_delete_elem, and bpf_ringbuf_output, _reserve,
// _submit, _discard and _query, whose records the caller reads back with
// Map.NextRecord; `r1 = map[name][0]+off` is the address of an array's
// single value. The caller reads and writes the maps as user space does
// (Lookup, Update, Delete, NextKey, All), before, between and during runs.
//
// A program sees its CPU's value of a per-CPU map (Options.CPU, of
// MapSpec.CPUs); an LRU map evicts as the kernel's does on that CPU,
// batch by batch (see MapSpec.CPUs for the sizes), sparing what programs
// looked up. Every address a helper returns is checked on use as any
// memory of the program: a value's bytes and no more, a ring buffer
// record only while the run holds it reserved. A run that ends holding a
// record, which the verifier would refuse, fails, and the VM discards the
// record. The package's tests run the same programs on the same maps in
// the kernel, on CPU 0, and compare r0 and the maps afterwards.
//
// # Budget
//
// A run executes at most Options.Budget instructions (DefaultBudget
// unless set): a program that loops forever ends with ErrBudget. may_goto
// falls through 8M times a frame (BPF_MAX_LOOPS, as the kernel's
// interpreter; its x86-64 JIT bounds such loops by time instead).
//
// # Speed
//
// New translates a program twice: into a general form, which runs
// everything, and, when the program keeps to what compiled filters do
// (straight code and forward jumps over legacy loads, context fields,
// registers, a few stack slots and the helpers that need no memory), into
// a filter form that runs socket buffers with every check New could make
// made once, both successors of a test resolved, the commonest sequences
// fused into one instruction (a load, a mask and a test; a test whose
// both successors return, which it computes without a branch; libpcap's
// ldxms; two tests of one value), dead moves gone, and no Env. Every
// expression of the compiler's test list runs in the filter form; on the
// package's frame corpus it runs them some 2.2 times as fast as
// golang.org/x/net/bpf's VM runs libpcap's programs for them, measured
// with
//
//	go test ./sockfilter/vm -run '^$' -bench 'Expressions/interleaved' -benchtime 3s
//
// # Checks
//
// The package's tests compare the VM with the kernel on every expression
// of the compiler's test list and on thousands of random programs
// (RunTest against Program.Test, as root), the filter form with the
// general one on the same, and the maps with the kernel's (the same
// programs, r0 and contents); the compiler's verdicts in RunFrame with
// libpcap's program in x/net/bpf's VM, without privileges; and they run
// the public bpf_conformance suite (set PUREBPF_CONFORMANCE_DIR to its
// tests directory): the VM passes its 313 programs, and under
// Options.Kernel the 300 the kernel can run.
package vm
