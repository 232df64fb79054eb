//! How many WebSocket connections each client holds, with a cap.

use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::ClientKey;

pub struct ConnectionCap {
    per_address: usize,
    open: DashMap<ClientKey, usize>,
}

impl ConnectionCap {
    pub fn new(per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            per_address,
            open: DashMap::new(),
        })
    }

    pub fn per_address(&self) -> usize {
        self.per_address
    }

    /// Counts one more connection for the client, unless it already holds its cap.
    pub fn open(self: &Arc<Self>, client: ClientKey) -> Option<OpenConnection> {
        let mut count = self.open.entry(client.clone()).or_insert(0);
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(OpenConnection {
            cap: self.clone(),
            client,
        })
    }

    fn close(&self, client: &ClientKey) {
        if let Entry::Occupied(mut count) = self.open.entry(client.clone()) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
    }
}

/// One counted connection; dropping it, however the session ends, frees its place.
pub struct OpenConnection {
    cap: Arc<ConnectionCap>,
    client: ClientKey,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.cap.close(&self.client);
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn address(last: u8) -> ClientKey {
        ClientKey::Address(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn a_client_holds_at_most_its_cap_and_closing_frees_a_place() {
        let cap = ConnectionCap::new(2);
        let first = cap.open(address(1)).unwrap();
        let _second = cap.open(address(1)).unwrap();
        assert!(cap.open(address(1)).is_none());
        assert!(cap.open(address(2)).is_some(), "the cap is per client");
        assert!(cap.open(ClientKey::Identity("alice".into())).is_some());

        drop(first);

        assert!(cap.open(address(1)).is_some());
    }

    #[test]
    fn a_client_with_no_connection_is_forgotten() {
        let cap = ConnectionCap::new(1);
        drop(cap.open(address(1)));
        assert!(cap.open.is_empty());
    }
}
