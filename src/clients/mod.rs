//! Who a client is, for the limits that are kept per client: its identity when it signed in,
//! else its address (taken from a forwarding header only when a configured proxy sent it,
//! never from a header anyone can forge); how many WebSocket connections each one holds; and
//! how many frames it may send.

mod address;
mod connections;
pub mod frames;

use std::net::IpAddr;
use std::sync::Arc;

pub use address::ClientAddress;
pub use connections::{ConnectionCap, OpenConnection};

/// What per-client limits count by. Behind one address (a NAT, an office) signed-in people
/// each get their own quota; anyone without a valid token shares their address's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A token's `sub`.
    Identity(Arc<str>),
    Address(IpAddr),
}
