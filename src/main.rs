//! pooltop: Windows kernel pool leak finder.
fn main() {}
