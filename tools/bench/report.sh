#!/usr/bin/env bash
# Turns tools/bench/run.sh's results (OUT/<config>/round*/results.txt and cpu-seconds.txt) into Markdown:
# medians with min-max per workload and configuration, the ratios issue 14 asks for (higher = VirtFs better),
# and host CPU seconds. Also writes OUT/ratios.tsv for the chart.
# Usage: tools/bench/report.sh OUT "CONFIGS"
set -euo pipefail
OUT="$1" CONFIGS="$2"
WORKLOADS="seq-write seq-read rand-read-4k rand-read-4k-aio16x4 create stat rename unlink untar find-du rm-tree devloop devloop-copy devloop-git devloop-configure devloop-make devloop-clean devloop-rm"
# median min max of the values of one workload in one file set
stats() { # file-glob-prefix workload -> "median min max unit" or nothing
    { cat "$1"/round*/"$2" 2>/dev/null || true; } | awk -v w="$3" '$1 == w { print $2, $3 }' | sort -g | awk '
        { v[NR] = $1; u = $2 } END { if (NR == 0) exit; m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%s %s %s %s\n", m, v[1], v[NR], (u == "" ? "s" : u) }'
}
median() { stats "$OUT/$1" "$2" "$3" | awk '{ print $1 }'; }
# middle FORMAT: the median of the numbers on standard input (one a line), printed with FORMAT; nothing if none
middle() { sort -g | awk -v f="$1" '{ v[NR] = $1 } END { if (NR) printf f, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# (no `| head -n1` here: under pipefail the loop's SIGPIPE ended the report after its header)
unit() { local c u; for c in $CONFIGS; do u="$(stats "$OUT/$c" results.txt "$1" | awk '{ print $4 }')"; [[ -n "$u" ]] && { echo "$u"; return; }; done; return 0; }

echo "### Results: median (min-max) over $(ls -d "$OUT"/*/round* 2>/dev/null | sed 's|.*/round||' | sort -u | wc -l) round(s)"
echo
printf '| workload | unit |'; for c in $CONFIGS; do printf ' %s |' "$c"; done; echo
printf '|---|---|'; for c in $CONFIGS; do printf -- '---|'; done; echo
for w in $WORKLOADS; do
    u="$(unit "$w")"; [[ -n "$u" ]] || continue
    printf '| %s | %s |' "$w" "$u"
    for c in $CONFIGS; do
        s="$(stats "$OUT/$c" results.txt "$w")"
        if [[ -n "$s" ]]; then awk '{ printf " %s (%s-%s) |", $1, $2, $3 }' <<<"$s"; else printf ' - |'; fi
    done
    echo
done
echo
# Ratios: throughput A/B; times B/A (so > 1 always means A is faster).
# ratio_table TITLE TSV "A:B ...": the pairs whose both configurations ran; with TSV, lines for the chart too.
ratio_table() {
    local title=$1 tsv=$2 p a b u r w present=()
    for p in $3; do
        a="${p%%:*}" b="${p#*:}"
        [[ " $CONFIGS " == *" $a "* && " $CONFIGS " == *" $b "* ]] && present+=("$p")
    done
    (( ${#present[@]} )) || return 0
    echo "### $title"
    echo
    printf '| workload |'; for p in "${present[@]}"; do printf ' %s / %s |' "${p%%:*}" "${p#*:}"; done; echo
    printf '|---|'; for p in "${present[@]}"; do printf -- '---|'; done; echo
    for w in $WORKLOADS; do
        u="$(unit "$w")"; [[ -n "$u" ]] || continue
        printf '| %s |' "$w"
        for p in "${present[@]}"; do
            a="$(median "${p%%:*}" results.txt "$w")" b="$(median "${p#*:}" results.txt "$w")"
            if [[ -n "$a" && -n "$b" ]]; then
                r="$(awk -v a="$a" -v b="$b" -v u="$u" 'BEGIN { if (a <= 0 || b <= 0) print "-"; else printf "%.2f", (u == "s") ? b / a : a / b }')"
                printf ' %s |' "$r"
                [[ -n "$tsv" && "$r" != - ]] && printf '%s %s vs %s\t%s\n' "$w" "${p%%:*}" "${p#*:}" "$r" >>"$tsv"
            else printf ' - |'; fi
        done
        echo
    done
    echo
}
: >"$OUT/ratios.tsv"
ratio_table "Ratios of medians (> 1: VirtFs faster)" "$OUT/ratios.tsv" \
    "virtfs-none:builtin-none virtfs-mmap:builtin-mmap virtfs-loose:builtin-loose virtfs-none:builtinintx-none virtfs-mmap:builtinintx-mmap virtfs-loose:builtinintx-loose virtfs-none:virtiofsd-never virtfs-mmap:virtiofsd-auto virtfs-loose:virtiofsd-auto"
# The references among themselves: what 9p reaches at all against virtiofs, and what INTx costs the built-in server.
ratio_table "The peers among themselves (> 1: the first faster): 9p's ceiling, the interrupt's cost, the privilege split's cost" "" \
    "builtin-none:virtiofsd-never builtin-mmap:virtiofsd-auto builtinintx-none:builtin-none builtinintx-mmap:builtin-mmap rootless-none:virtfs-none rootless-none:virtiofsd-never rootless-mmap:virtfs-mmap"
# No server at all against the built-in one: the most any server could be faster than the built-in on that row.
ratio_table "The floor (the workload on a tmpfs in the guest) against the servers: the most a server could gain over the built-in" "" \
    "floor-tmpfs:builtin-none floor-tmpfs:virtfs-none floor-tmpfs:builtin-mmap floor-tmpfs:virtfs-mmap"
echo "### Host CPU seconds of the serving processes per workload (median)"
echo
echo "VirtFs: backend + helper; virtiofsd: its process; builtin: QEMU's threads other than the TCG vCPUs (which also"
echo "serve the guest's root filesystem, so the builtin column is an upper bound). Each minus that server's idle"
echo "baseline (its CPU rate while the guest sleeps 5 s before the workloads, times the workload's duration), where the"
echo "run measured one (cpu-raw-seconds.txt has the numbers before it)."
echo
printf '| workload |'; for c in $CONFIGS; do printf ' %s |' "$c"; done; echo
printf '|---|'; for c in $CONFIGS; do printf -- '---|'; done; echo
for w in $WORKLOADS; do
    any=0; line="| $w |"
    for c in $CONFIGS; do
        m="$(median "$c" cpu-seconds.txt "$w")"
        [[ -n "$m" ]] && any=1
        line+=" ${m:--} |"
    done
    if (( any )); then echo "$line"; fi
done

# --latency runs: where each request's time goes. Per round and configuration, latency.txt (the guest's client)
# and backend-latency.txt (VirtFs's backend: queue wait + service) hold "type count microseconds"; the table
# shows the mean per request (median over rounds) and, for VirtFs, how much of it the backend accounts for: the
# rest is the way there and back (kick, interrupt, the guest's own path).
# (grep over the files, not cat | grep -q: under pipefail cat's SIGPIPE would fail the test)
if grep -qs . "$OUT"/*/round*/latency.txt; then
    # mean_us CONFIG FILE TYPE -> median over rounds of that type's mean microseconds per request
    mean_us() {
        local f
        for f in "$OUT/$1"/round*/"$2"; do awk -v t="$3" '$1 == t && $2 > 0 { printf "%.1f\n", $3 / $2 }' "$f" 2>/dev/null; done |
            middle "%.0f"
    }
    # the first configuration's first round that has latencies: its counts and order stand for all (the guest
    # sends every server the same requests)
    FIRST="$(for c in $CONFIGS; do f="$(ls "$OUT/$c"/round*/latency.txt 2>/dev/null | head -n1)"; [[ -s "$f" ]] && { echo "$f"; break; }; done)"
    TYPES="$(sort -k2,2nr "$FIRST" | awk '{ print $1 }' | tr '\n' ' ')"  # most frequent first
    PAIRS=()
    for c in $CONFIGS; do
        [[ "$c" == virtfs-* && " $CONFIGS " == *" builtin-${c#virtfs-} "* ]] && PAIRS+=("$c:builtin-${c#virtfs-}")
    done
    echo "### Guest-side latency per 9p request type (mean microseconds per request, median over rounds)"
    echo
    echo "From the guest client's request trace event to its reply's (\`--latency\`); for VirtFs, \"in backend\" is the"
    echo "backend's own queue wait + service for that type (its exit statistics). The rest of a VirtFs request's time is"
    echo "the path between the guest and the backend: the kick, the backend's thread wake-up, the call eventfd through"
    echo "QEMU's main loop, the interrupt and the guest's own handling."
    echo
    printf '| request | count |'
    for c in $CONFIGS; do printf ' %s |' "$c"; [[ "$c" == virtfs-* ]] && printf ' %s in backend |' "$c"; done
    for p in "${PAIRS[@]}"; do printf ' %s / %s |' "${p#*:}" "${p%%:*}"; done; echo
    printf '|---|---|'
    for c in $CONFIGS; do printf -- '---|'; [[ "$c" == virtfs-* ]] && printf -- '---|'; done
    for p in "${PAIRS[@]}"; do printf -- '---|'; done; echo
    for t in $TYPES; do
        n="$(awk -v t="$t" '$1 == t { print $2 }' "$FIRST")"
        printf '| %s | %s |' "$t" "${n:--}"
        for c in $CONFIGS; do
            m="$(mean_us "$c" latency.txt "$t")"; printf ' %s |' "${m:--}"
            if [[ "$c" == virtfs-* ]]; then m="$(mean_us "$c" backend-latency.txt "$t")"; printf ' %s |' "${m:--}"; fi
        done
        for p in "${PAIRS[@]}"; do
            a="$(mean_us "${p%%:*}" latency.txt "$t")" b="$(mean_us "${p#*:}" latency.txt "$t")"
            awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0 && b > 0) printf " %.2f |", b / a; else printf " - |" }'
        done
        echo
    done
    echo
    echo "(ratios > 1: VirtFs answers that request type faster, as the guest sees it)"
    echo
fi

# --latency runs, per workload (phase-latency.txt: "workload type count microseconds"): how many requests each
# workload sent, how much of its wall time the guest spent waiting for replies, and what is left, the guest's
# own work between requests. That bounds what any server can gain: a vhost-user server that answered every
# request as fast as VirtFs answers its quickest type (its Tclunk, no work at all: the kick, the wake-ups, the
# interrupt, the guest's own path) would take (wall - in requests) + requests x that. Only for workloads that
# wait for one request at a time: where requests overlap (make -j2, fio at depth) their sum exceeds the wall time
# and the bound is left out.
if grep -qs . "$OUT"/*/round*/phase-latency.txt; then
    # phase_total CONFIG WORKLOAD FIELD -> median over rounds of the workload's request count (3) or microseconds (4)
    phase_total() {
        local f
        for f in "$OUT/$1"/round*/phase-latency.txt; do awk -v w="$2" -v k="$3" '$1 == w { s += $k; any = 1 } END { if (any) print s }' "$f"; done |
            middle "%.0f"
    }
    LCONFIGS=(); for c in $CONFIGS; do grep -qs . "$OUT/$c"/round*/phase-latency.txt && LCONFIGS+=("$c"); done
    L0=""
    if [[ " ${LCONFIGS[*]} " == *" virtfs-none "* && " ${LCONFIGS[*]} " == *" builtin-none "* ]]; then
        L0="$(for t in $(awk '{ print $1 }' "$OUT"/virtfs-none/round*/latency.txt | sort -u); do mean_us virtfs-none latency.txt "$t"; echo; done |
            sort -g | awk 'NF { print; exit }')"
        # Requests that change the host's files cost real work in any server: those at the mean of the quickest
        # 9p configuration of this run for that type ("type microseconds" in FASTEST), the rest at L0.
        FASTEST="$(for t in Tlcreate Tmkdir Tunlinkat Trenameat Trename Tsymlink Tlink Tmknod Tsetattr Twrite Tfsync Txattrcreate; do
            for c in "${LCONFIGS[@]}"; do mean_us "$c" latency.txt "$t"; echo; done | sort -g | awk -v t="$t" 'NF { print t, $1; exit }'
        done)"
        BFIRST="$(ls "$OUT"/builtin-none/round*/phase-latency.txt | head -n1)"
    fi
    echo "### Per workload: requests, and the wall time spent waiting for them (median over rounds)"
    echo
    echo "\"in requests\": the sum of the guest's request latencies over the workload, seconds; \"guest's own\": wall time"
    echo "minus that (the guest's work between requests), for the timed workloads with one request at a time."
    if [[ -n "$L0" ]]; then
        echo "\"most over built-in\": built-in wall / (its guest's own + requests x ${L0} us), where ${L0} us is VirtFs's"
        echo "quickest request type in this run (no work in the backend): what a vhost-user server that did no work at all would reach."
        echo "\"... doing the host's changes\": the same, with the requests that change the host's files (create, remove, rename,"
        echo "setattr, write...) at the quickest 9p server's mean for their type in this run."
    fi
    echo
    printf '| workload | requests |'; for c in "${LCONFIGS[@]}"; do printf ' %s: in requests, s | %s: guest'"'"'s own, s |' "$c" "$c"; done
    [[ -n "$L0" ]] && printf ' most over built-in | ... doing the host'"'"'s changes |'; echo
    printf '|---|---|'; for c in "${LCONFIGS[@]}"; do printf -- '---|---|'; done; [[ -n "$L0" ]] && printf -- '---|---|'; echo
    for w in $WORKLOADS; do
        n="$(phase_total "${LCONFIGS[0]}" "$w" 3)"; [[ -n "$n" ]] || continue
        printf '| %s | %s |' "$w" "$n"
        for c in "${LCONFIGS[@]}"; do
            us="$(phase_total "$c" "$w" 4)" wall=""
            [[ "$(unit "$w")" == s ]] && wall="$(median "$c" results.txt "$w")"   # (fio rows are rates, not times)
            awk -v us="$us" -v wall="$wall" 'BEGIN { if (us == "") { printf " - | - |"; exit }
                printf " %.2f |", us / 1e6; if (wall != "" && wall > us / 1e6) printf " %.2f |", wall - us / 1e6; else printf " - |" }'
        done
        if [[ -n "$L0" ]]; then
            us="$(phase_total builtin-none "$w" 4)" wall="" nb="$(phase_total builtin-none "$w" 3)"
            [[ "$(unit "$w")" == s ]] && wall="$(median builtin-none results.txt "$w")"
            awk -v us="$us" -v wall="$wall" -v n="$nb" -v l0="$L0" 'BEGIN {
                if (us == "" || wall == "" || wall <= us / 1e6) { printf " - |"; exit }
                printf " %.2f |", wall / (wall - us / 1e6 + n * l0 / 1e6) }'
            # the workload's requests by type in the built-in's first round (the same in every round and server)
            awk -v w="$w" -v us="$us" -v wall="$wall" -v l0="$L0" 'NR == FNR { fast[$1] = $2; next }
                $1 == w { best += $3 * (($2 in fast) ? fast[$2] : l0) }
                END { if (us == "" || wall == "" || wall <= us / 1e6) printf " - |"; else printf " %.2f |", wall / (wall - us / 1e6 + best / 1e6) }' \
                <(echo "$FASTEST") "$BFIRST"
        fi
        echo
    done
    echo
fi
