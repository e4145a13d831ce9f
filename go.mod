module github.com/purebpf/purebpf

go 1.26.0

require (
	github.com/cilium/ebpf v0.22.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.49.0
)
