package main

// The payload dumps of -A, -x and -X, laid out as tcpdump lays them out
// under a packet's line (print-ascii.c): TestDumpsTcpdump compares them
// with tcpdump's, byte for byte.

// bytesPerLine is how many bytes a hex dump line shows.
const bytesPerLine = 16

// isGraph reports whether c is a printable ASCII character other than the
// space (isgraph(3) in the C locale).
func isGraph(c byte) bool { return c > ' ' && c < 0x7f }

// appendASCIIDump appends data as -A prints it: printable characters,
// spaces, tabs and newlines as they are, every other byte as ".", a
// carriage return left out where a newline follows it, and a newline to
// end.
func appendASCIIDump(b, data []byte) []byte {
	for i, c := range data {
		switch {
		case c == '\r':
			// tcpdump leaves out a CR that ends a line, or comes last
			// but one, and prints the others as ".".
			if len(data)-i-1 > 1 && data[i+1] != '\n' {
				b = append(b, '.')
			}
		case isGraph(c) || c == ' ' || c == '\t' || c == '\n':
			b = append(b, c)
		default:
			b = append(b, '.')
		}
	}
	return append(b, '\n')
}

// appendHexDump appends data as -x prints it: lines of a tab, the offset
// "0x0010:", and up to 16 bytes as groups of two, each after a space.
func appendHexDump(b, data []byte) []byte {
	for off := 0; off < len(data); off += bytesPerLine {
		line := data[off:min(off+bytesPerLine, len(data))]
		b = appendOffset(b, off)
		for i := 0; i < len(line); i += 2 {
			b = append(b, ' ')
			b = appendHexByte(b, line[i])
			if i+1 < len(line) {
				b = appendHexByte(b, line[i+1])
			}
		}
		b = append(b, '\n')
	}
	return b
}

// appendHexASCIIDump appends data as -X prints it: -x's lines with the
// hex padded to 40 columns, then two spaces and the bytes as ASCII,
// printable characters as they are and the others, the space among them,
// as ".".
func appendHexASCIIDump(b, data []byte) []byte {
	const hexWidth = 5 * bytesPerLine / 2
	for off := 0; off < len(data); off += bytesPerLine {
		line := data[off:min(off+bytesPerLine, len(data))]
		b = appendOffset(b, off)
		start := len(b)
		for i := 0; i < len(line); i += 2 {
			b = append(b, ' ')
			b = appendHexByte(b, line[i])
			if i+1 < len(line) {
				b = appendHexByte(b, line[i+1])
			}
		}
		for len(b)-start < hexWidth {
			b = append(b, ' ')
		}
		b = append(b, ' ', ' ')
		for _, c := range line {
			if !isGraph(c) {
				c = '.'
			}
			b = append(b, c)
		}
		b = append(b, '\n')
	}
	return b
}

// appendOffset appends "\t0x0010: ", with four hex digits or more.
func appendOffset(b []byte, off int) []byte {
	b = append(b, "\t0x"...)
	b = appendHex(b, uint64(off), 4)
	return append(b, ':', ' ')
}

func appendHexByte(b []byte, c byte) []byte {
	const digits = "0123456789abcdef"
	return append(b, digits[c>>4], digits[c&0xf])
}
