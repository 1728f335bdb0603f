/*
 * nt_pool_types.h - freestanding stand-ins for the x64 ntoskrnl pool-tracking types.
 *
 * Written for pooltop's fake-kernel fixtures. Exactly one era macro selects the layouts:
 *   POOLTOP_ERA_W10_1607  NtBuild 14393: 0x28-byte tracker entry, 0x18-byte big-page entry
 *   POOLTOP_ERA_W10_2004  NtBuild 19041: 0x38-byte tracker entry, 0x18-byte big-page entry
 *   POOLTOP_ERA_W11_21H2  NtBuild 22000: 0x50-byte tracker entry, 0x20-byte big-page entry
 * Field names, base types and offsets follow the real public ntkrnlmp.pdb files of those builds
 * (see shared/data/symbols/ntkrnlmp_pool_offsets.csv and the ISF files). The generator
 * (tools/regen.py) checks every offset and size below with _Static_assert against the same table
 * it writes into synth/src/kernels_generated.rs, and re-checks the emitted CodeView records.
 */
#ifndef POOLTOP_NT_POOL_TYPES_H
#define POOLTOP_NT_POOL_TYPES_H

#if defined(POOLTOP_ERA_W10_1607) + defined(POOLTOP_ERA_W10_2004) + defined(POOLTOP_ERA_W11_21H2) != 1
#error "define exactly one of POOLTOP_ERA_W10_1607, POOLTOP_ERA_W10_2004, POOLTOP_ERA_W11_21H2"
#endif

typedef unsigned char UCHAR;
typedef unsigned short USHORT;
typedef long LONG;
typedef unsigned long ULONG;
typedef long long LONGLONG;
typedef unsigned long long ULONGLONG;
typedef ULONGLONG SIZE_T;

/* Opaque in these fixtures: only pointers to them appear. */
struct _EPROCESS;
struct _POOL_LIMIT_TABLE_ENTRY;

typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY *Flink; /* 0x00 */
    struct _LIST_ENTRY *Blink; /* 0x08 */
} LIST_ENTRY, *PLIST_ENTRY;    /* 0x10 */

#if defined(POOLTOP_ERA_W10_1607)
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
#if defined(POOLTOP_ERA_W11_21H2)
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
#if defined(POOLTOP_ERA_W11_21H2)
    LONGLONG AvailableLimit[2];                 /* 0x38 */
    struct _POOL_LIMIT_TABLE_ENTRY *LimitInfo;  /* 0x48 */
#endif
} POOL_TRACKER_TABLE, *PPOOL_TRACKER_TABLE; /* 0x38, or 0x50 in 21H2 */
#endif

typedef struct _POOL_TRACKER_BIG_PAGES {
    volatile ULONGLONG Va;    /* 0x00, bit 0 set = free slot */
    ULONG Key;                /* 0x08 */
    ULONG Pattern : 8;        /* 0x0C bits 0..7 */
    ULONG PoolType : 12;      /* 0x0C bits 8..19 */
    ULONG SlushSize : 12;     /* 0x0C bits 20..31 */
    ULONGLONG NumberOfBytes;  /* 0x10 */
#if defined(POOLTOP_ERA_W11_21H2)
    struct _EPROCESS *ProcessBilled; /* 0x18 */
#endif
} POOL_TRACKER_BIG_PAGES, *PPOOL_TRACKER_BIG_PAGES; /* 0x18, or 0x20 in 21H2 */

/* The x64 pool header, unchanged from Windows 8 to 24H2 (anonymous unions are flattened in CodeView). */
typedef struct _POOL_HEADER {
    union {
        struct {
            USHORT PreviousSize : 8; /* 0x00 bits 0..7 */
            USHORT PoolIndex : 8;    /* 0x00 bits 8..15 */
            USHORT BlockSize : 8;    /* 0x02 bits 0..7 */
            USHORT PoolType : 8;     /* 0x02 bits 8..15 */
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
