"""Read and rewrite the GUID/age identity of a PE image and its PDB.

Used by regen.py. Everything is parsed structurally (PE headers and the debug directory for the
image; the MSF superblock, block map and stream directory for the PDB), never found by searching
for byte patterns. Python 3 standard library only.

Identity rules (shared/reference/symbols.md section 7.3):
  * image RSDS record: GUID @+4 (on-disk order), Age @+20
  * PDB stream (stream 1): Version @0, Signature @4, Age @8, GUID @12
  * DBI stream (stream 3): VersionSignature @0, VersionHeader @4, Age @8
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

IMAGE_DIRECTORY_ENTRY_EXPORT = 0
IMAGE_DIRECTORY_ENTRY_DEBUG = 6
IMAGE_DEBUG_TYPE_CODEVIEW = 2
PE32_PLUS_MAGIC = 0x20B
MSF_MAGIC = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\x00\x00\x00"
PDB_STREAM = 1
DBI_STREAM = 3
NIL_STREAM_SIZE = 0xFFFFFFFF


class PatchError(Exception):
    """A structural problem in the image or the PDB."""


def _u16(data: bytes | bytearray, off: int) -> int:
    return struct.unpack_from("<H", data, off)[0]


def _u32(data: bytes | bytearray, off: int) -> int:
    return struct.unpack_from("<I", data, off)[0]


@dataclass
class Section:
    name: str
    virtual_address: int
    virtual_size: int
    raw_pointer: int
    raw_size: int
    characteristics: int = 0


@dataclass
class PeInfo:
    """The PE facts the generator needs."""

    time_date_stamp: int
    size_of_image: int
    image_base: int
    sections: list[Section]
    rsds_file_offset: int
    rsds_guid: bytes
    rsds_age: int
    rsds_path: str
    # The export directory's DLL name, or None when the image exports nothing (a driver).
    export_dll_name: str | None


def _rva_to_offset(sections: list[Section], rva: int, length: int) -> int:
    for s in sections:
        span = max(s.virtual_size, s.raw_size)
        if s.virtual_address <= rva and rva + length <= s.virtual_address + span:
            delta = rva - s.virtual_address
            if delta + length > s.raw_size:
                raise PatchError(f"RVA {rva:#x}+{length:#x} lies in the uninitialised part of {s.name}")
            return s.raw_pointer + delta
    raise PatchError(f"RVA {rva:#x} is in no section")


def parse_pe(image: bytes | bytearray) -> PeInfo:
    """Parse the PE32+ headers, the CodeView debug entry and the export directory name (if any)."""
    if image[:2] != b"MZ":
        raise PatchError("image: no MZ signature")
    nt = _u32(image, 0x3C)
    if image[nt : nt + 4] != b"PE\0\0":
        raise PatchError(f"image: no PE signature at {nt:#x}")
    coff = nt + 4
    num_sections = _u16(image, coff + 2)
    time_date_stamp = _u32(image, coff + 4)
    opt_size = _u16(image, coff + 16)
    opt = coff + 20
    if _u16(image, opt) != PE32_PLUS_MAGIC:
        raise PatchError("image: optional header is not PE32+")
    image_base = struct.unpack_from("<Q", image, opt + 24)[0]
    size_of_image = _u32(image, opt + 56)
    num_dirs = _u32(image, opt + 108)
    dirs = opt + 112
    if num_dirs <= IMAGE_DIRECTORY_ENTRY_DEBUG:
        raise PatchError("image: no debug data directory")
    sections = []
    sec = opt + opt_size
    for i in range(num_sections):
        h = sec + 40 * i
        sections.append(
            Section(
                name=image[h : h + 8].rstrip(b"\0").decode("ascii"),
                virtual_size=_u32(image, h + 8),
                virtual_address=_u32(image, h + 12),
                raw_size=_u32(image, h + 16),
                raw_pointer=_u32(image, h + 20),
                characteristics=_u32(image, h + 36),
            )
        )

    dbg_rva = _u32(image, dirs + 8 * IMAGE_DIRECTORY_ENTRY_DEBUG)
    dbg_size = _u32(image, dirs + 8 * IMAGE_DIRECTORY_ENTRY_DEBUG + 4)
    if dbg_rva == 0 or dbg_size % 28 != 0:
        raise PatchError(f"image: bad debug directory (rva {dbg_rva:#x}, size {dbg_size:#x})")
    dbg = _rva_to_offset(sections, dbg_rva, dbg_size)
    rsds = None
    for k in range(dbg_size // 28):
        e = dbg + 28 * k
        if _u32(image, e + 12) == IMAGE_DEBUG_TYPE_CODEVIEW:
            size_of_data = _u32(image, e + 16)
            address_of_raw_data = _u32(image, e + 20)
            pointer_to_raw_data = _u32(image, e + 24)
            if _rva_to_offset(sections, address_of_raw_data, size_of_data) != pointer_to_raw_data:
                raise PatchError("image: CodeView AddressOfRawData and PointerToRawData disagree")
            rsds = (pointer_to_raw_data, size_of_data)
            break
    if rsds is None:
        raise PatchError("image: no CodeView debug directory entry")
    off, size = rsds
    if size < 25 or image[off : off + 4] != b"RSDS":
        raise PatchError("image: CodeView entry is not an RSDS record")
    path = bytes(image[off + 24 : off + size]).split(b"\0", 1)[0].decode("ascii")

    exp_rva = _u32(image, dirs + 8 * IMAGE_DIRECTORY_ENTRY_EXPORT)
    dll_name = None
    if exp_rva != 0:
        exp = _rva_to_offset(sections, exp_rva, 40)
        name_off = _rva_to_offset(sections, _u32(image, exp + 12), 1)
        dll_name = bytes(image[name_off : name_off + 64]).split(b"\0", 1)[0].decode("ascii")

    return PeInfo(
        time_date_stamp=time_date_stamp,
        size_of_image=size_of_image,
        image_base=image_base,
        sections=sections,
        rsds_file_offset=off,
        rsds_guid=bytes(image[off + 4 : off + 20]),
        rsds_age=_u32(image, off + 20),
        rsds_path=path,
        export_dll_name=dll_name,
    )


def patch_pe_identity(image: bytearray, guid: bytes, age: int) -> None:
    """Rewrite the GUID and age of the image's RSDS record in place."""
    info = parse_pe(image)
    image[info.rsds_file_offset + 4 : info.rsds_file_offset + 20] = guid
    struct.pack_into("<I", image, info.rsds_file_offset + 20, age)


