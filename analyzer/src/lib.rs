//! Reading kernel crash dumps, resolving kernel symbols and reproducing `!poolused`.
