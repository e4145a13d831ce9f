#!/usr/bin/env bash
# capture.sh measures what capturing a UDP flood on lo costs the machine,
# for lo-capture and for tcpdump, in one run.
#
# Each round floods N datagrams of 64 bytes to 127.0.0.1:PORT (./flood: one
# process, bounded in count and time) under each of these, in an order that
# rotates from round to round:
#
#   baseline         nothing capturing
#   tcpdump-pcap     tcpdump -i lo -w /dev/null 'udp dst port PORT'
#   lo-capture-pcap  lo-capture -i lo -f 'udp dst port PORT' -w /dev/null
#   tcpdump-text     tcpdump -n -i lo 'udp dst port PORT' > file
#   lo-capture-text  lo-capture -i lo -f 'udp dst port PORT' > file
#   minimal-pcap     ./minimal -i lo -f 'udp dst port PORT' -w /dev/null: the
#                    least a capturer on purebpf's ring does (NextFrame into a
#                    buffered PcapWriter), the floor lo-capture can reach
#   records          ./records -i lo -f 'udp dst port PORT': records built in
#                    the kernel (sockfilter.ListenRecords), read from a BPF
#                    ring buffer with NextRecords; no frame is copied
#   flows            ./flows -i lo -f 'udp dst port PORT': the kernel counts
#                    each datagram in a flow table (sockfilter.ListenFlows),
#                    read every second; no frame is copied
#   lo-capture-k     lo-capture -k -i lo -f 'udp dst port PORT' > /dev/null:
#                    lo-capture's records built in the kernel, each one's
#                    line of the table written (to /dev/null)
#   lo-capture-flows lo-capture -flows 1s -i lo -f 'udp dst port PORT'
#                    > /dev/null: lo-capture's flow table in the kernel, its
#                    report printed every second
#
# and, when -modes names them: records-text (./records -o FILE: each
# record's line of lo-capture's table, to a file), records-perf (./records
# -perf: per-CPU perf event buffers instead of a ring buffer) and
# flows-percpu (./flows -percpu: a per-CPU flow table). The record and flow
# modes (lo-capture-k and lo-capture-flows too) compare with tcpdump-pcap,
# records-text with tcpdump-text; their "captured" is the records read, or
# the packets in flow records.
#
# A capturer is started and its "listening on" line awaited before the
# flood; after the flood the script waits DRAIN seconds (tcpdump's ring
# hands over a block that is not full only after 1 s), then stops it with
# SIGINT and waits for it to exit. The machine's busy time is the sum of
# the user, nice, system, irq, softirq and steal fields of the cpu line of
# /proc/stat (everything but idle and iowait; guest time is already in
# user and nice), from just before the flood to the capturer's exit, so
# the kernel's side of capturing (running the filter, copying frames)
# counts; the capturer's start-up (compiling, verifying and loading its
# program) does not. A capturer's overhead per datagram is its round's
# busy time less the same round's baseline, divided by N; the table gives
# medians over the rounds. Other work on the machine adds noise to that figure, so the table
# also gives the overhead in CPU time attributed to the run: the sender's
# (getrusage; the kernel's tick accounting charges it the softirq work of
# delivering on lo), the capturer's threads' and ksoftirqd's (schedstat),
# less the baseline's; the capturer's from just before the flood until it
# is stopped, not its start-up. "captured" is what the capturer says on exit:
# tcpdump's "packets captured", lo-capture's "records".
#
# Run as root from anywhere in the repository:
#
#	sudo internal/bench/capture/capture.sh [-n N] [-rounds R] [-port PORT] [-drain SECONDS]
#		[-modes 'baseline tcpdump-pcap ...'] [-locapture BINARY] [-o DIR]
#
# -modes runs a subset of the modes (baseline is always run); -locapture
# measures a prebuilt lo-capture (or anything with its flags and its start
# and exit lines) instead of building ./examples/lo-capture. Needs go,
# tcpdump, and a Linux machine with lo. Raw per-round figures go to
# DIR/rounds.tsv (DIR defaults to a new temporary directory), and the text
# outputs to DIR/tcpdump.txt and DIR/lo-capture.txt.
set -euo pipefail

