//! Build-time only: see this crate's Cargo.toml. It holds no code and no
//! other crate may use anything from it.
