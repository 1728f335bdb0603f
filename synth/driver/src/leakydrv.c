/* leakydrv.sys: the demo's leaking driver. Every request context (Lk01) and completion buffer (Lk02) it
   allocates is kept forever; Dmx9 maps are charged to the requesting process. */
#include "pooltop_wdk.h"

typedef struct _LK_REQUEST {
    struct _LK_REQUEST *Next;
    ULONG Id;
    UCHAR Payload[0x4C];
} LK_REQUEST;

static LK_REQUEST *LkRequests;
static ULONG LkNextId;
static PVOID LkBuffers[4];
static PVOID LkDmaMap;

POOLTOP_NOINLINE LK_REQUEST *LkCreateRequest(void)
{
    LK_REQUEST *request = ExAllocatePoolWithTag(NonPagedPoolNx, sizeof(LK_REQUEST), '10kL'); /* site:Lk01 */
    if (request != 0) {
        request->Id = ++LkNextId;
        request->Next = LkRequests;
        LkRequests = request;
    }
    return request;
}

POOLTOP_NOINLINE LK_REQUEST *LkCloneRequest(const LK_REQUEST *original)
{
    LK_REQUEST *clone = ExAllocatePoolWithTag(NonPagedPoolNx, sizeof(LK_REQUEST), '10kL'); /* site:Lk01 */
    if (clone != 0) {
        *clone = *original;
        clone->Next = LkRequests;
        LkRequests = clone;
    }
    return clone;
}

POOLTOP_NOINLINE PVOID LkAllocateCompletionBuffer(SIZE_T size)
{
    PVOID buffer = ExAllocatePool2(POOL_FLAG_NON_PAGED, size, '20kL'); /* site:Lk02 */
    LkBuffers[0] = buffer;
    return buffer;
}

POOLTOP_NOINLINE PVOID LkAllocatePagedCompletionBuffer(SIZE_T size)
{
    PVOID buffer = ExAllocatePool2(POOL_FLAG_PAGED, size, '20kL'); /* site:Lk02 */
    LkBuffers[1] = buffer;
    return buffer;
}

POOLTOP_NOINLINE PVOID LkChargeDmaMap(SIZE_T pages)
{
    LkDmaMap = ExAllocatePoolWithQuotaTag(NonPagedPool, pages * 0x1000, '9xmD'); /* site:Dmx9 */
    return LkDmaMap;
}

POOLTOP_NOINLINE void LkFreeRequest(LK_REQUEST *request)
{
    ExFreePoolWithTag(request, '10kL');
}

/* Never called: the compiler drops it, so the tag is in the source but not in the binary. */
static __attribute__((unused)) PVOID LkUnusedDiagnostics(void)
{
    return ExAllocatePoolWithTag(PagedPool, 0x100, 'dUkL'); /* source-only:LkUd */
}

NTSTATUS DriverEntry(DRIVER_OBJECT *driver, UNICODE_STRING *registry)
{
    (void)driver;
    (void)registry;
    LK_REQUEST *first = LkCreateRequest();
    if (first == 0) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    LkCloneRequest(first);
    LkAllocateCompletionBuffer(0x200);
    LkAllocatePagedCompletionBuffer(0x1000);
    LkChargeDmaMap(4);
    LkFreeRequest(LkCreateRequest());
    return STATUS_SUCCESS;
}