n=1000000
rounds=5
port=$((20000 + RANDOM % 40000))
drain=1.2
outdir=
locapture=
modes=(baseline tcpdump-pcap lo-capture-pcap tcpdump-text lo-capture-text minimal-pcap records flows lo-capture-k lo-capture-flows)
while [ $# -gt 0 ]; do
	case $1 in
	-n) n=$2; shift 2 ;;
	-rounds) rounds=$2; shift 2 ;;
	-port) port=$2; shift 2 ;;
	-drain) drain=$2; shift 2 ;;
	-o) outdir=$2; shift 2 ;;
	-locapture) locapture=$2; shift 2 ;;
	-modes)
		read -r -a modes <<<"baseline ${2//baseline/}"
		shift 2
		;;
	-h | -help | --help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "capture.sh: unknown argument $1 (try -h)" >&2; exit 2 ;;
	esac
done

die() { echo "capture.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (AF_PACKET sockets, BPF programs): run with sudo"
command -v tcpdump >/dev/null || die "tcpdump not found: apt-get install tcpdump"
command -v go >/dev/null || die "go not found"

root=$(cd "$(dirname "$0")/../../.." && pwd)
[ -n "$outdir" ] || outdir=$(mktemp -d /tmp/purebpf-capture.XXXXXX)
mkdir -p "$outdir"
bin=$outdir/bin
mkdir -p "$bin"
if [ -n "$locapture" ]; then
	cp "$locapture" "$bin/lo-capture" || die "cannot copy $locapture"
else
	(cd "$root" && go build -o "$bin/lo-capture" ./examples/lo-capture) || die "cannot build ./examples/lo-capture"
fi
(cd "$root/internal/bench" && go build -o "$bin/flood" ./capture/flood && go build -o "$bin/minimal" ./capture/minimal &&
	go build -o "$bin/records" ./capture/records && go build -o "$bin/flows" ./capture/flows) ||
	die "cannot build ./capture/flood, minimal, records and flows in internal/bench"

tck=$(getconf CLK_TCK)
# busy prints the machine's busy time so far, in ns.
busy() {
	awk -v tck="$tck" '$1 == "cpu" { printf "%.0f\n", ($2 + $3 + $4 + $7 + $8 + $9) * 1e9 / tck; exit }' /proc/stat
}
# proc_cpu prints the CPU time the threads of process $1 have used, in ns.
proc_cpu() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}
# softirqd_cpu prints the CPU time the ksoftirqd threads have used, in ns.
softirqd_cpu() {
	local p s=0
	for p in $(pgrep '^ksoftirqd/'); do
		s=$((s + $(cut -d' ' -f1 "/proc/$p/schedstat")))
	done
	echo "$s"
}

for m in "${modes[@]}"; do
	case $m in
	baseline | tcpdump-pcap | lo-capture-pcap | tcpdump-text | lo-capture-text | minimal-pcap) ;;
	lo-capture-k | lo-capture-flows) ;;
	records | records-text | records-perf | flows | flows-percpu) ;;
	*) die "unknown mode $m" ;;
	esac
done
filter="udp dst port $port"
tsv=$outdir/rounds.tsv
printf 'round\tmode\tbusy_ns\tcapturer_ns\tcaptured\treceived\tdropped\tattributed_ns\n' >"$tsv"

