#!/usr/bin/env bash
# Rebuild pooltop's fake Windows kernel fixtures from scratch:
#   synth/kernel/store/ntkrnlmp.pdb/<GUID><age>/ntkrnlmp.pdb     (symbol-store layout)
#   synth/kernel/store/ntoskrnl.exe/<TimeDateStamp><SizeOfImage>/ntoskrnl.exe
#   synth/src/kernels_generated.rs
# and then, through synth/driver/regen.sh, the fake drivers (synth/driver/store, synth/src/drivers_generated.rs).
# Works from any directory; all intermediate files live in a temporary directory outside the repo.
# Output is byte-for-byte reproducible with the Debian 12 packages clang-19 / lld-19 / llvm-19.
# CI: bash synth/kernel/regen.sh && git diff --exit-code synth/
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
synth="$(dirname "$here")"

missing=()
for tool in clang-19 lld-link-19 llvm-pdbutil-19 llvm-readobj-19 python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "regen.sh: missing tools: ${missing[*]}" >&2
    echo "regen.sh: install them with: apt-get install -y --no-install-recommends clang-19 lld-19 llvm-19 python3" >&2
    exit 1
fi

export LC_ALL=C
python3 -B "$here/tools/regen.py" --kernel-dir "$here" --rust-out "$synth/src/kernels_generated.rs"
exec bash "$synth/driver/regen.sh"
