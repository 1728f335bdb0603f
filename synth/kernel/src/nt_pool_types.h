/*
 * nt_pool_types.h - freestanding stand-ins for the x64 ntoskrnl pool-tracking types.
 *
 * Written for pooltop's fake-kernel fixtures. Exactly one era macro selects the layouts:
 *   POOLTOP_ERA_W7_SP1    NtBuild  7601: 0x28-byte tracker entry, 0x18-byte big-page entry with a
 *                                        plain ULONG PoolType, _POOL_HEADER as ULONG bitfields
 *   POOLTOP_ERA_W10_1607  NtBuild 14393: 0x28-byte tracker entry, 0x18-byte big-page entry
 *   POOLTOP_ERA_W10_2004  NtBuild 19041: 0x38-byte tracker entry, 0x18-byte big-page entry
 *   POOLTOP_ERA_W11_21H2  NtBuild 22000: 0x50-byte tracker entry, 0x20-byte big-page entry
 *   POOLTOP_ERA_W11_24H2  NtBuild 26100: 0x50-byte tracker entry, 0x20-byte big-page entry whose
 *                                        middle bitfield is PoolFlags
 * Field names, base types and offsets follow the real public ntkrnlmp.pdb files of those builds
 * (see shared/data/symbols/ntkrnlmp_pool_offsets.csv, the ISF files and, for 24H2, the ntdiff
 * headers). The generator (tools/regen.py) checks every offset and size below with _Static_assert
 * against the same table it writes into synth/src/kernels_generated.rs, and re-checks the emitted
 * CodeView records. The process and session types (_KPROCESS, _EPROCESS, _MM_SESSION_SPACE) are
 * generated from that table into pooltop_process_types.h, the segment-heap types of the 19041,
 * 22000 and 26100 eras into pooltop_heap_types.h.
 */
#ifndef POOLTOP_NT_POOL_TYPES_H
#define POOLTOP_NT_POOL_TYPES_H

#if defined(POOLTOP_ERA_W7_SP1) + defined(POOLTOP_ERA_W10_1607) + defined(POOLTOP_ERA_W10_2004) \
    + defined(POOLTOP_ERA_W11_21H2) + defined(POOLTOP_ERA_W11_24H2) != 1
#error "define exactly one of POOLTOP_ERA_W7_SP1, _W10_1607, _W10_2004, _W11_21H2, _W11_24H2"
#endif

/* The kernel pool is a segment heap (nt!ExPoolState) from 19H1 on. */
#if defined(POOLTOP_ERA_W10_2004) || defined(POOLTOP_ERA_W11_21H2) || defined(POOLTOP_ERA_W11_24H2)
#define POOLTOP_SEGMENT_HEAP 1
#endif

/* The 0x50-byte tracker and the 0x20-byte big-page entry (Server 2022 / Windows 11 onwards). */
#if defined(POOLTOP_ERA_W11_21H2) || defined(POOLTOP_ERA_W11_24H2)
#define POOLTOP_WIN11_LAYOUTS 1
#endif

typedef unsigned char UCHAR;
typedef unsigned short USHORT;
typedef long LONG;
typedef unsigned long ULONG;
typedef long long LONGLONG;
typedef unsigned long long ULONGLONG;
typedef ULONGLONG SIZE_T;
typedef void *PVOID;

/* _EPROCESS is defined in pooltop_process_types.h; _POOL_LIMIT_TABLE_ENTRY stays opaque. */
struct _EPROCESS;
struct _POOL_LIMIT_TABLE_ENTRY;

typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY *Flink; /* 0x00 */
    struct _LIST_ENTRY *Blink; /* 0x08 */
} LIST_ENTRY, *PLIST_ENTRY;    /* 0x10 */

#include "pooltop_process_types.h"

/* The segment-heap types of 19041 and later (_EX_POOL_HEAP_MANAGER_STATE, _SEGMENT_HEAP, page
 * segments, range descriptors, LFH/VS subsegments, VS chunk headers), generated from the table;
 * empty for the classic-pool eras. */
#include "pooltop_heap_types.h"