# run_mode MODE ROUND runs one flood under MODE and appends a line to $tsv.
run_mode() {
	local mode=$1 round=$2 pid= err=$outdir/$1.err out=/dev/null
	local -a cmd=()
	case $mode in
	baseline) ;;
	tcpdump-pcap) cmd=(tcpdump -i lo -w /dev/null "$filter") ;;
	lo-capture-pcap) cmd=("$bin/lo-capture" -i lo -f "$filter" -w /dev/null) ;;
	tcpdump-text) cmd=(tcpdump -n -i lo "$filter"); out=$outdir/tcpdump.txt ;;
	lo-capture-text) cmd=("$bin/lo-capture" -i lo -f "$filter"); out=$outdir/lo-capture.txt ;;
	lo-capture-k) cmd=("$bin/lo-capture" -k -i lo -f "$filter") ;;
	lo-capture-flows) cmd=("$bin/lo-capture" -flows 1s -i lo -f "$filter") ;;
	minimal-pcap) cmd=("$bin/minimal" -i lo -f "$filter" -w /dev/null) ;;
	records) cmd=("$bin/records" -i lo -f "$filter") ;;
	records-text) cmd=("$bin/records" -i lo -f "$filter" -o "$outdir/records.txt") ;;
	records-perf) cmd=("$bin/records" -i lo -f "$filter" -perf) ;;
	flows) cmd=("$bin/flows" -i lo -f "$filter") ;;
	flows-percpu) cmd=("$bin/flows" -i lo -f "$filter" -percpu) ;;
	esac
	: >"$err"
	if [ ${#cmd[@]} -gt 0 ]; then
		"${cmd[@]}" >"$out" 2>"$err" &
		pid=$!
		local i
		for i in $(seq 100); do
			grep -q 'listening on' "$err" && break
			kill -0 "$pid" 2>/dev/null || die "$mode exited before it started: $(cat "$err")"
			sleep 0.1
		done
		grep -q 'listening on' "$err" || die "$mode did not start in 10 s: $(cat "$err")"
	fi
	sleep 0.3
	local b0 b1 cpu=0 cpu0=0 s0 s1 fcpu
	[ -z "$pid" ] || cpu0=$(proc_cpu "$pid")
	b0=$(busy)
	s0=$(softirqd_cpu)
	"$bin/flood" -n "$n" -port "$port" -timeout 120s 2>>"$outdir/flood.err" || die "flood failed: $(tail -1 "$outdir/flood.err")"
	fcpu=$(tail -1 "$outdir/flood.err" | sed -n 's/.*cpu \([0-9]*\) ns$/\1/p')
	[ -n "$fcpu" ] || die "no cpu figure from flood: $(tail -1 "$outdir/flood.err")"
	sleep "$drain"
	if [ -n "$pid" ]; then
		cpu=$(($(proc_cpu "$pid") - cpu0))
		kill -INT "$pid"
		wait "$pid" || die "$mode exited with status $?: $(tail -3 "$err")"
	fi
	b1=$(busy)
	s1=$(softirqd_cpu)
	local captured=0 received=0 dropped=0
	case $mode in
	tcpdump-*)
		captured=$(awk '/packets captured/ { print $1 }' "$err")
		received=$(awk '/packets received by filter/ { print $1 }' "$err")
		dropped=$(awk '/packets dropped by kernel/ { print $1 }' "$err")
		;;
	lo-capture-* | minimal-* | records* | flows*)
		# "N records, N frames received by filter, N dropped by kernel"
		read -r captured received dropped < <(sed -n 's/^\([0-9]*\) records, \([0-9]*\) frames received by filter, \([0-9]*\) dropped by kernel$/\1 \2 \3/p' "$err")
		;;
	esac
	[ -n "$captured" ] && [ -n "$received" ] && [ -n "$dropped" ] || die "$mode: no counts on exit: $(tail -3 "$err")"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$mode" "$((b1 - b0))" "$cpu" "$captured" "$received" "$dropped" \
		"$((fcpu + cpu + s1 - s0))" >>"$tsv"
	printf '  round %d %-16s busy %5d ms  captured %8s  dropped %s\n' "$round" "$mode" "$(((b1 - b0) / 1000000))" "$captured" "$dropped" >&2
}

