package packet

import (
	"math"
	"time"
)

// appendTime appends t in timeLayout. Years outside 0000–9999, which RFC
// 3339 cannot express, fall back to time.Time.AppendFormat. The stamp is
// built in place and appended once: it is the costliest column of a
// record.
func appendTime(b []byte, t time.Time) []byte {
	var s [len(timeLayout)]byte // 2006-01-02T15:04:05.000000000Z
	if !putSecond(s[:secondLen], t) {
		return t.UTC().AppendFormat(b, timeLayout)
	}
	putNanos(s[secondLen:], t.Nanosecond())
	return append(b, s[:]...)
}

// secondLen is the length of the part of a time stamp up to the second,
// with the decimal point: "2006-01-02T15:04:05.".
const secondLen = len("2006-01-02T15:04:05.")

// putSecond writes t's date and time to the second, in UTC, as the first
// secondLen bytes of timeLayout, to s. It reports false, writing nothing,
// for a year outside 0000–9999.
func putSecond(s []byte, t time.Time) bool {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return false
	}
	hour, minute, sec := t.Clock()
	_ = s[secondLen-1]
	put2(s[0:2], year/100)
	put2(s[2:4], year%100)
	s[4] = '-'
	put2(s[5:7], int(month))
	s[7] = '-'
	put2(s[8:10], day)
	s[10] = 'T'
	put2(s[11:13], hour)
	s[13] = ':'
	put2(s[14:16], minute)
	s[16] = ':'
	put2(s[17:19], sec)
	s[19] = '.'
	return true
}

// putNanos writes ns, below 1e9, as nine digits and the closing "Z" of a
// time stamp to s.
func putNanos(s []byte, ns int) {
	_ = s[9]
	n := uint32(ns) // unsigned: the divisions by constants are cheaper
	hi, lo := n/10000, n%10000
	s[0] = byte('0' + hi/10000)
	hi %= 10000
	put2(s[1:3], int(hi/100))
	put2(s[3:5], int(hi%100))
	put2(s[5:7], int(lo/100))
	put2(s[7:9], int(lo%100))
	s[9] = 'Z'
}

// appendUint appends v in decimal. It writes the digits two at a time
// into a buffer on the stack, dividing in 32 bits when v fits them, and
// appends them once: the numbers of a record line are most of its cost.
func appendUint(b []byte, v uint64) []byte {
	if v < 10 {
		return append(b, byte('0'+v))
	}
	var d [20]byte
	i := len(d)
	for v > math.MaxUint32 {
		q := v / 100
		r := v - q*100
		i -= 2
		d[i], d[i+1] = digitPairs[2*r], digitPairs[2*r+1]
		v = q
	}
	w := uint32(v)
	for w >= 100 {
		q := w / 100
		r := w - q*100
		i -= 2
		d[i], d[i+1] = digitPairs[2*r], digitPairs[2*r+1]
		w = q
	}
	if w >= 10 {
		i -= 2
		d[i], d[i+1] = digitPairs[2*w], digitPairs[2*w+1]
	} else {
		i--
		d[i] = byte('0' + w)
	}
	return append(b, d[i:]...)
}

// put2 writes v, below 100, as two decimal digits.
func put2(b []byte, v int) {
	b[0], b[1] = digitPairs[2*v], digitPairs[2*v+1]
}

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"
