/* The few kernel declarations pooltop's fake drivers use, written for pooltop (no WDK headers).
   Multi-character constants are written as MSVC drivers write them: 'ThpK' is the tag "KphT" in memory. */
#ifndef POOLTOP_WDK_H
#define POOLTOP_WDK_H

typedef unsigned char UCHAR;
typedef unsigned long ULONG;
typedef unsigned long long ULONG64;
typedef unsigned long long SIZE_T;
typedef long NTSTATUS;
typedef void *PVOID;

typedef enum _POOL_TYPE {
    NonPagedPool = 0,
    PagedPool = 1,
    NonPagedPoolNx = 512,
} POOL_TYPE;

#define POOL_FLAG_NON_PAGED 0x40ULL
#define POOL_FLAG_PAGED 0x100ULL

#define STATUS_SUCCESS ((NTSTATUS)0)
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009AL)

#define NTKERNELAPI __declspec(dllimport)
#define POOLTOP_NOINLINE __declspec(noinline)
#define POOLTOP_PAGED_CODE __declspec(code_seg("PAGE"))
#define POOLTOP_PAGE_ALIGNED __attribute__((aligned(4096)))

NTKERNELAPI PVOID ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
NTKERNELAPI PVOID ExAllocatePoolWithQuotaTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
NTKERNELAPI PVOID ExAllocatePool2(ULONG64 Flags, SIZE_T NumberOfBytes, ULONG Tag);
NTKERNELAPI void ExFreePoolWithTag(PVOID P, ULONG Tag);

typedef struct _DRIVER_OBJECT DRIVER_OBJECT;
typedef struct _UNICODE_STRING UNICODE_STRING;

#endif
