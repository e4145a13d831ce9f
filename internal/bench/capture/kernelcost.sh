#!/usr/bin/env bash
# kernelcost.sh measures what the programs of the record and flow modes
# cost the kernel per packet, beside the filter alone: it runs
# sockfilter's BenchmarkKernelPrograms COUNT times (each sub-benchmark a
# BPF_PROG_TEST_RUN of 10,000 repeats of one of the flood's datagrams per
# iteration, the kernel's own mean time per run reported as
# kernel-ns/packet) and prints, for each program, the median, the minimum
# and the maximum over the runs, and the median less the empty program's
# (the test run's own cost per run) and less the filter's.
#
# Run as root from anywhere in the repository:
#
#	sudo internal/bench/capture/kernelcost.sh [-count COUNT] [-o FILE]
#
# COUNT defaults to 10. The raw `go test` output goes to FILE (a new
# temporary file by default).
set -euo pipefail

count=10
out=
while [ $# -gt 0 ]; do
	case $1 in
	-count) count=$2; shift 2 ;;
	-o) out=$2; shift 2 ;;
	-h | -help | --help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "kernelcost.sh: unknown argument $1 (try -h)" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "kernelcost.sh: needs root (BPF programs): run with sudo" >&2; exit 1; }
root=$(cd "$(dirname "$0")/../../.." && pwd)
[ -n "$out" ] || out=$(mktemp /tmp/purebpf-kernelcost.XXXXXX)
(cd "$root" && PUREBPF_PRIVILEGED=require go test -run '^$' -bench '^BenchmarkKernelPrograms$' -count "$count" ./sockfilter/) >"$out"
echo "kernelcost.sh: $count runs; raw output in $out" >&2
awk '
function median(a, k,   i, j, t) {
	for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return k % 2 ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2
}
/^BenchmarkKernelPrograms\// {
	name = $1; sub(/^BenchmarkKernelPrograms\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 2; i < NF; i++) if ($(i+1) == "kernel-ns/packet") v = $i
	if (!(name in n)) order[++names] = name
	vals[name, ++n[name]] = v
}
END {
	for (k = 1; k <= names; k++) {
		name = order[k]; m = n[name]; lo = hi = vals[name, 1]
		for (i = 1; i <= m; i++) { a[i] = vals[name, i]; if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
		med[name] = median(a, m); mn[name] = lo; mx[name] = hi
	}
	printf "| program | kernel ns/packet (median, min–max) | less the empty program | less the filter |\n|---|---|---|---|\n"
	for (k = 1; k <= names; k++) {
		name = order[k]
		e = ("empty" in med) ? sprintf("%.0f", med[name] - med["empty"]) : "–"
		f = ("filter" in med && name != "empty" && name != "filter") ? sprintf("%.0f", med[name] - med["filter"]) : "–"
		printf "| %s | %.0f, %.0f–%.0f | %s | %s |\n", name, med[name], mn[name], mx[name], e, f
	}
}' "$out"