@dataclass
class Msf:
    """A parsed MSF 7.00 container: block size and every stream's size and block list."""

    block_size: int
    stream_sizes: list[int]
    stream_blocks: list[list[int]]

    def stream_offset(self, stream: int, offset: int, length: int) -> int:
        """File offset of `length` bytes at `offset` in `stream` (must not cross a block)."""
        if stream >= len(self.stream_sizes) or self.stream_sizes[stream] == NIL_STREAM_SIZE:
            raise PatchError(f"pdb: stream {stream} does not exist")
        if offset + length > self.stream_sizes[stream]:
            raise PatchError(f"pdb: stream {stream} is shorter than {offset + length} bytes")
        index, within = divmod(offset, self.block_size)
        if within + length > self.block_size:
            raise PatchError(f"pdb: field at stream {stream}+{offset:#x} crosses a block boundary")
        return self.stream_blocks[stream][index] * self.block_size + within


def parse_msf(pdb: bytes | bytearray) -> Msf:
    """Parse the superblock, the block map and the stream directory."""
    if pdb[: len(MSF_MAGIC)] != MSF_MAGIC:
        raise PatchError("pdb: not an MSF 7.00 file")
    block_size, _free_map, num_blocks, dir_bytes, _unknown, block_map_addr = struct.unpack_from(
        "<6I", pdb, 32
    )
    if block_size not in (512, 1024, 2048, 4096):
        raise PatchError(f"pdb: bad block size {block_size}")
    if num_blocks * block_size != len(pdb):
        raise PatchError(f"pdb: {num_blocks} blocks of {block_size} bytes but the file has {len(pdb)} bytes")

    def block(n: int) -> bytes:
        if n >= num_blocks:
            raise PatchError(f"pdb: block {n} is out of range")
        return bytes(pdb[n * block_size : (n + 1) * block_size])

    dir_block_count = -(-dir_bytes // block_size)
    block_map = block(block_map_addr)
    dir_blocks = struct.unpack_from(f"<{dir_block_count}I", block_map, 0)
    directory = b"".join(block(n) for n in dir_blocks)[:dir_bytes]
    num_streams = _u32(directory, 0)
    sizes = list(struct.unpack_from(f"<{num_streams}I", directory, 4))
    pos = 4 + 4 * num_streams
    blocks = []
    for size in sizes:
        count = 0 if size == NIL_STREAM_SIZE else -(-size // block_size)
        blocks.append(list(struct.unpack_from(f"<{count}I", directory, pos)))
        pos += 4 * count
    if pos != dir_bytes:
        raise PatchError(f"pdb: stream directory is {dir_bytes} bytes but describes {pos}")
    return Msf(block_size=block_size, stream_sizes=sizes, stream_blocks=blocks)


@dataclass
class PdbIdentity:
    """GUID (on-disk order) and the two ages of a PDB."""

    guid: bytes
    pdb_stream_age: int
    dbi_age: int


def read_pdb_identity(pdb: bytes | bytearray) -> PdbIdentity:
    """Read the GUID and ages from the PDB stream and the DBI stream."""
    msf = parse_msf(pdb)
    info = msf.stream_offset(PDB_STREAM, 0, 28)
    dbi = msf.stream_offset(DBI_STREAM, 0, 12)
    if _u32(pdb, dbi) != 0xFFFFFFFF:
        raise PatchError("pdb: DBI stream has no new-format header")
    return PdbIdentity(
        guid=bytes(pdb[info + 12 : info + 28]),
        pdb_stream_age=_u32(pdb, info + 8),
        dbi_age=_u32(pdb, dbi + 8),
    )


def patch_pdb_identity(pdb: bytearray, guid: bytes, pdb_stream_age: int, dbi_age: int) -> None:
    """Rewrite the GUID and age in the PDB stream and the age in the DBI stream, in place."""
    read_pdb_identity(pdb)  # validates both headers
    msf = parse_msf(pdb)
    info = msf.stream_offset(PDB_STREAM, 0, 28)
    dbi = msf.stream_offset(DBI_STREAM, 0, 12)
    struct.pack_into("<I", pdb, info + 8, pdb_stream_age)
    pdb[info + 12 : info + 28] = guid
    struct.pack_into("<I", pdb, dbi + 8, dbi_age)


def guid_store_form(guid: bytes) -> str:
    """GUID in symbol-store field order: Data1 %08X, Data2 %04X, Data3 %04X, Data4 8x%02X."""
    if len(guid) != 16:
        raise PatchError("GUID must be 16 bytes")
    d1, d2, d3 = struct.unpack_from("<IHH", guid, 0)
    return f"{d1:08X}{d2:04X}{d3:04X}" + "".join(f"{b:02X}" for b in guid[8:])
