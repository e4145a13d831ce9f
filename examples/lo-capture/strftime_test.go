package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStrftimeDate compares strftime with date(1), which formats with the
// C library's strftime(3), for every conversion at times chosen for the
// week-number edge cases, in UTC and in a zone east of it.
func TestStrftimeDate(t *testing.T) {
	if _, err := exec.LookPath("date"); err != nil {
		t.Skip("no date command")
	}
	convs := "aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZ%"
	var format strings.Builder
	for _, c := range convs {
		format.WriteString("[%" + string(c) + "]")
	}
	format.WriteString("[%Q][100%]") // an unknown conversion, a % at the end
	times := []time.Time{
		time.Date(2026, 12, 2, 1, 13, 27, 0, time.UTC),
		time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC),    // a Friday: ISO week 53 of 2020
		time.Date(2024, 12, 30, 12, 0, 0, 0, time.UTC), // a Monday: ISO week 1 of 2025
		time.Date(2023, 1, 1, 23, 59, 59, 0, time.UTC), // a Sunday
		time.Date(2024, 2, 29, 12, 30, 0, 0, time.UTC), // noon and a half, leap day
		time.Date(1999, 12, 31, 11, 5, 9, 0, time.UTC), // two-digit years
	}
	for _, zone := range []string{"UTC", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Skipf("no time zone %s", zone)
		}
		for _, tm := range times {
			cmd := exec.Command("date", "-d", "@"+strconv.FormatInt(tm.Unix(), 10), "+"+format.String())
			cmd.Env = append(os.Environ(), "TZ="+zone, "LC_ALL=C")
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			want := strings.TrimSuffix(string(out), "\n")
			if got := strftime(format.String(), tm.In(loc)); got != want {
				t.Errorf("%s %v:\ngot  %s\nwant %s", zone, tm, got, want)
			}
		}
	}
}

// FuzzStrftime checks that no format makes strftime panic, and that text
// without conversions comes out as it went in.
func FuzzStrftime(f *testing.F) {
	for _, s := range []string{"cap-%Y%m%d-%H%M%S.pcap", "%", "100%", "%%%Q", "%G-W%V-%u", "plain"} {
		f.Add(s, int64(1796174007))
	}
	f.Fuzz(func(t *testing.T, format string, sec int64) {
		tm := time.Unix(sec%(1<<40), 0).UTC()
		got := strftime(format, tm)
		if !strings.Contains(format, "%") && got != format {
			t.Fatalf("strftime(%q) = %q", format, got)
		}
	})
}
