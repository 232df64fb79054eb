//! One transaction and, when its COMMIT failed or went unanswered, what became of it.

use std::collections::HashMap;

use uuid::Uuid;

use super::steps::{accepted, one_by_one, reap, rooms_of, store_batch};
use super::{DEADLINE, Marks, Outcomes, Pending, Risen, StoreWriter, Work};
use crate::domain::{RoomId, WebhookId};
use crate::store::{Delivered, Refused, StoreError, WriteConnection, WriteTx};

/// How one transaction ended.
pub(super) enum Ended {
    Committed(Outcomes, Risen),
    /// Nothing of it was stored; `prompt` when the failure came back at once (not a deadline),
    /// so trying again is worth it.
    RolledBack {
        error: StoreError,
        prompt: bool,
    },
    InDoubt(Outcomes, Risen, StoreError),
}

impl StoreWriter {
    /// One transaction, then, if its COMMIT failed, what storage says became of it. (Read
    /// markers and webhook positions alone cannot tell: a batch of only those counts as not
    /// landed, and storing them again changes nothing, so at worst their READ notices are not
    /// sent, or a webhook sends its event again.)
    pub(super) async fn attempt(
        &mut self,
        batch: &mut Vec<Pending>,
        marks: &Marks,
        work: Work,
    ) -> Ended {
        let (outcomes, risen, error) =
            match transact(&mut *self.connection, batch, marks, work).await {
                Transacted::Committed(outcomes, risen) => {
                    return Ended::Committed(outcomes, risen);
                }
                Transacted::RolledBack(error) => {
                    self.connection.discard();
                    let prompt = !matches!(error, StoreError::TimedOut(_));
                    return Ended::RolledBack { error, prompt };
                }
                Transacted::InDoubt(outcomes, risen, error) => (outcomes, risen, error),
            };
        self.connection.discard();
        tracing::warn!(%error, "a COMMIT went unanswered; asking storage whether it landed");
        match self.landed(batch, &outcomes).await {
            Some(true) => Ended::Committed(outcomes, risen),
            Some(false) => Ended::RolledBack {
                error,
                prompt: true,
            },
            None => Ended::InDoubt(outcomes, risen, error),
        }
    }

    /// Whether the events a COMMIT in doubt would have stored are stored; None when storage
    /// does not answer. It takes the rooms' locks first, so the COMMIT has finished.
    pub(super) async fn landed(
        &mut self,
        batch: &[Pending],
        outcomes: &[Result<(), Refused>],
    ) -> Option<bool> {
        let ids: Vec<Uuid> = accepted(batch, outcomes)
            .iter()
            .map(|event| event.message_id)
            .collect();
        if ids.is_empty() {
            return Some(false);
        }
        let asked = within(async {
            let mut tx = self.connection.begin().await?;
            tx.lock_rooms(&rooms_of(batch)).await?;
            let found = tx.stored_ids(&ids).await?;
            tx.rollback().await?;
            Ok(found)
        })
        .await;
        match asked {
            Ok(found) => {
                tracing::info!(
                    landed = !found.is_empty(),
                    "storage said what became of a COMMIT in doubt"
                );
                Some(!found.is_empty())
            }
            Err(error) => {
                self.connection.discard();
                tracing::warn!(%error, "cannot tell yet whether a COMMIT landed");
                None
            }
        }
    }
}

/// How one transaction went, as far as this side can tell.
enum Transacted {
    Committed(Outcomes, Risen),
    /// It failed before COMMIT was sent: nothing of it was stored.
    RolledBack(StoreError),
    /// Its COMMIT failed or went unanswered: it may have landed.
    InDoubt(Outcomes, Risen, StoreError),
}

async fn transact(
    connection: &mut dyn WriteConnection,
    batch: &mut Vec<Pending>,
    marks: &Marks,
    work: Work,
) -> Transacted {
    let prepared = within(async {
        let mut tx = connection.begin().await?;
        let outcomes = steps(&mut *tx, batch, work).await?;
        // After the events, so a marker may name the newest of them.
        let risen = match marks.reads.is_empty() {
            true => Vec::new(),
            false => tx.raise_read_markers(&marks.reads).await?,
        };
        if !marks.positions.is_empty() {
            tx.store_positions(&highest(&marks.positions)).await?;
        }
        Ok((tx, outcomes, risen))
    })
    .await;
    let (tx, outcomes, risen) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return Transacted::RolledBack(error),
    };
    match within(tx.commit()).await {
        Ok(()) => Transacted::Committed(outcomes, risen),
        Err(error) => Transacted::InDoubt(outcomes, risen, error),
    }
}

/// The transaction's steps, before the read markers and COMMIT.
async fn steps(
    tx: &mut dyn WriteTx,
    batch: &mut Vec<Pending>,
    work: Work,
) -> Result<Outcomes, StoreError> {
    match work {
        Work::Together => store_batch(tx, batch).await,
        Work::OneByOne => one_by_one(tx, batch).await,
        Work::Reap {
            instance,
            silence,
            limit,
        } => reap(tx, batch, instance, silence, limit).await,
    }
}

/// Each webhook's highest position per room (one statement may change a row only once).
fn highest(positions: &[Delivered]) -> Vec<Delivered> {
    let mut highest: HashMap<(WebhookId, RoomId), Delivered> = HashMap::new();
    for position in positions {
        let key = (position.webhook_id, position.room_id);
        let kept = highest.entry(key).or_insert(*position);
        kept.seq = kept.seq.max(position.seq);
    }
    highest.into_values().collect()
}

/// Runs a storage call under [`DEADLINE`].
pub(in crate::store) async fn within<T>(
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(DEADLINE, call)
        .await
        .unwrap_or(Err(StoreError::TimedOut(DEADLINE)))
}
