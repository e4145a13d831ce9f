package main

import (
	"strconv"
	"time"
)

// strftime formats t as strftime(3) does in the C locale, for the names
// of -G's files: tcpdump passes the -w name through strftime with the
// local time of the rotation. It has the conversions of POSIX (%a %A %b
// %B %c %C %d %D %e %F %g %G %h %H %I %j %m %M %n %p %r %R %S %t %T %u %U
// %V %w %W %x %X %y %Y %z %Z %%) and glibc's %k, %l, %P and %s. Like
// glibc, it copies an unknown conversion as it is, and takes no flags or
// widths.
func strftime(format string, t time.Time) string {
	b := make([]byte, 0, len(format)+16)
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b = append(b, c)
			continue
		}
		i++
		b = appendConversion(b, format[i], t)
	}
	return string(b)
}

var (
	weekdays = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	months   = [...]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
)

// appendConversion appends the conversion %c of t.
func appendConversion(b []byte, c byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	wday, yday := int(t.Weekday()), t.YearDay()-1
	hour12 := (hour+11)%12 + 1
	switch c {
	case 'a':
		return append(b, weekdays[wday][:3]...)
	case 'A':
		return append(b, weekdays[wday]...)
	case 'b', 'h':
		return append(b, months[month-1][:3]...)
	case 'B':
		return append(b, months[month-1]...)
	case 'c':
		return append(b, strftime("%a %b %e %H:%M:%S %Y", t)...)
	case 'C':
		return pad(b, floorDiv(year, 100), 2, '0')
	case 'd':
		return pad(b, day, 2, '0')
	case 'D', 'x':
		return append(b, strftime("%m/%d/%y", t)...)
	case 'e':
		return pad(b, day, 2, ' ')
	case 'F':
		return append(b, strftime("%Y-%m-%d", t)...)
	case 'G':
		y, _ := t.ISOWeek()
		return strconv.AppendInt(b, int64(y), 10)
	case 'g':
		y, _ := t.ISOWeek()
		return pad(b, mod(y, 100), 2, '0')
	case 'H':
		return pad(b, hour, 2, '0')
	case 'I':
		return pad(b, hour12, 2, '0')
	case 'j':
		return pad(b, yday+1, 3, '0')
	case 'k':
		return pad(b, hour, 2, ' ')
	case 'l':
		return pad(b, hour12, 2, ' ')
	case 'm':
		return pad(b, int(month), 2, '0')
	case 'M':
		return pad(b, minute, 2, '0')
	case 'n':
		return append(b, '\n')
	case 'p':
		if hour < 12 {
			return append(b, "AM"...)
		}
		return append(b, "PM"...)
	case 'P':
		if hour < 12 {
			return append(b, "am"...)
		}
		return append(b, "pm"...)
	case 'r':
		return append(b, strftime("%I:%M:%S %p", t)...)
	case 'R':
		return append(b, strftime("%H:%M", t)...)
	case 's':
		return strconv.AppendInt(b, t.Unix(), 10)
	case 'S':
		return pad(b, sec, 2, '0')
	case 't':
		return append(b, '\t')
	case 'T', 'X':
		return append(b, strftime("%H:%M:%S", t)...)
	case 'u':
		return strconv.AppendInt(b, int64((wday+6)%7+1), 10)
	case 'U': // weeks starting on Sunday; days before the first are week 0
		return pad(b, (yday+7-wday)/7, 2, '0')
	case 'V':
		_, w := t.ISOWeek()
		return pad(b, w, 2, '0')
	case 'w':
		return strconv.AppendInt(b, int64(wday), 10)
	case 'W': // weeks starting on Monday
		return pad(b, (yday+7-(wday+6)%7)/7, 2, '0')
	case 'y':
		return pad(b, mod(year, 100), 2, '0')
	case 'Y':
		return strconv.AppendInt(b, int64(year), 10)
	case 'z':
		_, off := t.Zone()
		sign := byte('+')
		if off < 0 {
			sign, off = '-', -off
		}
		b = append(b, sign)
		return pad(b, off/3600*100+off%3600/60, 4, '0')
	case 'Z':
		name, _ := t.Zone()
		return append(b, name...)
	case '%':
		return append(b, '%')
	}
	return append(b, '%', c)
}

// pad appends v in decimal, padded on the left with fill to width.
func pad(b []byte, v, width int, fill byte) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
		width--
	}
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], int64(v), 10)
	for n := len(d); n < width; n++ {
		b = append(b, fill)
	}
	return append(b, d...)
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func mod(a, b int) int { return a - floorDiv(a, b)*b }
