package btf

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestKernelBTFMatchesBpftool parses the running kernel's BTF and prints
// every type as `bpftool btf dump file /sys/kernel/btf/vmlinux format raw`
// does: the two must agree line for line (for vmlinux, some 300,000
// lines, every struct member's bit offset among them).
func TestKernelBTFMatchesBpftool(t *testing.T) {
	if _, err := os.Stat(KernelPath); err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	if _, err := exec.LookPath("bpftool"); err != nil {
		t.Skip("bpftool not found: install it (apt-get install bpftool; CI does) to compare with it")
	}
	s, err := LoadKernel()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bpftool", "btf", "dump", "file", KernelPath, "format", "raw").Output()
	if err != nil {
		t.Fatalf("bpftool: %v", err)
	}
	var mine bytes.Buffer
	w := bufio.NewWriter(&mine)
	for id := 1; id <= s.NumTypes(); id++ {
		dumpRaw(w, s, TypeID(id))
	}
	w.Flush()
	got, want := strings.Split(mine.String(), "\n"), strings.Split(string(out), "\n")
	bad := 0
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			if bad++; bad <= 5 {
				t.Errorf("line %d:\n got %q\nwant %q", i+1, g, w)
			}
		}
	}
	t.Logf("%d types, %d lines; %d differ", s.NumTypes(), len(want), bad)
}

// dumpRaw writes type id as bpftool's raw format prints it (dump_btf_type
// in tools/bpf/bpftool/btf.c).
func dumpRaw(w *bufio.Writer, s *Spec, id TypeID) {
	t, _ := s.Type(id)
	name := t.Name
	if name == "" {
		name = "(anon)"
	}
	fmt.Fprintf(w, "[%d] %s '%s'", id, t.Kind, name)
	switch t.Kind {
	case KindInt:
		enc := "(none)"
		switch {
		case t.Encoding&IntSigned != 0:
			enc = "SIGNED"
		case t.Encoding&IntChar != 0:
			enc = "CHAR"
		case t.Encoding&IntBool != 0:
			enc = "BOOL"
		}
		fmt.Fprintf(w, " size=%d bits_offset=%d nr_bits=%d encoding=%s", t.Size, t.BitOffset, t.Bits, enc)
	case KindPtr, KindConst, KindVolatile, KindRestrict, KindTypedef, KindTypeTag:
		fmt.Fprintf(w, " type_id=%d", t.Ref)
	case KindArray:
		fmt.Fprintf(w, " type_id=%d index_type_id=%d nr_elems=%d", t.Array.Elem, t.Array.Index, t.Array.Nelems)
	case KindStruct, KindUnion:
		fmt.Fprintf(w, " size=%d vlen=%d", t.Size, t.Vlen)
		for _, m := range t.Members {
			fmt.Fprintf(w, "\n\t'%s' type_id=%d bits_offset=%d", anon(m.Name), m.Type, m.BitOffset)
			if m.BitfieldSize != 0 {
				fmt.Fprintf(w, " bitfield_size=%d", m.BitfieldSize)
			}
		}
	case KindEnum, KindEnum64:
		enc := "UNSIGNED"
		if t.KindFlag {
			enc = "SIGNED"
		}
		fmt.Fprintf(w, " encoding=%s size=%d vlen=%d", enc, t.Size, t.Vlen)
		for _, e := range t.Enums {
			switch {
			case t.Kind == KindEnum && t.KindFlag:
				fmt.Fprintf(w, "\n\t'%s' val=%d", e.Name, int64(e.Value))
			case t.Kind == KindEnum:
				fmt.Fprintf(w, "\n\t'%s' val=%d", e.Name, e.Value)
			case t.KindFlag:
				fmt.Fprintf(w, "\n\t'%s' val=%dLL", e.Name, int64(e.Value))
			default:
				fmt.Fprintf(w, "\n\t'%s' val=%dULL", e.Name, e.Value)
			}
		}
	case KindFwd:
		kind := "struct"
		if t.KindFlag {
			kind = "union"
		}
		fmt.Fprintf(w, " fwd_kind=%s", kind)
	case KindFunc:
		fmt.Fprintf(w, " type_id=%d linkage=%s", t.Ref, [...]string{"static", "global", "extern"}[min(t.Vlen, 2)])
	case KindFuncProto:
		fmt.Fprintf(w, " ret_type_id=%d vlen=%d", t.Ref, t.Vlen)
		for _, p := range t.Params {
			fmt.Fprintf(w, "\n\t'%s' type_id=%d", anon(p.Name), p.Type)
		}
	case KindVar:
		fmt.Fprintf(w, " type_id=%d, linkage=%s", t.Ref, [...]string{"static", "global", "extern"}[min(t.Linkage, 2)])
	case KindDatasec:
		fmt.Fprintf(w, " size=%d vlen=%d", t.Size, t.Vlen)
		for _, v := range t.Vars {
			vt, _ := s.Type(v.Type)
			fmt.Fprintf(w, "\n\ttype_id=%d offset=%d size=%d (%s '%s')", v.Type, v.Offset, v.Size, vt.Kind, vt.Name)
		}
	case KindFloat:
		fmt.Fprintf(w, " size=%d", t.Size)
	case KindDeclTag:
		fmt.Fprintf(w, " type_id=%d component_idx=%d", t.Ref, t.ComponentIdx)
	}
	w.WriteByte('\n')
}

func anon(name string) string {
	if name == "" {
		return "(anon)"
	}
	return name
}
