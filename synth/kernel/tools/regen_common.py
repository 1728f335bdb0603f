"""What synth/kernel/tools/regen.py and synth/driver/tools/regen.py share.

Both build a PE image and its PDB twice with clang-19/lld-link-19, rewrite the GUID and age with
pdbpatch.py, check the identity with llvm-pdbutil and llvm-readobj, lay the files out as a symbol store
and write a Rust table the way rustfmt would lay it out. Python 3 standard library only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NoReturn, Sequence

import pdbpatch

CLANG = "clang-19"
LLD_LINK = "lld-link-19"
PDBUTIL = "llvm-pdbutil-19"
READOBJ = "llvm-readobj-19"

IMAGE_BASE = 0x140000000

# The Rust text is laid out the way rustfmt (edition 2024, max width 100) would lay it out, so that
# `cargo fmt` leaves the generated files alone (the modules are also marked #[rustfmt::skip]).
MAX_WIDTH = 100


class RegenError(Exception):
    pass


def run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RegenError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def run_main(main: Callable[[], int]) -> NoReturn:
    """Runs a generator's main and turns its expected failures into one line on stderr."""
    try:
        sys.exit(main())
    except (RegenError, pdbpatch.PatchError) as err:
        print(f"regen: error: {err}", file=sys.stderr)
        sys.exit(1)


# ---------------------------------------------------------------------------------------------
# Build, patch, check


@dataclass
class Built:
    image: bytes
    pdb: bytes
    map_text: str


def build_twice(name: str, work: Path, build: Callable[[Path], Built]) -> Built:
    """Builds in two differently named directories below `work` and insists on identical results."""
    first = build(work / "a")
    second = build(work / "second-build-elsewhere")
    if (first.image, first.pdb, first.map_text) != (second.image, second.pdb, second.map_text):
        raise RegenError(f"{name}: two builds in different directories differ (not reproducible)")
    return first


@dataclass(frozen=True)
class Identity:
    """The GUID and ages a generated image/PDB pair must carry, and the PDB name in the RSDS record."""

    name: str
    guid: bytes
    age: int
    pdb_stream_age: int
    pdb_name: str


def patch_identity(ident: Identity, built: Built) -> tuple[bytes, bytes, pdbpatch.PeInfo]:
    """lld's image and PDB with `ident` written into the RSDS record, the PDB stream and the DBI stream."""
    image = bytearray(built.image)
    pdb = bytearray(built.pdb)
    before = pdbpatch.parse_pe(image)
    lld = pdbpatch.read_pdb_identity(pdb)
    if before.rsds_guid != lld.guid or before.rsds_age != lld.dbi_age:
        raise RegenError(f"{ident.name}: lld's image and PDB do not match before patching")
    pdbpatch.patch_pe_identity(image, ident.guid, ident.age)
    pdbpatch.patch_pdb_identity(pdb, ident.guid, ident.pdb_stream_age, ident.age)
    info = pdbpatch.parse_pe(image)
    after = pdbpatch.read_pdb_identity(pdb)
    if (info.rsds_guid, info.rsds_age, info.rsds_path) != (ident.guid, ident.age, ident.pdb_name):
        raise RegenError(f"{ident.name}: RSDS patch did not take")
    if (after.guid, after.pdb_stream_age, after.dbi_age) != (ident.guid, ident.pdb_stream_age, ident.age):
        raise RegenError(f"{ident.name}: PDB patch did not take")
    return bytes(image), bytes(pdb), info


def write_check_dir(check_dir: Path, files: dict[str, bytes]) -> None:
    """A fresh directory holding `files` (name -> bytes) for the LLVM tools to read."""
    check_dir.mkdir()
    for name, data in files.items():
        (check_dir / name).write_bytes(data)


def guid_text(guid: bytes) -> str:
    s = pdbpatch.guid_store_form(guid)
    return f"{{{s[0:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:32]}}}"


