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
# shellcheck source=kernel/tools/regen_prologue.sh
source "$synth/kernel/tools/regen_prologue.sh"

require_tools clang-19 lld-link-19 llvm-pdbutil-19 llvm-readobj-19 python3
python3 -B "$here/tools/regen.py" --kernel-dir "$here" --rust-out "$synth/src/kernels_generated.rs"
exec bash "$synth/driver/regen.sh"
