/*
 * nt_pool_types.c - the translation unit compiled WITH CodeView debug info. It defines no data
 * and no code: -fno-eliminate-unused-debug-types (with -fstandalone-debug) makes clang emit the
 * complete type records of nt_pool_types.h, which lld-link merges into the PDB's TPI stream.
 */
#include "nt_pool_types.h"

#include "pooltop_layout_asserts.h"