def check_pdb_identity(ident: Identity, dump: str, yaml: str) -> None:
    """`dump` is `llvm-pdbutil dump --summary`, `yaml` is `llvm-pdbutil pdb2yaml --dbi-stream`."""
    if f"GUID: {guid_text(ident.guid)}" not in dump:
        raise RegenError(f"{ident.name}: llvm-pdbutil reports another GUID")
    if not re.search(rf"^\s+Age: {ident.pdb_stream_age}$", dump, re.M):
        raise RegenError(f"{ident.name}: llvm-pdbutil reports another PDB-stream age")
    dbi = re.search(r"DbiStream:\n(?:.*\n)*?\s+Age:\s+(\d+)", yaml)
    if not dbi or int(dbi.group(1)) != ident.age:
        raise RegenError(f"{ident.name}: llvm-pdbutil reports another DBI age")


def check_rsds(ident: Identity, readobj: str) -> None:
    """`readobj` is `llvm-readobj --coff-debug-directory` of the image."""
    if f"PDBGUID: {guid_text(ident.guid)}" not in readobj or f"PDBAge: {ident.age}\n" not in readobj:
        raise RegenError(f"{ident.name}: llvm-readobj reports another RSDS GUID/age")
    if f"PDBFileName: {ident.pdb_name}\n" not in readobj:
        raise RegenError(f"{ident.name}: RSDS name is not {ident.pdb_name}")


# ---------------------------------------------------------------------------------------------
# Symbol store


class StoreEntry:
    """An image and its PDB under their symbol-store keys; subclasses provide the attributes below."""

    image: bytes
    pdb: bytes
    info: pdbpatch.PeInfo

    @property
    def identity(self) -> Identity:
        raise NotImplementedError

    @property
    def image_name(self) -> str:
        raise NotImplementedError

    @property
    def pdb_key(self) -> str:
        return pdbpatch.guid_store_form(self.identity.guid) + f"{self.identity.age:X}"

    @property
    def image_key(self) -> str:
        return f"{self.info.time_date_stamp:08X}{self.info.size_of_image:x}"

    @property
    def pdb_store_path(self) -> str:
        pdb_name = self.identity.pdb_name
        return f"{pdb_name}/{self.pdb_key}/{pdb_name}"

    @property
    def image_store_path(self) -> str:
        return f"{self.image_name}/{self.image_key}/{self.image_name}"


def publish(entries: Sequence[StoreEntry], tmp: Path, store_dir: Path, rust_out: Path, rust: str) -> None:
    """Writes the store below `tmp` first, then replaces `store_dir` with it and writes `rust` to `rust_out`."""
    store = tmp / "store"
    for e in entries:
        for rel, data in ((e.pdb_store_path, e.pdb), (e.image_store_path, e.image)):
            path = store / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    # Only now touch the repository.
    if store_dir.exists():
        shutil.rmtree(store_dir)
    shutil.copytree(store, store_dir)
    rust_out.write_text(rust)


# ---------------------------------------------------------------------------------------------
# Rust text


def wrap_items(items: Sequence[str], indent: str) -> list[str]:
    """`items` as rows of `item, item,` that fit MAX_WIDTH after `indent` (the indent is not included)."""
    rows, cur = [], ""
    for item in items:
        cand = f"{cur} {item}," if cur else f"{item},"
        if len(indent) + len(cand) > MAX_WIDTH:
            rows.append(cur)
            cand = f"{item},"
        cur = cand
    rows.append(cur)
    return rows


def rust_call_lines(indent: str, key: str, macro: str, arg: str) -> list[str]:
    """`key: macro("arg"),` on one line, or over three as rustfmt breaks it."""
    line = f'{indent}{key}: {macro}("{arg}"),'
    if len(line) <= MAX_WIDTH:
        return [line]
    return [f"{indent}{key}: {macro}(", f'{indent}    "{arg}"', f"{indent}),"]


def rust_byte_array_lines(indent: str, key: str, data: bytes) -> list[str]:
    """`key: [0x.., ..],` on one line, or wrapped as rustfmt wraps it."""
    items = [f"0x{b:02x}" for b in data]
    line = f"{indent}{key}: [{', '.join(items)}],"
    if len(line) <= MAX_WIDTH:
        return [line]
    inner = indent + "    "
    return [f"{indent}{key}: ["] + [f"{inner}{r}" for r in wrap_items(items, inner)] + [f"{indent}],"]
