// Package bench compares sockfilter.ParseFrame with gopacket's
// DecodingLayerParser on the same frames. It is a module of its own so
// that gopacket stays out of purebpf's go.mod, and out of `go test ./...`
// run at the top of the repository. Run it with
//
//	cd internal/bench && go test -bench . -benchmem -count 5
package bench