echo "capture.sh: $rounds rounds of $n datagrams to 127.0.0.1:$port; output in $outdir" >&2
for r in $(seq "$rounds"); do
	for k in $(seq 0 $((${#modes[@]} - 1))); do
		run_mode "${modes[$(((k + r - 1) % ${#modes[@]}))]}" "$r"
	done
done

# The table: medians over rounds of each figure, overhead against the same
# round's baseline.
awk -F'\t' -v n="$n" -v rounds="$rounds" -v modelist="${modes[*]}" '
function median(a, k,   i, j, t) {
	for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return k % 2 ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2
}
NR == 1 { next }
{ busy[$1, $2] = $3; cpu[$1, $2] = $4; cap[$1, $2] = $5; rec[$1, $2] = $6; drop[$1, $2] = $7; att[$1, $2] = $8 }
END {
	# tcpdump first, so that lo-capture can be compared with it.
	nm = 0
	na = split("baseline tcpdump-pcap lo-capture-pcap tcpdump-text lo-capture-text minimal-pcap records records-perf records-text lo-capture-k flows flows-percpu lo-capture-flows", all, " ")
	for (i = 1; i <= na; i++) if ((" " modelist " ") ~ (" " all[i] " ")) modes[++nm] = all[i]
	printf "| mode | captured (median, min) | kernel drops (max) | machine busy ns/datagram | machine overhead ns/datagram (median, min–max) | vs tcpdump | attributed overhead ns/datagram (median, min–max) | vs tcpdump | capturer CPU ns/datagram |\n"
	printf "|---|---|---|---|---|---|---|---|---|\n"
	for (m = 1; m <= nm; m++) {
		mode = modes[m]
		mx = 0; mn = -1
		for (r = 1; r <= rounds; r++) {
			b[r] = busy[r, mode] / n
			o[r] = (busy[r, mode] - busy[r, "baseline"]) / n
			c[r] = cpu[r, mode] / n
			a[r] = (att[r, mode] - att[r, "baseline"]) / n
			k[r] = cap[r, mode]
			if (drop[r, mode] > mx) mx = drop[r, mode]
			if (mn < 0 || cap[r, mode] < mn) mn = cap[r, mode]
		}
		for (r = 1; r <= rounds; r++) { oo[r] = o[r] }
		lo = oo[1]; hi = oo[1]
		for (r = 1; r <= rounds; r++) { if (oo[r] < lo) lo = oo[r]; if (oo[r] > hi) hi = oo[r] }
		alo = a[1]; ahi = a[1]
		for (r = 1; r <= rounds; r++) { if (a[r] < alo) alo = a[r]; if (a[r] > ahi) ahi = a[r] }
		ov[mode] = median(o, rounds)
		av[mode] = median(a, rounds)
		bm = median(b, rounds); cm = median(c, rounds); km = median(k, rounds)
		if (mode == "baseline") {
			printf "| %s | – | – | %.0f | – | – | – | – | – |\n", mode, bm
			continue
		}
		ref = ""
		if (mode == "lo-capture-pcap" || mode == "minimal-pcap" || mode ~ /^(records|records-perf|flows|flows-percpu|lo-capture-k|lo-capture-flows)$/) ref = "tcpdump-pcap"
		if (mode == "lo-capture-text" || mode == "records-text") ref = "tcpdump-text"
		ratio = "–"; aratio = "–"
		if (ref != "" && ov[ref] > 0) ratio = sprintf("%.2f×", ov[mode] / ov[ref])
		if (ref != "" && av[ref] > 0) aratio = sprintf("%.2f×", av[mode] / av[ref])
		printf "| %s | %d, %d | %d | %.0f | %.0f, %.0f–%.0f | %s | %.0f, %.0f–%.0f | %s | %.0f |\n", mode, km, mn, mx, bm, ov[mode], lo, hi, ratio, av[mode], alo, ahi, aratio, cm
	}
}' "$tsv"
echo "capture.sh: per-round figures in $tsv" >&2
