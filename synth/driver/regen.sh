#!/usr/bin/env bash
# Rebuild pooltop's fake kernel-mode drivers from the C sources in synth/driver/src:
#   synth/driver/store/<name>.pdb/<GUID><age>/<name>.pdb     (symbol-store layout)
#   synth/driver/store/<name>.sys/<TimeDateStamp><SizeOfImage>/<name>.sys
#   synth/src/drivers_generated.rs                            (the allocation ground truth)
# Works from any directory; all intermediate files live in a temporary directory outside the repo.
# Output is byte-for-byte reproducible with the Debian 12 packages clang-19 / lld-19 / llvm-19.
# synth/kernel/regen.sh runs this script too, so CI's `bash synth/kernel/regen.sh && git diff --exit-code synth/`
# covers the drivers.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
synth="$(dirname "$here")"

missing=()
for tool in clang-19 lld-link-19 llvm-dlltool-19 llvm-objdump-19 llvm-pdbutil-19 llvm-readobj-19 python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "regen.sh: missing tools: ${missing[*]}" >&2
    echo "regen.sh: install them with: apt-get install -y --no-install-recommends clang-19 lld-19 llvm-19 python3" >&2
    exit 1
fi

export LC_ALL=C
exec python3 -B "$here/tools/regen.py" --driver-dir "$here" --rust-out "$synth/src/drivers_generated.rs"
