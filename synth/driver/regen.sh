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
# shellcheck source=kernel/tools/regen_prologue.sh
source "$synth/kernel/tools/regen_prologue.sh"

require_tools clang-19 lld-link-19 llvm-dlltool-19 llvm-objdump-19 llvm-pdbutil-19 llvm-readobj-19 python3
exec python3 -B "$here/tools/regen.py" --driver-dir "$here" --rust-out "$synth/src/drivers_generated.rs"
