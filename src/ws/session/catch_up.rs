//! Reading a room's stored events for one session: one bounded page at a time, so a replay
//! holds no more than a page in memory and goes no faster than the client reads; and through a
//! shared semaphore, so however many replays run at once, they leave connections for the rest.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::domain::{Event, RoomId, Seq};
use crate::store::{PageLimit, Store, StoreError};

type Page = Result<Vec<Event>, StoreError>;
type PageRead = Pin<Box<dyn Future<Output = Page>>>;

/// Most events a replay page holds.
const PAGE_EVENTS: u32 = 256;

/// A replay page holds at most a quarter of the session's byte bound (of text), so a page in
/// hand and what the live queue holds stay within the bound's order.
pub fn page_limit(queue_bytes: usize) -> PageLimit {
    PageLimit {
        events: PAGE_EVENTS,
        bytes: queue_bytes / 4,
    }
}

/// The page being read, if any: its room, the seq it is read after, and the read.
#[derive(Default)]
pub struct CatchUp {
    reading: Option<(RoomId, Seq, PageRead)>,
}

impl CatchUp {
    pub fn is_reading(&self) -> bool {
        self.reading.is_some()
    }

    pub fn start(
        &mut self,
        store: Arc<dyn Store>,
        readers: Arc<Semaphore>,
        room_id: RoomId,
        after: Seq,
        limit: PageLimit,
    ) {
        let read = async move {
            let _turn = readers.acquire_owned().await;
            store.page_after(room_id, after, limit).await
        };
        self.reading = Some((room_id, after, Box::pin(read)));
    }

    /// The page being read, once read, with its room and the seq it was read after; never
    /// resolves while none is.
    pub async fn next(&mut self) -> (RoomId, Seq, Page) {
        let Some((room_id, after, read)) = &mut self.reading else {
            return std::future::pending().await;
        };
        let page = read.await;
        let (room_id, after) = (*room_id, *after);
        self.reading = None;
        (room_id, after, page)
    }
}
