/* cachedrv.sys: a block cache whose .text spans three pages (the two page-aligned functions below each
   start a page), so that a test can leave one page of its code out of a dump. Its index allocator is
   pageable code in the PAGE section. */
#include "pooltop_wdk.h"

static PVOID CdIndex, CdReadAheadBuffer, CdBlock, CdMeta, CdStats;

POOLTOP_NOINLINE POOLTOP_PAGED_CODE PVOID CdAllocateIndex(SIZE_T entries)
{
    CdIndex = ExAllocatePoolWithTag(PagedPool, entries * 0x10, 'xIdC'); /* site:CdIx */
    return CdIndex;
}

POOLTOP_NOINLINE PVOID CdReadAhead(SIZE_T size)
{
    CdReadAheadBuffer = ExAllocatePool2(POOL_FLAG_NON_PAGED, size, 'kBdC'); /* site:CdBk */
    return CdReadAheadBuffer;
}

POOLTOP_NOINLINE POOLTOP_PAGE_ALIGNED PVOID CdAllocateBlock(SIZE_T size)
{
    CdBlock = ExAllocatePool2(POOL_FLAG_PAGED, size, 'kBdC'); /* site:CdBk */
    return CdBlock;
}

POOLTOP_NOINLINE PVOID CdAllocateStatistics(void)
{
    CdStats = ExAllocatePoolWithTag(NonPagedPoolNx, 0x80, 'sMdC'); /* site:CdMs */
    return CdStats;
}

POOLTOP_NOINLINE POOLTOP_PAGE_ALIGNED PVOID CdAllocateBlockMetadata(SIZE_T size)
{
    CdMeta = ExAllocatePoolWithQuotaTag(NonPagedPoolNx, size, 'kBdC'); /* site:CdBk */
    return CdMeta;
}

POOLTOP_NOINLINE void CdFlush(void)
{
    ExFreePoolWithTag(CdStats, 'sMdC');
    ExFreePoolWithTag(CdBlock, 'kBdC');
}

NTSTATUS DriverEntry(DRIVER_OBJECT *driver, UNICODE_STRING *registry)
{
    (void)driver;
    (void)registry;
    if (CdAllocateIndex(64) == 0) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    CdReadAhead(0x4000);
    CdAllocateBlock(0x10000);
    CdAllocateStatistics();
    CdAllocateBlockMetadata(0x100);
    if (CdMeta == 0) {
        CdFlush();
    }
    return STATUS_SUCCESS;
}
