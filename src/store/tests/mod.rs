//! One storage suite, run against both backends: SQLite on a temporary file and PostgreSQL on a
//! fresh database. Each test is written once; `on_both_backends!` runs it on each.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::Connection;

use super::{
    EventRange, Marks, MemberCursor, MembersPage, PageLimit, Purge, Refused, RoomRecord, Storage,
    connect,
};
use crate::domain::{
    Action, Authority, ClientMsgId, Emoji, Event, EventKind, InstanceId, MessageText, Moderation,
    NewEvent, NewRoom, ReadMarker, Role, RoomId, RoomName, Sender, Seq, Timestamp, Visibility,
};

#[path = "../../../tests/support/postgres.rs"]
mod test_database;

use test_database::TestDatabase;

mod batches;
mod members;
mod memberships;
mod positions;
mod resends;
mod rules;

use batches::*;
use members::*;
use memberships::*;
use positions::*;
use resends::*;
use rules::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Db {
    backend: Backend,
    url: String,
    storage: Storage,
    /// Where the data lives, kept until the test ends.
    _dir: Option<tempfile::TempDir>,
    _database: Option<TestDatabase>,
}

impl Db {
    async fn open(backend: Backend) -> Db {
        let (url, dir, database) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("chat.db").display());
                (url, Some(dir), None)
            }
            Backend::Postgres => {
                let database = TestDatabase::create().await;
                (database.url.clone(), None, Some(database))
            }
        };
        Db {
            storage: connect(
                &url,
                2,
                InstanceId::random(),
                crate::config::Durability::Fsync,
            )
            .await
            .unwrap(),
            backend,
            url,
            _dir: dir,
            _database: database,
        }
    }

    /// Another process on the same data: a new instance.
    async fn instance(&self) -> Storage {
        connect(
            &self.url,
            2,
            InstanceId::random(),
            crate::config::Durability::Fsync,
        )
        .await
        .unwrap()
    }

    /// Closes this process and starts another on the same data.
    async fn reopen(self) -> Db {
        self.storage.store.close().await;
        let storage = self.instance().await;
        Db { storage, ..self }
    }

    async fn room(&mut self, name: &str) -> RoomId {
        let room = NewRoom::public(RoomName::parse(name).unwrap());
        let writer = &mut self.storage.writer;
        writer
            .create_room(&room, Timestamp::now())
            .await
            .unwrap()
            .room_id
    }

    async fn talks(&mut self, room_id: RoomId, count: usize) {
        let batch = (0..count).map(|_| talk(room_id, "hi")).collect();
        self.storage.writer.append(batch).await.unwrap();
    }

    async fn seqs(&self, room_id: RoomId) -> Vec<i64> {
        let all = EventRange::Forward {
            after: Seq::ZERO,
            before: Seq::MAX,
            limit: 500,
        };
        let events = self.storage.store.events(room_id, all).await.unwrap();
        events.iter().map(|event| event.seq.get()).collect()
    }

    async fn members(&self, rooms: &[RoomId]) -> HashMap<RoomId, usize> {
        self.storage.store.member_counts(rooms).await.unwrap()
    }

    /// Runs SQL (one or more statements) on a connection of its own beside the store's.
    async fn side(&self, sqlite: &'static str, postgres: &'static str) {
        self.try_side(sqlite, postgres).await.unwrap();
    }

    async fn try_side(&self, sqlite: &'static str, postgres: &'static str) -> sqlx::Result<()> {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await?;
                sqlx::raw_sql(sqlite).execute(&mut conn).await.map(drop)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                sqlx::raw_sql(postgres).execute(&mut conn).await.map(drop)
            }
        }
    }
}

/// Runs each test once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Db::open(super::Backend::Sqlite).await).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Db::open(super::Backend::Postgres).await).await;
            })*
        }
    };
}

on_both_backends!(
    a_batch_gives_each_room_consecutive_seqs_and_refuses_gone_rooms,
    an_event_the_database_refuses_fails_alone_and_takes_no_seq,
    a_constraint_refusing_an_event_mid_statement_keeps_no_row_of_it,
    a_batch_that_cannot_be_stored_at_all_fails_whole,
    a_deleted_room_is_gone_at_once_and_its_events_after_a_delay_in_steps_even_across_a_restart,
    a_room_is_never_stamped_before_the_newest_room,
    a_replay_page_ends_once_its_text_reaches_the_byte_bound,
    memberships_follow_enter_and_leave_and_nobody_leaves_twice,
    a_dead_instance_is_reaped_once_with_a_leave_for_each_member_a_bots_marked,
    two_instances_appending_to_the_same_rooms_share_one_gap_free_order,
    newest_seqs_are_given_for_rooms_that_exist,
    a_deleted_rooms_last_seq_is_kept_while_its_events_are,
    an_event_is_never_stored_twice_under_one_message_id,
    a_resent_talk_is_answered_with_the_first_and_stored_once,
    racing_resends_on_two_instances_store_one_talk,
    a_batch_larger_than_a_statement_is_stored_whole_and_finds_every_resend,
    reactions_to_one_talk_in_one_batch_count_its_emoji_once,
    a_read_marker_only_rises_and_never_past_the_newest_event,
    webhook_positions_go_with_a_batch_only_rise_and_skip_a_webhook_that_is_gone,
    members_are_listed_per_sender_with_sessions_since_and_read_seq,
    the_members_list_pages_by_since_then_sender,
    a_rooms_rules_change_with_its_moderation_events_and_go_with_the_room,
);

fn talk(room_id: RoomId, message: &str) -> NewEvent {
    let sender = Sender::parse("alice").unwrap();
    NewEvent::talk(room_id, sender, MessageText::parse(message).unwrap())
}

/// A TALK by `sender` carrying the client's own id for it.
fn talk_with_id(room_id: RoomId, sender: &str, message: &str, id: &str) -> NewEvent {
    NewEvent {
        sender: name(sender),
        client_msg_id: Some(ClientMsgId::parse(id).unwrap()),
        ..talk(room_id, message)
    }
}

fn name(raw: &str) -> Sender {
    Sender::parse(raw).unwrap()
}

fn seqs_of(results: &[Result<Event, Refused>]) -> Vec<Result<i64, Refused>> {
    results
        .iter()
        .map(|r| {
            r.as_ref()
                .map(|event| event.seq.get())
                .map_err(Refused::clone)
        })
        .collect()
}
