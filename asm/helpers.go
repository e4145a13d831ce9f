package asm

// HelperFunc is the number of a kernel helper function, the immediate of a
// helper call (enum bpf_func_id in include/uapi/linux/bpf.h). The kernel
// froze the list at bpf_cgrp_storage_delete (Linux 6.2); new kernel
// functions are kfuncs, called with CallKfunc. Which helpers a program may
// call depends on its type: socket filters get the base set
// (bpf_map_lookup_elem, bpf_get_prandom_u32, bpf_ktime_get_ns, ...) and
// bpf_skb_load_bytes, bpf_skb_load_bytes_relative, bpf_get_socket_cookie and
// bpf_get_socket_uid.
type HelperFunc int32

//go:generate go run ./internal/genhelpers -o helpers_gen.go $BPF_H

// String returns the kernel's name of fn, as the verifier log prints it in
// `call bpf_get_prandom_u32#7`, or "unknown" when fn is not a helper the
// kernel knows (the verifier prints `call unknown#9999`). FnUnspec, number
// 0, is named "bpf_unspec".
func (fn HelperFunc) String() string {
	if fn >= 0 && int(fn) < len(helperNames) {
		return helperNames[fn]
	}
	return "unknown"
}

// helperByName maps kernel names to numbers, for Parse.
var helperByName = func() map[string]HelperFunc {
	m := make(map[string]HelperFunc, len(helperNames))
	for i, n := range helperNames {
		m[n] = HelperFunc(i)
	}
	return m
}()
