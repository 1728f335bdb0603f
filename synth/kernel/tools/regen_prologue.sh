# Sourced by synth/kernel/regen.sh and synth/driver/regen.sh (after `set -euo pipefail`): the C locale, and
# `require_tools TOOL...`, which stops with an install hint when a tool is not on PATH.
export LC_ALL=C

require_tools() {
    local missing=() tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        echo "regen.sh: missing tools: ${missing[*]}" >&2
        echo "regen.sh: install them with: apt-get install -y --no-install-recommends clang-19 lld-19 llvm-19 python3" >&2
        exit 1
    fi
}
