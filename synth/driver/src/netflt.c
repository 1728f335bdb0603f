/* netflt.sys: a network filter that allocates through its own wrapper (tag in edx), reads one tag from its
   configuration data, borrows tcpip's endpoint tag and keeps a firmware image under an unprintable tag. */
#include "pooltop_wdk.h"

ULONG NfConfigTag = 'gCfN';
static ULONG NfAllocations;
static PVOID NfContext, NfRules, NfEndpoint, NfConfig, NfMicrocode;

/* The wrapper: every caller's tag reaches ExAllocatePoolWithTag in a register, not as an immediate. */
POOLTOP_NOINLINE PVOID NfAllocate(SIZE_T size, ULONG tag)
{
    PVOID block = ExAllocatePoolWithTag(NonPagedPoolNx, size, tag); /* wrapper-body */
    if (block != 0) {
        NfAllocations++;
    }
    return block;
}

POOLTOP_NOINLINE PVOID NfCreateFilterContext(void)
{
    NfContext = NfAllocate(0x180, 'xCfN'); /* wrapped:NfCx */
    return NfContext;
}

POOLTOP_NOINLINE PVOID NfCreateRuleBuffer(SIZE_T rules)
{
    NfRules = NfAllocate(rules * 0x20, 'bRfN'); /* wrapped:NfRb */
    return NfRules;
}

POOLTOP_NOINLINE PVOID NfCreateEndpoint(void)
{
    NfEndpoint = ExAllocatePoolWithTag(NonPagedPoolNx, 0x240, 'EpcT'); /* site:TcpE */
    return NfEndpoint;
}

POOLTOP_NOINLINE PVOID NfLoadConfig(void)
{
    NfConfig = ExAllocatePoolWithTag(PagedPool, 0x400, NfConfigTag); /* memory:NfCg */
    return NfConfig;
}

POOLTOP_NOINLINE PVOID NfLoadMicrocode(SIZE_T size)
{
    NfMicrocode = ExAllocatePoolWithTag(NonPagedPool, size, 0x3184); /* site:0x00003184 */
    return NfMicrocode;
}

POOLTOP_NOINLINE void NfUnload(void)
{
    ExFreePoolWithTag(NfEndpoint, 'EpcT');
    ExFreePoolWithTag(NfMicrocode, 0x3184);
}

NTSTATUS DriverEntry(DRIVER_OBJECT *driver, UNICODE_STRING *registry)
{
    (void)driver;
    (void)registry;
    if (NfCreateFilterContext() == 0 || NfCreateRuleBuffer(16) == 0) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    NfCreateEndpoint();
    NfLoadConfig();
    NfLoadMicrocode(0x2000);
    if (NfAllocations > 100) {
        NfUnload();
    }
    return STATUS_SUCCESS;
}
