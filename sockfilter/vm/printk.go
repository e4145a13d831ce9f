package vm

import (
	"strconv"
)

// maxPrintk is the most bpf_trace_printk writes, the kernel's
// MAX_BPRINTF_BUF.
const maxPrintk = 512

// einval is -EINVAL.
const einval = ^uint64(22 - 1)

// tracePrintk is bpf_trace_printk(fmt, fmt_size, arg1, arg2, arg3): it
// formats fmt, which must end with a NUL within fmt_size bytes, with up to
// three arguments, writes the text to Options.Trace and returns its
// length, or -EINVAL for a format the kernel refuses
// (bpf_bprintf_prepare in kernel/bpf/helpers.c). The conversions are the
// kernel's: %d, %i, %u, %x and %X of ints, longs (l) and long longs (ll),
// with flags 0, +, - and space and a width; %c; %s of a string in the
// program's memory; %p, %pK, %px of pointers; %pI4, %pi4, %pI6 and %pi6 of
// addresses in the program's memory; %%.
func (v *VM) tracePrintk(e *Env, r *[16]uint64) (uint64, error) {
	format, err := e.Memory(r[1], uint64(uint32(r[2])), false)
	if err != nil {
		return 0, err
	}
	end := -1
	for i, c := range format {
		if c == 0 {
			end = i
			break
		}
	}
	if end < 0 {
		return einval, nil
	}
	out, ok := e.printf(e.printk[:0], format[:end], [3]uint64{r[3], r[4], r[5]})
	e.printk = out[:0]
	if !ok {
		return einval, nil
	}
	if len(out) > maxPrintk-1 {
		out = out[:maxPrintk-1]
	}
	if v.trace != nil {
		v.traceMu.Lock()
		_, _ = v.trace.Write(out)
		v.traceMu.Unlock()
	}
	return uint64(len(out)), nil
}

// printf appends fmt formatted with args to b, or reports false for a
// format the kernel refuses.
func (e *Env) printf(b, f []byte, args [3]uint64) ([]byte, bool) {
	n := 0 // arguments used
	at := func(i int) byte {
		if i < len(f) {
			return f[i]
		}
		return 0
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c >= 0x80 || c < ' ' && !isSpace(c) || c == 0x7f {
			return b, false
		}
		if c != '%' {
			b = append(b, c)
			continue
		}
		if at(i+1) == '%' {
			b = append(b, '%')
			i++
			continue
		}
		if n == len(args) {
			return b, false
		}
		arg := args[n]
		n++
		i++
		var left, zero, plus, space bool
		for ; ; i++ {
			switch at(i) {
			case '-':
				left = true
				continue
			case '0':
				zero = true
				continue
			case '+':
				plus = true
				continue
			case ' ':
				space = true
				continue
			}
			break
		}
		width := 0
		if c := at(i); c >= '1' && c <= '9' {
			for ; at(i) >= '0' && at(i) <= '9'; i++ {
				width = width*10 + int(at(i)-'0')
			}
		}
		var text []byte
		switch c := at(i); c {
		case 'p':
			var ok bool
			text, i, ok = e.pointer(f, i, arg)
			if !ok {
				return b, false
			}
		case 's':
			text = e.cstring(arg)
		case 'c':
			text = []byte{byte(arg)}
		default:
			size := 32
			if at(i) == 'l' {
				size, i = 64, i+1
			}
			if at(i) == 'l' {
				i++
			}
			var ok bool
			text, ok = number(at(i), arg, size, plus, space)
			if !ok {
				return b, false
			}
		}
		b = pad(b, text, width, left, zero && !left)
	}
	return b, true
}

func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// number formats an integer conversion of an argument of size bits.
func number(conv byte, arg uint64, size int, plus, space bool) ([]byte, bool) {
	if size == 32 {
		arg = uint64(uint32(arg))
	}
	var b []byte
	switch conv {
	case 'd', 'i':
		x := int64(arg)
		if size == 32 {
			x = int64(int32(arg))
		}
		if x >= 0 && plus {
			b = append(b, '+')
		} else if x >= 0 && space {
			b = append(b, ' ')
		}
		return strconv.AppendInt(b, x, 10), true
	case 'u':
		return strconv.AppendUint(b, arg, 10), true
	case 'x':
		return strconv.AppendUint(b, arg, 16), true
	case 'X':
		b = strconv.AppendUint(b, arg, 16)
		for i, c := range b {
			if c >= 'a' {
				b[i] = c - 'a' + 'A'
			}
		}
		return b, true
	}
	return nil, false
}

// pad appends text to b padded to width.
func pad(b, text []byte, width int, left, zero bool) []byte {
	fill := width - len(text)
	if fill <= 0 {
		return append(b, text...)
	}
	if left {
		b = append(b, text...)
		for range fill {
			b = append(b, ' ')
		}
		return b
	}
	c := byte(' ')
	if zero {
		c = '0'
		if len(text) > 0 && (text[0] == '-' || text[0] == '+' || text[0] == ' ') {
			b = append(b, text[0])
			text = text[1:]
		}
	}
	for range fill {
		b = append(b, c)
	}
	return append(b, text...)
}

// cstring returns the NUL-terminated string at addr in the program's
// memory, empty when it cannot be read, as the kernel copies it.
func (e *Env) cstring(addr uint64) []byte {
	var s []byte
	for i := range uint64(maxPrintk) {
		p := e.load(addr+i, 1)
		if p == nil || p[0] == 0 {
			break
		}
		s = append(s, p[0])
	}
	return s
}

// pointer formats a %p conversion whose 'p' is at f[i]; it returns the
// index of the conversion's last character.
func (e *Env) pointer(f []byte, i int, arg uint64) ([]byte, int, bool) {
	next := byte(0)
	if i+1 < len(f) {
		next = f[i+1]
	}
	switch next {
	case 'K', 'x', 's', 'S':
		i++
		fallthrough
	case 0, ' ', '\t', '\n', '.', ',', ':', ';', '-', ')', ']':
		return strconv.AppendUint([]byte("0x"), arg, 16), i, true
	case 'i', 'I':
	default:
		return nil, i, false
	}
	if i+2 >= len(f) || f[i+2] != '4' && f[i+2] != '6' {
		return nil, i, false
	}
	n := uint64(4)
	if f[i+2] == '6' {
		n = 16
	}
	ip := e.load(arg, n)
	if ip == nil {
		return nil, i, false
	}
	var b []byte
	switch {
	case n == 4:
		for j, x := range ip {
			if j > 0 {
				b = append(b, '.')
			}
			if next == 'i' && x < 100 {
				b = append(b, '0')
				if x < 10 {
					b = append(b, '0')
				}
			}
			b = strconv.AppendUint(b, uint64(x), 10)
		}
	default:
		const hex = "0123456789abcdef"
		for j, x := range ip {
			if next == 'I' && j > 0 && j%2 == 0 {
				b = append(b, ':')
			}
			b = append(b, hex[x>>4], hex[x&15])
		}
	}
	return b, i + 2, true
}
