//! pooltag.txt and localtag.txt: parsing, lookup and WinDbg-style descriptions.
