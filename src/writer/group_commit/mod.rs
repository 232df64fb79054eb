//! The writer's task: takes what has queued up, stores the appends in one transaction, answers
//! each, then hands the stored events to fan-out; other commands run in queue order between
//! batches. While a batch's COMMIT is in doubt (storage cut off as it committed), storage is
//! asked again and again whether it landed, and everything queued meanwhile is refused at
//! once as unavailable: nobody waits without an answer for the length of an outage.

mod answers;
mod fine_sleep;
mod taking;
mod upkeep;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::time::Instant as TokioInstant;

use self::answers::{Orphans, fail, refuse};
use self::fine_sleep::FineSleep;
use self::taking::{gather, receive, taken};
use self::upkeep::Purging;
use super::batch::{Answers, Batch};
use super::{Command, Options, WriteError};
use crate::domain::Timestamp;
use crate::hub::Fanout;
use crate::metrics::Metrics;
use crate::store::{ASK_AGAIN, InDoubt, StoreError, StoreWriter, Unwritten};

/// How often LEAVEs that could not be stored, and that nobody waits for, are tried again.
const ORPHAN_RETRY: Duration = Duration::from_secs(1);

pub struct GroupCommit {
    store: StoreWriter,
    fanout: Arc<dyn Fanout>,
    metrics: Arc<Metrics>,
    options: Options,
    /// Checked at start too, for a purge a restart interrupted.
    purging: Purging,
    /// When to look next for events past their room's retention (at start: at once).
    erase_at: TokioInstant,
    orphans: Orphans,
    /// A batch whose COMMIT is in doubt, with those waiting to hear of it.
    doubt: Option<(InDoubt, Answers)>,
}

impl GroupCommit {
    pub fn new(
        store: StoreWriter,
        fanout: Arc<dyn Fanout>,
        metrics: Arc<Metrics>,
        options: Options,
    ) -> Self {
        Self {
            store,
            fanout,
            metrics,
            options,
            purging: Purging::Now,
            erase_at: TokioInstant::now(),
            orphans: Orphans {
                leaves: Vec::new(),
                tried: TokioInstant::now(),
            },
            doubt: None,
        }
    }

