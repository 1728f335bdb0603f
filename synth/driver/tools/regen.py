"""Build pooltop's fake kernel-mode drivers (x64 .sys + full PDB) and their allocation ground truth.

Run through ../regen.sh (which synth/kernel/regen.sh calls). For every driver in DRIVERS this script
  1. compiles its C source from ../src with clang (CodeView line info) and links it with lld-link
     against an ntoskrnl.exe import library made by llvm-dlltool from IMPORTS, twice, in two
     differently named directories, and insists on identical bytes,
  2. rewrites the GUID and age (image RSDS, PDB stream, DBI stream; ../../kernel/tools/pdbpatch.py),
  3. derives the ground truth of every allocation call site WITHOUT any pooltop code:
       - the tag, its kind and its source line come from marker comments in the C source
         (`/* site:Lk01 */` and friends, see MARKER), and the constant on the marker's line is
         checked against the marker;
       - the call's RVA comes from llvm-objdump's disassembly of the linked image (every reference
         to an allocator's IAT slot, whose RVA comes from lld's /map file, and every call of a
         wrapper), and the instruction that loads the tag register is checked there;
       - llvm-pdbutil's line table must put each call on its marker's line and in the expected
         source file, and the enclosing function comes from the map file;
  4. checks the identity with llvm-pdbutil and llvm-readobj,
and finally replaces synth/driver/store/ (a symbol store) and synth/src/drivers_generated.rs.
Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kernel" / "tools"))
import pdbpatch  # noqa: E402
from regen_common import (  # noqa: E402
    CLANG,
    IMAGE_BASE,
    LLD_LINK,
    PDBUTIL,
    READOBJ,
    Built,
    Identity,
    RegenError,
    StoreEntry,
    build_twice,
    check_pdb_identity,
    check_rsds,
    patch_identity,
    publish,
    run,
    run_main,
    rust_byte_array_lines,
    rust_call_lines,
    write_check_dir,
)

DLLTOOL = "llvm-dlltool-19"
OBJDUMP = "llvm-objdump-19"
# What the PDB's line table names as the source directory: /pdbsourcepath plus the relative path
# the compiler was given. A fixed fake checkout path, the same on every machine.
PDB_SOURCE_ROOT = "C:\\pooltop\\synth\\driver"
REPO_SOURCE_DIR = "synth/driver/src"
HEADER = "pooltop_wdk.h"
# The kernel exports the drivers import (the import library is made from this list).
IMPORTS = ("ExAllocatePoolWithTag", "ExAllocatePoolWithQuotaTag", "ExAllocatePool2", "ExFreePoolWithTag")
ALLOCATORS = ("ExAllocatePoolWithTag", "ExAllocatePoolWithQuotaTag", "ExAllocatePool2")
# How far before a call the instruction that sets the tag register may be (as the scanners look).
TAG_WINDOW = 64

IMAGE_SCN_MEM_EXECUTE = 0x20000000


@dataclass(frozen=True)
class Driver:
    """One fake driver: `<name>.c` in ../src becomes `<name>.sys` and `<name>.pdb`.

    `age` is the RSDS and DBI-stream age; `pdb_stream_age` the PDB-stream age (one higher for a
    driver whose PDB went through a symbol server, as the fake kernels' PDBs)."""

    name: str
    age: int
    pdb_stream_age: int
    description: str

    @property
    def image_name(self) -> str:
        return f"{self.name}.sys"

    @property
    def pdb_name(self) -> str:
        return f"{self.name}.pdb"

    @property
    def source(self) -> str:
        return f"{self.name}.c"

    @property
    def guid(self) -> bytes:
        return hashlib.sha256(f"pooltop fake driver {self.image_name}".encode()).digest()[:16]

    @property
    def identity(self) -> Identity:
        return Identity(self.name, self.guid, self.age, self.pdb_stream_age, self.pdb_name)


# The order is the order of `drivers::planted_drivers()`, which is API (tests index it): append only.
DRIVERS = (
    Driver("leakydrv", 1, 1, "the demo's leaking driver: Lk01 (2 sites), Lk02 (ExAllocatePool2, 2 sites), Dmx9 (quota)"),
    Driver("netflt", 3, 3, "a wrapper taking the tag in edx, a tag read from .data, tcpip's TcpE, unprintable 0x3184"),
    Driver("cachedrv", 0x12, 0x13, ".text over three pages, a PAGE section, CdBk on two pages"),
)

# `/* kind:TAG */` on the line of the call. TAG is four printable characters (memory order) or
# 0x%08X (the ULONG value). Kinds:
#   site         call qword ptr [rip+IAT] of an allocator, tag in r8d from `mov r8d, imm32`
#   memory       the same call, r8d loaded from a global (`mov r8d, dword ptr [rip+X]`)
#   wrapped      call rel32 of a wrapper function, tag in edx from `mov edx, imm32`
#   wrapper-body the allocator call inside a wrapper (no TAG: r8d comes from edx)
#   source-only  in the source, dropped by the compiler: the tag bytes must not be in the image
MARKER = re.compile(r"/\* (site|memory|wrapped|source-only):(\S+) \*/|/\* (wrapper-body) \*/")
KIND_RUST = {"site": "Immediate", "memory": "FromMemory", "wrapped": "ViaWrapper", "wrapper-body": "WrapperBody"}


# ---------------------------------------------------------------------------------------------
# Source markers


@dataclass(frozen=True)
class Marker:
    kind: str
    tag: bytes | None
    line: int


def parse_tag(text: str, where: str) -> bytes:
    if re.fullmatch(r"0x[0-9A-F]{8}", text):
        return int(text, 16).to_bytes(4, "little")
    if len(text) == 4 and all(0x21 <= ord(c) < 0x7F for c in text):
        return text.encode("ascii")
    raise RegenError(f"{where}: marker tag {text!r} is neither 4 printable characters nor 0x%08X")


def constant_tags(line: str) -> list[bytes]:
    """The tags a C line spells: multi-character constants (reversed) and hex literals."""
    tags = [m.group(1)[::-1].encode("ascii") for m in re.finditer(r"'([^'\\]{4})'", line)]
    code = line.split("/*", 1)[0]
    tags += [int(m.group(0), 16).to_bytes(4, "little") for m in re.finditer(r"\b0x[0-9A-Fa-f]+\b", code)
             if int(m.group(0), 16) < 1 << 32]
    return tags


def parse_markers(source: str, name: str) -> dict[int, Marker]:
    markers = {}
    for number, text in enumerate(source.splitlines(), start=1):
        found = list(MARKER.finditer(text))
        if not found:
            continue
        if len(found) > 1:
            raise RegenError(f"{name}:{number}: more than one marker on a line")
        m = found[0]
        kind = m.group(1) or m.group(3)
        tag = parse_tag(m.group(2), f"{name}:{number}") if m.group(2) else None
        if kind in ("site", "wrapped", "source-only") and tag not in constant_tags(text):
            raise RegenError(f"{name}:{number}: the line does not spell the marker's tag {m.group(2)}")
        markers[number] = Marker(kind, tag, number)
    if not markers:
        raise RegenError(f"{name}: no markers")
    return markers


# ---------------------------------------------------------------------------------------------
# Build


def build(driver: Driver, src_dir: Path, work: Path) -> Built:
    (work / "src").mkdir(parents=True)
    for name in (HEADER, driver.source):
        shutil.copyfile(src_dir / name, work / "src" / name)
    (work / "ntoskrnl.def").write_text("LIBRARY ntoskrnl.exe\nEXPORTS\n" + "".join(f"    {f}\n" for f in IMPORTS))
    run([DLLTOOL, "-m", "i386:x86-64", "-d", "ntoskrnl.def", "-l", "ntoskrnl.lib"], work)
    obj = f"{driver.name}.obj"
    run(
        [
            CLANG,
            "--target=x86_64-pc-windows-msvc",
            "-O2",
            "-ffreestanding",
            "-fno-builtin",
            "-fno-stack-protector",
            "-funwind-tables",
            "-ffile-compilation-dir=.",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wno-multichar",
            "-Isrc",
            "-g",
            "-gcodeview",
            "-gno-codeview-command-line",
            "-c",
            "-o",
            obj,
            f"src/{driver.source}",
        ],
        work,
    )
    run(
        [
            LLD_LINK,
            "/nologo",
            "/nodefaultlib",
            "/driver:wdm",
            "/subsystem:native",
            "/entry:DriverEntry",
            f"/base:{IMAGE_BASE:#x}",
            "/opt:ref",
            "/opt:noicf",
            "/debug",
            f"/pdb:{driver.pdb_name}",
            f"/pdbaltpath:{driver.pdb_name}",
            f"/pdbsourcepath:{PDB_SOURCE_ROOT}",
            "/Brepro",
            f"/map:{driver.name}.map",
            f"/out:{driver.image_name}",
            obj,
            "ntoskrnl.lib",
        ],
        work,
    )
    return Built(
        image=(work / driver.image_name).read_bytes(),
        pdb=(work / driver.pdb_name).read_bytes(),
        map_text=(work / f"{driver.name}.map").read_text(),
    )


def parse_map(text: str) -> dict[str, int]:
    """RVAs of every symbol in an lld-link /map file (publics and statics)."""
    m = re.search(r"Preferred load address is ([0-9a-fA-F]+)", text)
    if not m or int(m.group(1), 16) != IMAGE_BASE:
        raise RegenError("map: unexpected or missing preferred load address")
    rvas: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if (
            len(fields) >= 4
            and re.fullmatch(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{8}", fields[0])
            and re.fullmatch(r"[0-9a-fA-F]{16}", fields[2])
        ):
            name, va = fields[1], int(fields[2], 16)
            if name in rvas:
                raise RegenError(f"map: {name} listed twice")
            rvas[name] = va - IMAGE_BASE
    if not rvas:
        raise RegenError("map: no symbols found")
    return rvas


# ---------------------------------------------------------------------------------------------
# Disassembly and line table (LLVM tools only)


@dataclass(frozen=True)
class Insn:
    rva: int
    raw: bytes
    mnemonic: str
    operands: str
    target: int | None  # RVA named by llvm-objdump's `# 0x...` comment or a direct branch target

    @property
    def dest(self) -> str:
        return self.operands.split(",", 1)[0].strip()

    @property
    def source(self) -> str:
        parts = self.operands.split(",", 1)
        return parts[1].strip() if len(parts) > 1 else ""


INSN_LINE = re.compile(r"^\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)\s*(\S+)\s*([^#]*?)\s*(?:#\s*0x([0-9a-f]+).*)?$")


def disassemble(image_path: Path) -> list[Insn]:
    out = run([OBJDUMP, "-d", "-M", "intel", str(image_path)], image_path.parent)
    insns = []
    for line in out.splitlines():
        m = INSN_LINE.match(line)
        if not m:
            continue
        va = int(m.group(1), 16)
        raw = bytes.fromhex(m.group(2).replace(" ", ""))
        operands = m.group(4)
        target = int(m.group(5), 16) - IMAGE_BASE if m.group(5) else None
        branch = re.fullmatch(r"0x([0-9a-f]+)(?: <.*>)?", operands)
        if target is None and branch and m.group(3) in ("call", "jmp"):
            target = int(branch.group(1), 16) - IMAGE_BASE
        insns.append(Insn(va - IMAGE_BASE, raw, m.group(3), operands, target))
    if not insns:
        raise RegenError(f"{image_path.name}: llvm-objdump printed no instructions")
    return insns


@dataclass
class LineTable:
    file: str
    # (start rva, end rva, [(rva, line)]) per contribution
    ranges: list[tuple[int, int, list[tuple[int, int]]]] = field(default_factory=list)

    def line_of(self, rva: int) -> int | None:
        for start, end, entries in self.ranges:
            if start <= rva < end:
                best = None
                for at, line in entries:
                    if at <= rva:
                        best = line
                return best
        return None


def line_table(pdb_path: Path, sections: list[pdbpatch.Section]) -> LineTable:
    out = run([PDBUTIL, "dump", "-l", str(pdb_path)], pdb_path.parent)
    files = re.findall(r"^(\S.*\.c) \(MD5: [0-9A-F]+\)$", out, re.M)
    if len(files) != 1:
        raise RegenError(f"{pdb_path.name}: expected one source file in the line table, found {files}")
    table = LineTable(files[0])
    blocks = re.finditer(
        r"^\s+([0-9A-F]{4}):([0-9A-F]{8})-([0-9A-F]{8}), line/addr entries = (\d+)\n((?:\s+\d+ [0-9A-F]{8} !?.*\n)+)",
        out,
        re.M,
    )
    for b in blocks:
        base = sections[int(b.group(1), 16) - 1].virtual_address
        entries = [(base + int(a, 16), int(n)) for n, a in re.findall(r"(\d+) ([0-9A-F]{8})", b.group(5))]
        if len(entries) != int(b.group(4)):
            raise RegenError(f"{pdb_path.name}: line block at {b.group(1)}:{b.group(2)} lists {len(entries)} entries")
        table.ranges.append((base + int(b.group(2), 16), base + int(b.group(3), 16), entries))
    if not table.ranges:
        raise RegenError(f"{pdb_path.name}: no line information")
    return table


# ---------------------------------------------------------------------------------------------
# Ground truth


@dataclass(frozen=True)
class Site:
    tag: bytes | None
    allocator: str
    kind: str
    rva: int
    tag_rva: int
    function: str
    file: str
    line: int


def function_of(rva: int, functions: list[tuple[int, str]]) -> str:
    best = None
    for start, name in functions:
        if start <= rva:
            best = name
    if best is None:
        raise RegenError(f"RVA {rva:#x} is before every function")
    return best


def tag_setter(insns: list[Insn], index: int, registers: tuple[str, ...], function_start: int) -> Insn:
    """The nearest instruction before insns[index] (same function, within TAG_WINDOW bytes) that writes one
    of `registers`."""
    call = insns[index]
    for insn in reversed(insns[:index]):
        if insn.rva < function_start or call.rva - insn.rva > TAG_WINDOW:
            break
        if insn.mnemonic in ("call", "jmp", "ret") or insn.mnemonic.startswith("j"):
            break
        if insn.mnemonic in ("cmp", "test", "push"):
            continue
        if insn.dest in registers:
            return insn
    raise RegenError(f"no write of {registers[0]} within {TAG_WINDOW} bytes before the call at {call.rva:#x}")


def ground_truth(
    driver: Driver,
    markers: dict[int, Marker],
    image: bytes,
    insns: list[Insn],
    symbols: dict[str, int],
    lines: LineTable,
    info: pdbpatch.PeInfo,
) -> list[Site]:
    text_ranges = [
        (s.virtual_address, s.virtual_address + s.virtual_size)
        for s in info.sections
        if s.characteristics & IMAGE_SCN_MEM_EXECUTE
    ]
    functions = sorted(
        (rva, name)
        for name, rva in symbols.items()
        if not name.startswith("__imp_") and any(a <= rva < b for a, b in text_ranges)
    )
    slots = {symbols[f"__imp_{a}"]: a for a in ALLOCATORS if f"__imp_{a}" in symbols}
    expected_file = f"{PDB_SOURCE_ROOT}\\src\\{driver.source}"
    if lines.file != expected_file:
        raise RegenError(f"{driver.name}: the PDB names {lines.file!r}, expected {expected_file!r}")

    def file_at(rva: int) -> int:
        for s in info.sections:
            if s.virtual_address <= rva < s.virtual_address + s.raw_size:
                return s.raw_pointer + rva - s.virtual_address
        raise RegenError(f"{driver.name}: RVA {rva:#x} has no file bytes")

    # Allocator calls: every reference to an allocator's IAT slot must be `call qword ptr [rip+disp32]`.
    found: list[tuple[int, str, str]] = []  # (insn index, allocator, how)
    for i, insn in enumerate(insns):
        if insn.target in slots:
            if not (insn.mnemonic == "call" and insn.raw[:2] == b"\xff\x15" and len(insn.raw) == 6):
                raise RegenError(
                    f"{driver.name}: {slots[insn.target]} is used by `{insn.mnemonic} {insn.operands}` at "
                    f"{insn.rva:#x}; only direct IAT calls (FF 15) are planted"
                )
            found.append((i, slots[insn.target], "iat"))
    body_functions = set()
    for i, _, _ in found:
        line = lines.line_of(insns[i].rva)
        if line in markers and markers[line].kind == "wrapper-body":
            body_functions.add(function_of(insns[i].rva, functions))
    wrapper_allocator = {}
    for i, allocator, _ in found:
        name = function_of(insns[i].rva, functions)
        if name in body_functions:
            wrapper_allocator[name] = allocator
    wrappers = {symbols[name]: name for name in body_functions}
    for i, insn in enumerate(insns):
        if insn.mnemonic in ("call", "jmp") and insn.target in wrappers:
            if not (insn.mnemonic == "call" and insn.raw[0] == 0xE8 and len(insn.raw) == 5):
                raise RegenError(f"{driver.name}: wrapper reached by `{insn.mnemonic} {insn.operands}` at {insn.rva:#x}")
            found.append((i, wrapper_allocator[wrappers[insn.target]], "wrapper"))

    sites = []
    used_lines = set()
    for i, allocator, how in sorted(found):
        call = insns[i]
        function = function_of(call.rva, functions)
        line = lines.line_of(call.rva)
        marker = markers.get(line)
        if marker is None:
            raise RegenError(f"{driver.name}: call at {call.rva:#x} ({function}) is on line {line}, which has no marker")
        if line in used_lines:
            raise RegenError(f"{driver.name}:{line}: more than one call on a marker line")
        used_lines.add(line)
        start = symbols[function]
        if how == "wrapper":
            if marker.kind != "wrapped":
                raise RegenError(f"{driver.name}:{line}: wrapper call under a {marker.kind} marker")
            setter = tag_setter(insns, i, ("edx", "rdx"), start)
            if not (setter.mnemonic == "mov" and setter.dest == "edx" and setter.raw[0] == 0xBA and len(setter.raw) == 5):
                raise RegenError(f"{driver.name}:{line}: edx is set by `{setter.mnemonic} {setter.operands}`")
            value = int.from_bytes(setter.raw[1:5], "little")
        else:
            setter = tag_setter(insns, i, ("r8d", "r8"), start)
            if marker.kind == "site":
                if not (setter.mnemonic == "mov" and setter.raw[:2] == b"\x41\xb8" and len(setter.raw) == 6):
                    raise RegenError(f"{driver.name}:{line}: r8d is set by `{setter.mnemonic} {setter.operands}`")
                value = int.from_bytes(setter.raw[2:6], "little")
            elif marker.kind == "memory":
                if not (setter.mnemonic == "mov" and setter.source.startswith("dword ptr [rip +") and setter.target is not None):
                    raise RegenError(f"{driver.name}:{line}: r8d is set by `{setter.mnemonic} {setter.operands}`")
                value = int.from_bytes(image[file_at(setter.target) : file_at(setter.target) + 4], "little")
            elif marker.kind == "wrapper-body":
                if (setter.mnemonic, setter.operands.replace(" ", "")) != ("mov", "r8d,edx"):
                    raise RegenError(f"{driver.name}:{line}: r8d is set by `{setter.mnemonic} {setter.operands}`")
                value = None
            else:
                raise RegenError(f"{driver.name}:{line}: allocator call under a {marker.kind} marker")
        if value is not None and value.to_bytes(4, "little") != marker.tag:
            raise RegenError(f"{driver.name}:{line}: the code passes {value:#010x}, the marker says {marker.tag!r}")
        sites.append(
            Site(
                tag=marker.tag,
                allocator=allocator,
                kind=KIND_RUST[marker.kind],
                rva=call.rva,
                tag_rva=setter.target if marker.kind == "memory" else setter.rva,
                function=function,
                file=lines.file,
                line=line,
            )
        )
    for line, marker in markers.items():
        if marker.kind == "source-only":
            if image.count(marker.tag) != 0:
                raise RegenError(f"{driver.name}:{line}: source-only tag {marker.tag!r} is in the image")
        elif line not in used_lines:
            raise RegenError(f"{driver.name}:{line}: no call found for the {marker.kind} marker")
    return sites


# ---------------------------------------------------------------------------------------------
# Per-driver pipeline


@dataclass
class Result(StoreEntry):
    driver: Driver
    image: bytes
    pdb: bytes
    info: pdbpatch.PeInfo
    sites: list[Site]
    source_only: list[bytes]

    @property
    def identity(self) -> Identity:
        return self.driver.identity

    @property
    def image_name(self) -> str:
        return self.driver.image_name


def check_identity(driver: Driver, check_dir: Path, info: pdbpatch.PeInfo) -> None:
    pdb_path = check_dir / driver.pdb_name
    dump = run([PDBUTIL, "dump", "--summary", str(pdb_path)], check_dir)
    yaml = run([PDBUTIL, "pdb2yaml", "--dbi-stream", str(pdb_path)], check_dir)
    check_pdb_identity(driver.identity, dump, yaml)
    out = run([READOBJ, "--file-headers", "--coff-debug-directory", "--coff-imports", str(check_dir / driver.image_name)], check_dir)
    check_rsds(driver.identity, out)
    if "Subsystem: IMAGE_SUBSYSTEM_NATIVE" not in out or "IMAGE_DLL_CHARACTERISTICS_WDM_DRIVER" not in out:
        raise RegenError(f"{driver.name}: not a native WDM driver image")
    if "Name: ntoskrnl.exe" not in out:
        raise RegenError(f"{driver.name}: does not import from ntoskrnl.exe")
    if info.image_base != IMAGE_BASE or info.export_dll_name is not None:
        raise RegenError(f"{driver.name}: image base {info.image_base:#x} or unexpected exports")


def make_driver(driver: Driver, src_dir: Path, tmp: Path) -> Result:
    first = build_twice(driver.name, tmp / driver.name, lambda work: build(driver, src_dir, work))
    image, pdb, info = patch_identity(driver.identity, first)

    check_dir = tmp / driver.name / "check"
    write_check_dir(check_dir, {driver.pdb_name: pdb, driver.image_name: image})
    check_identity(driver, check_dir, info)

    source = (src_dir / driver.source).read_text()
    markers = parse_markers(source, driver.source)
    insns = disassemble(check_dir / driver.image_name)
    lines = line_table(check_dir / driver.pdb_name, info.sections)
    sites = ground_truth(driver, markers, image, insns, parse_map(first.map_text), lines, info)
    source_only = [m.tag for m in markers.values() if m.kind == "source-only"]
    return Result(driver, image, pdb, info, sites, source_only)


# ---------------------------------------------------------------------------------------------
# Rust table (laid out as rustfmt would; drivers.rs also marks the module #[rustfmt::skip])


def rust_tag(tag: bytes) -> str:
    if all(0x20 <= b < 0x7F and b not in (0x22, 0x5C) for b in tag):
        return f'*b"{tag.decode("ascii")}"'
    return "[" + ", ".join(f"0x{b:02x}" for b in tag) + "]"


def rust_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tag_summary(r: Result) -> list[tuple[bytes, int, int, int, int]]:
    """(tag, immediate call sites, wrapper calls, calls reading the tag from memory, raw count in the file)."""
    tags = sorted({s.tag for s in r.sites if s.tag is not None})
    out = []
    for tag in tags:
        count = lambda kind: sum(1 for s in r.sites if s.tag == tag and s.kind == kind)  # noqa: E731
        raw = sum(1 for i in range(len(r.image) - 3) if r.image[i : i + 4] == tag)
        out.append((tag, count("Immediate"), count("ViaWrapper"), count("FromMemory"), raw))
    return out


def rust_table(results: list[Result]) -> str:
    out = [
        "// @generated by synth/driver/regen.sh (tools/regen.py). Do not edit: edit the generator or the",
        "// C sources and rerun it. Tags and lines come from the marker comments in synth/driver/src, RVAs",
        "// from llvm-objdump's disassembly of the linked images (checked against llvm-pdbutil's line table).",
        "",
        "use super::{PlantedAllocator, PlantedDriver, PlantedSection, PlantedSite, PlantedTag, SiteKind};",
        "",
        "/// Every fake driver, in the generator's DRIVERS order (new drivers are appended).",
        f"pub(super) static DRIVERS: [PlantedDriver; {len(results)}] = [",
    ]
    for r in results:
        d = r.driver
        i2, i3, i4 = " " * 8, " " * 12, " " * 16
        out += ["    PlantedDriver {", f'{i2}name: "{d.image_name}",']
        out += rust_call_lines(i2, "image", "include_bytes!", f"../driver/store/{r.image_store_path}")
        out.append(f'{i2}image_store_path: "{r.image_store_path}",')
        out.append(f'{i2}pdb_name: "{d.pdb_name}",')
        out += rust_call_lines(i2, "pdb", "include_bytes!", f"../driver/store/{r.pdb_store_path}")
        out.append(f'{i2}pdb_store_path: "{r.pdb_store_path}",')
        out.append(f'{i2}pdb_store_key: "{r.pdb_key}",')
        out += rust_byte_array_lines(i2, "guid", d.guid)
        out += [
            f"{i2}age: {d.age:#x},",
            f"{i2}pdb_stream_age: {d.pdb_stream_age:#x},",
            f"{i2}image_base: {IMAGE_BASE:#x},",
            f"{i2}size_of_image: {r.info.size_of_image:#x},",
            f"{i2}time_date_stamp: {r.info.time_date_stamp:#010x},",
            f'{i2}source_path: "{REPO_SOURCE_DIR}/{d.source}",',
            f"{i2}sections: &[",
        ]
        for s in r.info.sections:
            out += [
                f"{i3}PlantedSection {{",
                f'{i4}name: "{s.name}",',
                f"{i4}rva: {s.virtual_address:#x},",
                f"{i4}virtual_size: {s.virtual_size:#x},",
                f"{i4}executable: {'true' if s.characteristics & IMAGE_SCN_MEM_EXECUTE else 'false'},",
                f"{i3}}},",
            ]
        out += [f"{i2}],", f"{i2}sites: &["]
        for s in r.sites:
            tag = "None" if s.tag is None else f"Some({rust_tag(s.tag)})"
            out += [
                f"{i3}PlantedSite {{",
                f"{i4}tag: {tag},",
                f"{i4}allocator: PlantedAllocator::{s.allocator},",
                f"{i4}kind: SiteKind::{s.kind},",
                f"{i4}rva: {s.rva:#x},",
                f"{i4}tag_rva: {s.tag_rva:#x},",
                f'{i4}function: "{s.function}",',
                f"{i4}file: {rust_str(s.file)},",
                f"{i4}line: {s.line},",
                f"{i3}}},",
            ]
        out += [f"{i2}],", f"{i2}tags: &["]
        for tag, immediate, wrapped, memory, raw in tag_summary(r):
            out += [
                f"{i3}PlantedTag {{",
                f"{i4}tag: {rust_tag(tag)},",
                f"{i4}call_sites: {immediate},",
                f"{i4}via_wrapper: {wrapped},",
                f"{i4}from_memory: {memory},",
                f"{i4}raw: {raw},",
                f"{i3}}},",
            ]
        out.append(f"{i2}],")
        only = ", ".join(rust_tag(t) for t in r.source_only)
        out.append(f"{i2}source_only_tags: &[{only}],")
        out.append("    },")
    out.append("];")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver-dir", type=Path, required=True, help="synth/driver")
    parser.add_argument("--rust-out", type=Path, required=True, help="synth/src/drivers_generated.rs")
    args = parser.parse_args()
    driver_dir = args.driver_dir.resolve()
    src_dir = driver_dir / "src"

    with tempfile.TemporaryDirectory(prefix="pooltop-drivers-") as tmp_name:
        tmp = Path(tmp_name)
        results = [make_driver(d, src_dir, tmp) for d in DRIVERS]
        publish(results, tmp, driver_dir / "store", args.rust_out, rust_table(results))

    for r in results:
        print(f"{r.driver.image_name:12} {len(r.sites)} sites  {r.pdb_store_path}  {r.image_store_path}")
    return 0


if __name__ == "__main__":
    run_main(main)
