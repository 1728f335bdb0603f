/*
 * nt_pool_globals.c - the kernel globals pooltop looks up, compiled WITHOUT debug info (-g0).
 *
 * Real public ntkrnlmp.pdb files name kernel data only through public symbols (S_PUB32) while
 * carrying full type records. Compiling the definitions here without debug info and the types in
 * nt_pool_types.c with CodeView gives the same shape: publics for every global below, no
 * S_GDATA32 records, and LF_STRUCTURE/LF_FIELDLIST/LF_BITFIELD records for the layouts.
 *
 * The Ki*Filler arrays only move the globals around so that RVAs are non-trivial and differ
 * between eras. Names, widths and presence per era follow the real kernels.
 */
#include "nt_pool_types.h"

#if defined(POOLTOP_ERA_W7_SP1)
#define POOLTOP_NT_BUILD 7601u
#define POOLTOP_TAG_TABLE_CAPACITY 256
#define POOLTOP_DATA_FILLER 0x128
#define POOLTOP_BSS_FILLER_A 0x1f58
#define POOLTOP_BSS_FILLER_B 0x0a38
#elif defined(POOLTOP_ERA_W10_1607)
#define POOLTOP_NT_BUILD 14393u
#define POOLTOP_TAG_TABLE_CAPACITY 640
#define POOLTOP_DATA_FILLER 0x1a8
#define POOLTOP_BSS_FILLER_A 0x2d40
#define POOLTOP_BSS_FILLER_B 0x0910
#elif defined(POOLTOP_ERA_W10_2004)
#define POOLTOP_NT_BUILD 19041u
#define POOLTOP_TAG_TABLE_CAPACITY 1280
#define POOLTOP_DATA_FILLER 0x2e0
#define POOLTOP_BSS_FILLER_A 0x5b20
#define POOLTOP_BSS_FILLER_B 0x1a30
#elif defined(POOLTOP_ERA_W11_21H2)
#define POOLTOP_NT_BUILD 22000u
#define POOLTOP_TAG_TABLE_CAPACITY 2048
#define POOLTOP_DATA_FILLER 0x3f0
#define POOLTOP_BSS_FILLER_A 0x8760
#define POOLTOP_BSS_FILLER_B 0x2c58
#else
#define POOLTOP_NT_BUILD 26100u
#define POOLTOP_TAG_TABLE_CAPACITY 2048
#define POOLTOP_DATA_FILLER 0x470
#define POOLTOP_BSS_FILLER_A 0x9a18
#define POOLTOP_BSS_FILLER_B 0x3e40
#endif

/* ---- initialised data (.data) ---- */

/* 0xF0000000 marks a free (retail) build, as in the real NtBuildNumber. Exported, as in the real kernel. */
__declspec(dllexport) ULONG NtBuildNumber = 0xF0000000u | POOLTOP_NT_BUILD;

UCHAR KiDataFiller[POOLTOP_DATA_FILLER] = {0x4b, 0x69};

/* KDDEBUGGER_DATA64 storage; the dump writer fills it in. */
UCHAR KdDebuggerDataBlock[0x380] = {0x4b, 0x44, 0x42, 0x47};

/* ---- zero-initialised data (.bss); explicit "= 0" makes them definitions, emitted in this order ---- */

UCHAR KiBssFillerA[POOLTOP_BSS_FILLER_A] = {0};

