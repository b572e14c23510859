//! posix-shm's native half, in two layers:
//! - [`core`]: plain Rust over `nix` and `libc` (objects, descriptors,
//!   mappings and their registry, waits, platform quirks); imports nothing
//!   from napi;
//! - [`node`]: the only code that calls Node-API. Every JavaScript entry is
//!   declared once in `node::entries`, and every error reaches JavaScript
//!   through `node::throw`.
//!
//! `core` never imports `node`.

#![deny(clippy::undocumented_unsafe_blocks)]
// The entries are only reached through the addon's registration, which
// unit test builds leave out.
#![cfg_attr(test, allow(dead_code))]

mod core;
mod node;
