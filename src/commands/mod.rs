//! One module per subcommand.

pub mod bigpool;
pub mod demo;
pub mod dump;
pub mod find;
pub mod symbols;
