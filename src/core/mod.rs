//! The core: POSIX shared memory in plain Rust over `nix` and `libc`.
//! Nothing here calls Node-API or knows JavaScript values; the boundary
//! (`crate::node`) reads arguments, calls in here, and turns results and
//! `failure::Failure`s into JavaScript. Everything here is unit-tested with
//! `cargo test`, on every platform we build for.
//!
//! Resources are owned by types that release them on `Drop`: descriptors by
//! `OwnedFd` until they are handed to JavaScript (or for good, in the
//! table of [`owner`]), mappings by [`mapping::Mapping`], held in
//! [`registry`] for as long as JavaScript can reach them.

pub mod args;
pub mod channel;
pub mod constants;
pub mod descriptor;
pub mod failure;
pub mod mapping;
pub mod object;
pub mod owner;
pub mod platform;
pub mod probe;
pub mod registry;
pub mod wait;
pub mod word;
