//! How many WebSocket connections each client address holds, with a cap.

use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

pub struct ConnectionCap {
    per_address: usize,
    open: DashMap<IpAddr, usize>,
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

    /// Counts one more connection for the address, unless it already holds its cap.
    pub fn open(self: &Arc<Self>, address: IpAddr) -> Option<OpenConnection> {
        let mut count = self.open.entry(address).or_insert(0);
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(OpenConnection {
            cap: self.clone(),
            address,
        })
    }

    fn close(&self, address: IpAddr) {
        if let Entry::Occupied(mut count) = self.open.entry(address) {
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
    address: IpAddr,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.cap.close(self.address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_cap_and_closing_frees_a_place() {
        let cap = ConnectionCap::new(2);
        let here: IpAddr = [10, 0, 0, 1].into();
        let there: IpAddr = [10, 0, 0, 2].into();
        let first = cap.open(here).unwrap();
        let _second = cap.open(here).unwrap();
        assert!(cap.open(here).is_none());
        assert!(cap.open(there).is_some(), "the cap is per address");

        drop(first);

        assert!(cap.open(here).is_some());
    }

    #[test]
    fn an_address_with_no_connection_is_forgotten() {
        let cap = ConnectionCap::new(1);
        drop(cap.open([10, 0, 0, 1].into()));
        assert!(cap.open.is_empty());
    }
}