#if defined(POOLTOP_ERA_W7_SP1)
/* As in 7601: the size directly before PoolTrackTable, the big-page pair before both. */
SIZE_T PoolBigPageTableSize = 0;
PPOOL_TRACKER_BIG_PAGES PoolBigPageTable = 0;
PPOOL_TRACKER_TABLE PoolTrackTableExpansion = 0;
SIZE_T PoolTrackTableExpansionSize = 0;
SIZE_T PoolTrackTableMask = 0;
SIZE_T PoolTrackTableSize = 0;
PPOOL_TRACKER_TABLE PoolTrackTable = 0;
PPOOL_TRACKER_TABLE ExPoolTagTables[POOLTOP_TAG_TABLE_CAPACITY] = {0};
PPOOL_TRACKER_TABLE ExpSessionPoolTrackTable = 0;
SIZE_T ExpSessionPoolTrackTableSize = 0;
SIZE_T ExpSessionPoolTrackTableMask = 0;
#elif defined(POOLTOP_ERA_W10_1607)
SIZE_T PoolTrackTableSize = 0;
SIZE_T ExpSessionPoolTrackTableMask = 0;
SIZE_T ExpSessionPoolTrackTableSize = 0;
PPOOL_TRACKER_TABLE ExpSessionPoolTrackTable = 0;
SIZE_T PoolTrackTableMask = 0;
PPOOL_TRACKER_TABLE PoolTrackTableExpansion = 0;
PPOOL_TRACKER_TABLE ExPoolTagTables[POOLTOP_TAG_TABLE_CAPACITY] = {0};
SIZE_T PoolBigPageTableSize = 0;
SIZE_T PoolTrackTableExpansionSize = 0;
PPOOL_TRACKER_BIG_PAGES PoolBigPageTable = 0;
PPOOL_TRACKER_TABLE PoolTrackTable = 0;
#elif defined(POOLTOP_ERA_W10_2004)
SIZE_T PoolTrackTableSize = 0;
PPOOL_TRACKER_TABLE PoolTrackTable = 0;
SIZE_T ExpSessionPoolTrackTableMask = 0;
PPOOL_TRACKER_TABLE PoolTrackTableExpansion = 0;
SIZE_T PoolTrackTableMask = 0;
PPOOL_TRACKER_TABLE ExPoolTagTables[POOLTOP_TAG_TABLE_CAPACITY] = {0};
PPOOL_TRACKER_TABLE ExpSessionPoolTrackTable = 0;
SIZE_T ExpSessionPoolTrackTableSize = 0;
SIZE_T PoolBigPageTableSize = 0;
PPOOL_TRACKER_BIG_PAGES PoolBigPageTable = 0;
SIZE_T PoolTrackTableExpansionSize = 0;
#elif defined(POOLTOP_ERA_W11_24H2)
/* Like 22000, no ExpSessionPoolTrackTable. */
PPOOL_TRACKER_TABLE PoolTrackTable = 0;
SIZE_T PoolTrackTableSize = 0;
PPOOL_TRACKER_TABLE ExPoolTagTables[POOLTOP_TAG_TABLE_CAPACITY] = {0};
SIZE_T PoolTrackTableMask = 0;
SIZE_T ExpSessionPoolTrackTableSize = 0;
SIZE_T ExpSessionPoolTrackTableMask = 0;
PPOOL_TRACKER_BIG_PAGES PoolBigPageTable = 0;
SIZE_T PoolBigPageTableSize = 0;
PPOOL_TRACKER_TABLE PoolTrackTableExpansion = 0;
SIZE_T PoolTrackTableExpansionSize = 0;
#else
/* 22000 has no ExpSessionPoolTrackTable: the session table hangs off MmSessionSpace. */
SIZE_T ExpSessionPoolTrackTableMask = 0;
SIZE_T ExpSessionPoolTrackTableSize = 0;
PPOOL_TRACKER_TABLE ExPoolTagTables[POOLTOP_TAG_TABLE_CAPACITY] = {0};
SIZE_T PoolTrackTableMask = 0;
PPOOL_TRACKER_TABLE PoolTrackTableExpansion = 0;
SIZE_T PoolTrackTableExpansionSize = 0;
PPOOL_TRACKER_BIG_PAGES PoolBigPageTable = 0;
SIZE_T PoolBigPageTableSize = 0;
SIZE_T PoolTrackTableSize = 0;
PPOOL_TRACKER_TABLE PoolTrackTable = 0;
#endif

UCHAR KiBssFillerB[POOLTOP_BSS_FILLER_B] = {0};