    pub async fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        let most = self.options.batch.events;
        let mut commands = Vec::with_capacity(most);
        let mut timer = FineSleep::default();
        loop {
            if self.doubt.is_some() {
                self.settle(&mut queue).await;
                continue;
            }
            if !receive(&mut queue, &mut commands, most, self.idle()).await {
                break;
            }
            taken(&commands, &self.metrics);
            gather(
                &mut queue,
                &mut commands,
                most,
                self.options.commit_wait,
                &mut timer,
                &self.metrics,
            )
            .await;
            let mut batch = self.orphans_due();
            for command in commands.drain(..) {
                match self.doubt {
                    Some(_) => refuse(command, &self.metrics, &mut self.orphans),
                    None => batch = self.execute(command, batch).await,
                }
            }
            self.commit(batch).await;
            if self.erase_due() && self.doubt.is_none() {
                self.erase_step().await;
            }
            if self.purge_due() && self.doubt.is_none() {
                self.purge_step().await;
            }
        }
        tracing::debug!("writer drained and stopped");
    }

    /// Asks storage every [`ASK_AGAIN`] whether the batch in doubt landed, refusing whatever
    /// is queued meanwhile, until it knows; then answers the batch as it turned out. (Once the
    /// queue is closed, at shutdown, it still asks: the shutdown bounds how long it waits.)
    async fn settle(&mut self, queue: &mut mpsc::Receiver<Command>) {
        let Some((mut unsettled, answers)) = self.doubt.take() else {
            return;
        };
        let mut open = true;
        let settled = loop {
            let (store, metrics, orphans) = (&mut self.store, &self.metrics, &mut self.orphans);
            let asked = async move {
                tokio::time::sleep(ASK_AGAIN).await;
                store.settle(unsettled).await
            };
            tokio::pin!(asked);
            let settled = loop {
                tokio::select! {
                    biased;
                    settled = &mut asked => break settled,
                    command = queue.recv(), if open => match command {
                        Some(command) => {
                            metrics.writer_taken(command.name());
                            refuse(command, metrics, orphans);
                        }
                        None => open = false,
                    },
                }
            };
            match settled {
                Err(Unwritten::InDoubt(again)) => unsettled = again,
                settled => break settled,
            }
        };
        self.answer(settled, answers, Instant::now());
    }

    /// Adds an append to the batch, or commits the batch and then runs the command, so every
    /// command takes effect after those queued before it.
    async fn execute(&mut self, command: Command, mut batch: Batch) -> Batch {
        match command {
            Command::Append {
                event,
                reply,
                queued,
            } => {
                if !batch.fits(&event, &self.options.batch) {
                    self.commit(std::mem::take(&mut batch)).await;
                }
                batch.push(event, reply, queued);
                batch
            }
            Command::Read { marker, reply } => {
                batch.push_read(marker, reply);
                batch
            }
            Command::Delivered { position, reply } => {
                batch.push_position(position, reply);
                batch
            }
            command => {
                self.commit(batch).await;
                match self.doubt {
                    Some(_) => refuse(command, &self.metrics, &mut self.orphans),
                    None => self.run_alone(command).await,
                }
                Batch::default()
            }
        }
    }

    /// Runs a command that is not stored with a batch.
    async fn run_alone(&mut self, command: Command) {
        match command {
            Command::CreateRoom { room, reply } => {
                let created = self.store.create_room(&room, Timestamp::now()).await;
                let _ = reply.send(created.map_err(unavailable("creating a room")));
            }
            Command::DeleteRoom { room_id, reply } => {
                let _ = reply.send(self.delete(room_id).await);
            }
            Command::SetRetention {
                room_id,
                retention,
                reply,
            } => {
                let _ = reply.send(self.set_retention(room_id, retention).await);
            }
            Command::Ping { reply } => {
                let _ = reply.send(self.store.ping().await.map_err(unavailable("a ping")));
            }
            Command::Reap {
                instance,
                silence,
                reply,
            } => {
                let _ = reply.send(self.reap(instance, silence).await);
            }
            command @ (Command::Append { .. }
            | Command::Read { .. }
            | Command::Delivered { .. }) => {
                refuse(command, &self.metrics, &mut self.orphans);
            }
        }
    }

    /// How long to wait for commands: until the next step of a purge or retry of LEAVEs that
    /// wait to be stored, else for as long as it takes.
    fn idle(&self) -> Option<Duration> {
        let purge = match self.purging {
            Purging::Now => Some(Duration::ZERO),
            Purging::NotBefore(at) => Some(at.saturating_duration_since(TokioInstant::now())),
            Purging::Idle => None,
        };
        let orphans = (!self.orphans.leaves.is_empty()).then_some(ORPHAN_RETRY);
        let erase = self.erase_at.saturating_duration_since(TokioInstant::now());
        purge.into_iter().chain(orphans).chain([erase]).min()
    }

    fn purge_due(&self) -> bool {
        match self.purging {
            Purging::Now => true,
            Purging::NotBefore(at) => at <= TokioInstant::now(),
            Purging::Idle => false,
        }
    }

    /// A batch holding the orphaned LEAVEs, when it is time to try them again.
    fn orphans_due(&mut self) -> Batch {
        let mut batch = Batch::default();
        let orphans = &mut self.orphans;
        if orphans.leaves.is_empty() || orphans.tried.elapsed() < ORPHAN_RETRY {
            return batch;
        }
        orphans.tried = TokioInstant::now();
        for leave in orphans.leaves.drain(..) {
            let (reply, _) = tokio::sync::oneshot::channel();
            batch.push(leave, reply, Instant::now());
        }
        batch
    }

    async fn commit(&mut self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        let Batch {
            events, answers, ..
        } = batch;
        if self.doubt.is_some() {
            fail(answers, &self.metrics, &mut self.orphans);
            return;
        }
        let started = Instant::now();
        let size = events.len();
        let written = self.store.write(events, &answers.marks).await;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.batch_size.observe(size as f64);
        match written {
            Err(Unwritten::InDoubt(unsettled)) => {
                tracing::error!(
                    "a COMMIT is in doubt and storage does not answer: refusing appends until it does"
                );
                self.doubt = Some((unsettled, answers));
            }
            written => self.answer(written, answers, Instant::now()),
        }
    }
}

/// Logs a storage failure, which the caller only ever sees as `Unavailable`.
fn unavailable(what: &'static str) -> impl Fn(StoreError) -> WriteError {
    move |error| {
        tracing::error!(%error, "{what} failed");
        WriteError::Unavailable
    }
}

#[cfg(test)]
mod tests;
