//! The boundary: the only code that calls Node-API. It reads JavaScript
//! arguments, calls into `crate::core`, and hands results back, throwing
//! every failure through `throw`.
//!
//! - `entries`: every plain entry, declared once (name, arguments, body,
//!   typings);
//! - `convert`: reading arguments and making return values;
//! - `throw`: the one error route;
//! - `buffers`: external ArrayBuffers over mappings, and the end of their life;
//! - `records`: the objects of numbers entries return;
//! - `channel`: channel handles, views of received messages, and the
//!   asynchronous wait of an end;
//! - `region`: `MappedRegion`, copy-mode access for runtimes that refuse
//!   external buffers (a napi-rs class);
//! - `wait`: `waitInBufferAsync` and the cancelling of waits (napi-rs, for
//!   its threadsafe functions).

pub mod buffers;
pub mod channel;
pub mod convert;
pub mod entries;
pub mod records;
pub mod region;
pub mod throw;
pub mod wait;