#if defined(POOLTOP_ERA_W7_SP1) || defined(POOLTOP_ERA_W10_1607)
/* x64 from Server 2003 SP1 up to Windows 10 1703. */
typedef struct _POOL_TRACKER_TABLE {
    LONG Key;                 /* 0x00 */
    ULONG NonPagedAllocs;     /* 0x04 */
    ULONG NonPagedFrees;      /* 0x08 */
    ULONGLONG NonPagedBytes;  /* 0x10 */
    ULONG PagedAllocs;        /* 0x18 */
    ULONG PagedFrees;         /* 0x1C */
    ULONGLONG PagedBytes;     /* 0x20 */
} POOL_TRACKER_TABLE, *PPOOL_TRACKER_TABLE; /* 0x28 */
#else
/* x64 from Windows 10 1709: bytes first, all counters 64-bit; Windows 11 adds the pool limits. */
typedef struct _POOL_TRACKER_TABLE {
#if defined(POOLTOP_WIN11_LAYOUTS)
    volatile LONG Key;        /* 0x00 */
#else
    LONG Key;                 /* 0x00 */
#endif
    ULONGLONG NonPagedBytes;  /* 0x08 */
    ULONGLONG NonPagedAllocs; /* 0x10 */
    ULONGLONG NonPagedFrees;  /* 0x18 */
    ULONGLONG PagedBytes;     /* 0x20 */
    ULONGLONG PagedAllocs;    /* 0x28 */
    ULONGLONG PagedFrees;     /* 0x30 */
#if defined(POOLTOP_WIN11_LAYOUTS)
    LONGLONG AvailableLimit[2];                 /* 0x38 */
    struct _POOL_LIMIT_TABLE_ENTRY *LimitInfo;  /* 0x48 */
#endif
} POOL_TRACKER_TABLE, *PPOOL_TRACKER_TABLE; /* 0x38, or 0x50 from 21H2 */
#endif

#if defined(POOLTOP_ERA_W7_SP1)
/* Vista ... 8.1: a whole POOL_TYPE value, no bitfield. */
typedef struct _POOL_TRACKER_BIG_PAGES {
    PVOID Va;                 /* 0x00, bit 0 set = free slot */
    ULONG Key;                /* 0x08 */
    ULONG PoolType;           /* 0x0C */
    SIZE_T NumberOfBytes;     /* 0x10 */
} POOL_TRACKER_BIG_PAGES, *PPOOL_TRACKER_BIG_PAGES; /* 0x18 */
#else
typedef struct _POOL_TRACKER_BIG_PAGES {
    volatile ULONGLONG Va;    /* 0x00, bit 0 set = free slot */
    ULONG Key;                /* 0x08 */
    ULONG Pattern : 8;        /* 0x0C bits 0..7 */
#if defined(POOLTOP_ERA_W11_24H2)
    ULONG PoolFlags : 12;     /* 0x0C bits 8..19: POOL_FLAG_* bits */
#else
    ULONG PoolType : 12;      /* 0x0C bits 8..19 */
#endif
    ULONG SlushSize : 12;     /* 0x0C bits 20..31 */
    ULONGLONG NumberOfBytes;  /* 0x10 */
#if defined(POOLTOP_WIN11_LAYOUTS)
    struct _EPROCESS *ProcessBilled; /* 0x18 */
#endif
} POOL_TRACKER_BIG_PAGES, *PPOOL_TRACKER_BIG_PAGES; /* 0x18, or 0x20 from 21H2 */
#endif

/* The x64 pool header (anonymous unions are flattened in CodeView). Windows 7 types the first four
 * bytes as ULONG bitfields, Windows 8 to 24H2 as two USHORTs: the same bits either way. */
typedef struct _POOL_HEADER {
    union {
        struct {
#if defined(POOLTOP_ERA_W7_SP1)
            ULONG PreviousSize : 8;  /* 0x00 bits 0..7 */
            ULONG PoolIndex : 8;     /* 0x00 bits 8..15 */
            ULONG BlockSize : 8;     /* 0x00 bits 16..23 */
            ULONG PoolType : 8;      /* 0x00 bits 24..31 */
#else
            USHORT PreviousSize : 8; /* 0x00 bits 0..7 */
            USHORT PoolIndex : 8;    /* 0x00 bits 8..15 */
            USHORT BlockSize : 8;    /* 0x02 bits 0..7 */
            USHORT PoolType : 8;     /* 0x02 bits 8..15 */
#endif
        };
        ULONG Ulong1;                /* 0x00 */
    };
    ULONG PoolTag;                   /* 0x04 */
    union {
        struct _EPROCESS *ProcessBilled;     /* 0x08 */
        struct {
            USHORT AllocatorBackTraceIndex;  /* 0x08 */
            USHORT PoolTagHash;              /* 0x0A */
        };
    };
} POOL_HEADER, *PPOOL_HEADER; /* 0x10 */

#endif /* POOLTOP_NT_POOL_TYPES_H */
