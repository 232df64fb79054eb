//! One session's outbound queue, bounded in events and in bytes. Fan-out only ever tries to
//! queue: a session whose queue is full by either bound is signalled to close with 1013 and
//! never holds up anyone else, and no reader, however slow, makes the server hold more than
//! the byte bound of events for it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;

use super::outbound::Outbound;

/// A queue that held more than this many items gives their room back once it is drained:
/// an idle session keeps no buffer sized for the burst it once had.
const KEPT_CAPACITY: usize = 16;

/// A new session's queue: the handle fan-out delivers through, and the end the session drains.
///
/// A lock around a `VecDeque`, not a channel: tokio's bounded channel costs every session
/// about 1.1 KiB before anything is queued (its cache-padded halves and a first block of 32
/// slots), this about 100 bytes; both bounds are checked under the lock that queues.
pub fn member_queue(events: usize, bytes: usize) -> (MemberHandle, MemberQueue) {
    let shared = Arc::new(Shared {
        items: Mutex::new(Items::default()),
        max_events: events,
        max_bytes: bytes,
        slow: CancellationToken::new(),
    });
    (
        MemberHandle {
            shared: shared.clone(),
        },
        MemberQueue { shared },
    )
}

#[derive(Debug)]
struct Shared {
    items: Mutex<Items>,
    max_events: usize,
    max_bytes: usize,
    slow: CancellationToken,
}

impl Shared {
    fn items(&self) -> MutexGuard<'_, Items> {
        // Nothing that holds the lock can panic halfway through a change.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default)]
struct Items {
    queued: VecDeque<Outbound>,
    /// What `queued` weighs against the byte bound.
    bytes: usize,
    /// The session's task, waiting for an item.
    waker: Option<Waker>,
    /// The session is gone: nothing is queued any more.
    closed: bool,
}

impl Items {
    fn take(&mut self) -> Option<Outbound> {
        let item = self.queued.pop_front()?;
        self.bytes -= item.bytes();
        if self.queued.is_empty() && self.queued.capacity() > KEPT_CAPACITY {
            self.queued = VecDeque::new();
        }
        Some(item)
    }
}

/// How fan-out reaches one session.
#[derive(Debug, Clone)]
pub struct MemberHandle {
    shared: Arc<Shared>,
}

impl MemberHandle {
    pub(super) fn deliver(&self, item: Outbound, slow_consumers: &Counter) {
        let shared = &self.shared;
        let mut items = shared.items();
        if items.closed {
            return;
        }
        let bytes = item.bytes();
        if items.queued.len() >= shared.max_events || items.bytes + bytes > shared.max_bytes {
            drop(items);
            return self.fell_behind(slow_consumers);
        }
        items.bytes += bytes;
        items.queued.push_back(item);
        let waker = items.waker.take();
        drop(items);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn fell_behind(&self, slow_consumers: &Counter) {
        let slow = &self.shared.slow;
        if !slow.is_cancelled() {
            slow_consumers.inc();
            slow.cancel();
        }
    }
}

/// The session's end of its queue.
#[derive(Debug)]
pub struct MemberQueue {
    shared: Arc<Shared>,
}

impl MemberQueue {
    /// The next item, once there is one.
    pub fn recv(&mut self) -> impl Future<Output = Outbound> + '_ {
        std::future::poll_fn(|cx| {
            let mut items = self.shared.items();
            if let Some(item) = items.take() {
                return Poll::Ready(item);
            }
            match &mut items.waker {
                Some(waker) => waker.clone_from(cx.waker()),
                None => items.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
    }

    /// The next item if one is queued already.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.shared.items().take()
    }

    /// Cancelled once the queue overflowed: the session must close with 1013.
    pub fn slow(&self) -> &CancellationToken {
        &self.shared.slow
    }
}

impl Drop for MemberQueue {
    /// Whatever was queued goes now, not when the last room lets go of the handle.
    fn drop(&mut self) {
        let mut items = self.shared.items();
        items.closed = true;
        items.waker = None;
        let queued = std::mem::take(&mut items.queued);
        drop(items);
        drop(queued);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::SharedEvent;

    fn event(bytes: usize) -> Outbound {
        Outbound::Event(SharedEvent::of_size(bytes))
    }

    #[tokio::test]
    async fn a_queue_over_its_byte_bound_signals_slow_and_keeps_what_fit() {
        let metrics = Counter::default();
        let (handle, mut queue) = member_queue(100, 1000);

        handle.deliver(event(600), &metrics);
        handle.deliver(event(600), &metrics);

        assert!(queue.slow().is_cancelled());
        assert!(matches!(queue.recv().await, Outbound::Event(event) if event.json.len() == 600));
        assert!(
            queue.try_recv().is_none(),
            "the second event was not queued"
        );
    }

    #[tokio::test]
    async fn draining_the_queue_frees_its_bytes() {
        let metrics = Counter::default();
        let (handle, mut queue) = member_queue(100, 1000);
        for _ in 0..10 {
            handle.deliver(event(600), &metrics);
            queue.recv().await;
        }
        assert!(!queue.slow().is_cancelled());
    }

    #[tokio::test]
    async fn a_queue_over_its_event_bound_signals_slow() {
        let metrics = Counter::default();
        let (handle, queue) = member_queue(2, 1000);
        for _ in 0..3 {
            handle.deliver(event(1), &metrics);
        }
        assert!(queue.slow().is_cancelled());
    }

    #[tokio::test]
    async fn a_waiting_session_is_woken_by_the_next_item() {
        let metrics = Counter::default();
        let (handle, mut queue) = member_queue(100, 1000);
        let waiting = tokio::spawn(async move { queue.recv().await });
        tokio::task::yield_now().await;
        handle.deliver(event(7), &metrics);
        let item = waiting.await.expect("the waiting task ends");
        assert!(matches!(item, Outbound::Event(event) if event.json.len() == 7));
    }

    #[test]
    fn a_drained_queue_gives_back_the_room_a_burst_took() {
        let metrics = Counter::default();
        let (handle, mut queue) = member_queue(1000, 100_000);
        for _ in 0..100 {
            handle.deliver(event(1), &metrics);
        }
        assert!(queue.shared.items().queued.capacity() >= 100);
        while queue.try_recv().is_some() {}
        assert_eq!(queue.shared.items().queued.capacity(), 0);
        assert_eq!(queue.shared.items().bytes, 0);

        handle.deliver(event(1), &metrics);
        queue.try_recv();
        assert!(
            queue.shared.items().queued.capacity() > 0,
            "a small queue keeps its room"
        );
    }

    #[test]
    fn nothing_is_queued_for_a_session_that_is_gone() {
        let metrics = Counter::default();
        let (handle, queue) = member_queue(100, 1000);
        handle.deliver(event(1), &metrics);
        let shared = queue.shared.clone();
        drop(queue);
        assert!(shared.items().queued.is_empty(), "dropped with the session");
        handle.deliver(event(1), &metrics);
        assert!(shared.items().queued.is_empty());
        assert!(
            !shared.slow.is_cancelled(),
            "a closed queue is not a slow one"
        );
    }
}
