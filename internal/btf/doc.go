// Package btf reads the BPF Type Format (BTF), the compact type
// information the kernel publishes about itself in /sys/kernel/btf/vmlinux
// (Documentation/bpf/btf.rst): enough of it to find a struct's members
// and their byte offsets, as a program that reads kernel memory with
// bpf_probe_read_kernel needs, and the type id of a kernel function, as a
// kfunc call needs. It parses the whole format — the header, the type
// section with every kind up to BTF_KIND_ENUM64 (Linux 6.0) and the string
// section — in either byte order, and checks every offset and type
// reference, so that any input either parses or gives an error. It does
// not read split BTF (kernel modules), relocations or the .BTF.ext
// section.
//
// It needs no kernel and builds on every GOOS; LoadKernel reads the
// running kernel's BTF (CONFIG_DEBUG_INFO_BTF, Linux 5.4).
package btf
