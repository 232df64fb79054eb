//! Who a client is, for the limits that are kept per client: its address (taken from a
//! forwarding header only when a configured proxy sent it, never from a header anyone can
//! forge) and how many WebSocket connections that address holds.

mod address;
mod connections;

pub use address::{ClientAddress, ForwardedHeader, TrustedProxies};
pub use connections::{ConnectionCap, OpenConnection};
