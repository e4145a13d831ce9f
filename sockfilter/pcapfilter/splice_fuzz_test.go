package pcapfilter

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// FuzzSplice compiles and splices each expression into every target of
// the differential test (each access mode, both starts, few registers
// and many): it checks that CompileSplice never panics, that its errors
// are one line saying "compile" or "splice", that what it returns keeps
// the contract of SpliceOptions (checkSpliced) and assembles in its
// program and, when the test is privileged on Linux, that the verifier
// loads that program. The seeds are the expression list and FuzzCompile's
// corpus.
func FuzzSplice(f *testing.F) {
	for _, expr := range testutil.Expressions(f) {
		f.Add(expr)
	}
	for _, expr := range readFuzzCorpus(f) {
		f.Add(expr)
	}
	layout, cast, kernel := kernelTargets()
	load := kernel && testutil.Privileged()
	targets := spliceTargets(layout, cast)
	f.Fuzz(func(t *testing.T, expr string) {
		for _, tg := range targets {
			code, err := CompileSplice(expr, tg.link, &tg.opts)
			if err != nil {
				msg := err.Error()
				if !utf8.ValidString(msg) || strings.ContainsAny(msg, "\n\r") ||
					!strings.HasPrefix(msg, "compile ") && !strings.HasPrefix(msg, "splice") {
					t.Fatalf("%s: CompileSplice(%q): error %q", tg.name, expr, msg)
				}
				var ce *Error
				if !errors.As(err, &ce) && !strings.HasPrefix(msg, "splice") {
					t.Fatalf("%s: CompileSplice(%q): %v is neither Compile's *Error nor the splice's", tg.name, expr, err)
				}
				if errors.Is(err, ErrLinkLayer) && tg.link != packet.LinkRawIP {
					t.Fatalf("%s: CompileSplice(%q): %v for a link-layer start", tg.name, expr, err)
				}
				continue
			}
			checkSpliced(t, code, tg.opts)
			prog := tg.wrap(code)
			if _, err := prog.Assemble(); err != nil {
				t.Fatalf("%s: CompileSplice(%q): the program does not assemble: %v\n%v", tg.name, expr, err, prog)
			}
			if load {
				if err := loadTarget(t, tg, prog); err != nil {
					t.Fatalf("%s: CompileSplice(%q): %v", tg.name, expr, err)
				}
			}
		}
	})
}

// FuzzSpliceProgram splices arbitrary programs, decoded from the fuzzer's
// bytes, in each access mode: Splice must refuse what it cannot splice
// with an error rather than panic, and what it returns must keep the
// contract of SpliceOptions. The seeds are programs of Compile.
func FuzzSpliceProgram(f *testing.F) {
	for _, expr := range []string{"tcp port 80", "len > 100", "ip[2:2] + tcp[0] > ip[3] * 2", "udp and ip[6] & 0x20 = 0", "", "ip6 and tcp[13] & 2 != 0"} {
		for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
			insns, err := Compile(expr, link)
			if err != nil {
				f.Fatal(err)
			}
			b, err := insns.Assemble()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, link == packet.LinkRawIP)
		}
	}
	targets := spliceTargets(exampleLayout, 1)
	f.Fuzz(func(t *testing.T, b []byte, raw bool) {
		insns, err := asm.Disassemble(b)
		if err != nil {
			return
		}
		link := packet.LinkEthernet
		if raw {
			link = packet.LinkRawIP
		}
		for _, tg := range targets {
			if tg.link != link {
				continue
			}
			code, err := Splice(insns, link, &tg.opts)
			if err != nil {
				if msg := err.Error(); !strings.HasPrefix(msg, "splice: ") || strings.ContainsAny(msg, "\n\r") {
					t.Fatalf("%s: error %q", tg.name, msg)
				}
				continue
			}
			checkSpliced(t, code, tg.opts)
		}
	})
}