/* Exported, as in the real kernel. */
__declspec(dllexport) LIST_ENTRY PsLoadedModuleList = {0};
__declspec(dllexport) PEPROCESS PsInitialSystemProcess = 0;
/* Head of the _EPROCESS.ActiveProcessLinks list (not exported). */
LIST_ENTRY PsActiveProcessHead = {0};
__declspec(dllexport) ULONG KeNumberProcessors = 0;
ULONG PoolHitTag = 0;

/* A LONG on its own cache line, as in the real kernel. */
_Alignas(64) LONG ExpPoolBigEntriesInUse = 0;

#if defined(POOLTOP_SEGMENT_HEAP)
/* The pool's heap state (nodes, heaps) and the heap keys; ExPoolState.HeapManager.Globals points to
 * RtlpHpHeapGlobals. The dump writer fills both in. */
RTLP_HP_HEAP_GLOBALS RtlpHpHeapGlobals = {0};
_Alignas(64) EX_POOL_HEAP_MANAGER_STATE ExPoolState = {0};
#endif

/* ---- code ---- */

/* Stand-ins for two well-known exports; the bodies only keep the globals referenced. */
__declspec(dllexport) void *ExAllocatePoolWithTag(int PoolType, SIZE_T NumberOfBytes, ULONG Tag) {
    (void)PoolType;
    PoolHitTag = Tag;
    return NumberOfBytes != 0 ? (void *)PoolTrackTable : (void *)PoolBigPageTable;
}

__declspec(dllexport) void ExFreePoolWithTag(void *P, ULONG Tag) {
    (void)P;
    PoolHitTag = Tag;
}

/* Image entry point. */
ULONGLONG KiSystemStartup(void) {
    ULONGLONG sum = (ULONGLONG)PoolTrackTable + PoolTrackTableSize + PoolTrackTableMask
        + (ULONGLONG)PoolTrackTableExpansion + PoolTrackTableExpansionSize
        + (ULONGLONG)ExPoolTagTables[0] + KeNumberProcessors + NtBuildNumber
        + (ULONGLONG)PoolBigPageTable + PoolBigPageTableSize + (ULONGLONG)ExpPoolBigEntriesInUse
        + PoolHitTag + (ULONGLONG)PsLoadedModuleList.Flink + KdDebuggerDataBlock[0]
        + ExpSessionPoolTrackTableSize + ExpSessionPoolTrackTableMask
        + KiDataFiller[0] + KiBssFillerA[0] + KiBssFillerB[0]
        + (ULONGLONG)PsActiveProcessHead.Flink + (ULONGLONG)PsInitialSystemProcess;
#if !defined(POOLTOP_WIN11_LAYOUTS)
    sum += (ULONGLONG)ExpSessionPoolTrackTable;
#endif
#if defined(POOLTOP_SEGMENT_HEAP)
    sum += RtlpHpHeapGlobals.HeapKey + ExPoolState.NumberOfPools;
#endif
    return sum;
}

/* Stand-ins for the other two pool allocators drivers import, so that the export directory holds every allocator a
 * driver's import address table is bound to. Defined after the entry point so that the code above keeps its RVAs;
 * the bodies differ from ExAllocatePoolWithTag's so that no two exports share an address. */
__declspec(dllexport) void *ExAllocatePoolWithQuotaTag(int PoolType, SIZE_T NumberOfBytes, ULONG Tag) {
    PoolHitTag = Tag ^ (ULONG)PoolType;
    return NumberOfBytes != 0 ? (void *)PoolBigPageTable : (void *)PoolTrackTableExpansion;
}

__declspec(dllexport) void *ExAllocatePool2(ULONGLONG Flags, SIZE_T NumberOfBytes, ULONG Tag) {
    PoolHitTag = Tag + (ULONG)Flags;
    return NumberOfBytes > PoolBigPageTableSize ? (void *)PoolBigPageTable : (void *)ExPoolTagTables[0];
}

#include "pooltop_globals_asserts.h"
