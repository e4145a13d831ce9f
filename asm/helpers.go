package asm

// HelperFunc is the number of a kernel helper function (enum bpf_func_id in
// include/uapi/linux/bpf.h), the immediate of a helper call.
type HelperFunc int32

// Some helper functions; the whole table is generated from the kernel's
// list.
const (
	FnMapLookupElem     HelperFunc = 1
	FnGetPrandomU32     HelperFunc = 7
	FnSkbLoadBytes      HelperFunc = 26
	FnSkbLoadBytesRel   HelperFunc = 68
	FnKtimeGetNs        HelperFunc = 5
	FnTracePrintk       HelperFunc = 6
	FnGetSmpProcessorID HelperFunc = 8
)
