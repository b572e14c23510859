//! The native core of posix-shm: thin Node-API entries over POSIX shared
//! memory. Numbers in, numbers out; every entry checks its arguments again
//! (the TypeScript facade checks them first) so that no input can panic or
//! reach a system call unchecked.
//!
//! Resources are owned by types that release them on `Drop`: descriptors by
//! `OwnedFd` until they are handed to JavaScript (or for good, in the
//! table of [`owner`]), mappings by [`mapping::Mapping`]
//! held in [`registry`] for as long as JavaScript can reach them.

#![deny(clippy::undocumented_unsafe_blocks)]
// The `#[napi]` entries are only reached through the addon's registration,
// which unit test builds leave out.
#![cfg_attr(test, allow(dead_code))]

mod args;
mod constants;
mod errors;
mod external;
mod fast_calls;
mod fd;
mod mapping;
mod mmap;
mod owner;
mod platform;
mod region;
mod registry;
mod shm;
mod wait;
mod words;
