#!/usr/bin/env bash
# bench/smoke.sh: the benchmark tooling still works end to end. CI runs it.
#
# Runs bench/compare.sh on a small slice (the UDP and unix-socket groups, 2
# rounds of 0.3 s, no installs, no memory or start-up figures) and checks
# the table it prints: every sockhostd and bare-loop row of those groups is
# there with a rate above zero and no errors, and every sockhostd row has
# its ratio to the bare loop. It says nothing about speed: that is what
# the full bench/compare.sh is for. Exit 0 when all holds, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp) progress=$(mktemp)
trap 'rm -f "$out" "$progress"' EXIT
if ! bash bench/compare.sh --only dgram,unix -r 2 -d 0.3 --no-footprint --no-install >"$out" 2>"$progress"; then
    echo "bench smoke failed: bench/compare.sh exited with an error" >&2
    cat "$progress" "$out" >&2
    exit 1
fi
python3 - "$out" <<'EOF'
import sys

want = {
    ("UDP, one datagram per request", "sockhostd sync"),
    ("UDP, one datagram per request", "bare Rust loop, sync"),
    ("UDP, one datagram per request", "sockhostd thread"),
    ("UDP, one datagram per request", "bare Rust loop, thread"),
    ("unix stream sockets", "sockhostd sync, new connection per request"),
    ("unix stream sockets", "bare Rust loop, sync, new connection per request"),
    ("unix stream sockets", "sockhostd thread, persistent"),
    ("unix stream sockets", "bare Rust loop, thread, persistent"),
}
text = open(sys.argv[1]).read()
seen, problems = set(), []
for line in text.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) < 10 or (cells[0], cells[1]) not in want:
        continue
    row = (cells[0], cells[1])
    seen.add(row)
    rate, errors, ratio = float(cells[2].replace(",", "")), cells[6], cells[7]
    if rate <= 0:
        problems.append(f"{row}: no requests served")
    if errors != "0":
        problems.append(f"{row}: {errors} errors")
    if cells[1].startswith("sockhostd") and "× bare" not in ratio:
        problems.append(f"{row}: no ratio to the bare loop ({ratio!r})")
problems += [f"{row}: missing from the table" for row in sorted(want - seen)]
if problems:
    print("bench smoke failed:\n  " + "\n  ".join(problems) + "\n\n" + text, file=sys.stderr)
    sys.exit(1)
print(f"bench smoke: bench/compare.sh printed all {len(want)} rows, each with requests and no errors")
EOF
