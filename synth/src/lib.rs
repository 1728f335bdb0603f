//! Synthetic 64-bit Windows kernel crash dumps built from a ground-truth model.
