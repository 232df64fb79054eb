//! Every read has a deadline on this side too. The server's statement timeout cannot help when
//! the network goes silent (the connection open, its answer never arriving): without one, a
//! request, a catch-up or a gap fill would wait for the kernel to give the connection up,
//! many minutes later.

use std::collections::HashMap;

use async_trait::async_trait;

use super::transaction::within;
use super::{
    Admission, EventRange, History, MemberCursor, MembersPage, PageLimit, RoleRecord, RoomRecord,
    Rules, SanctionKind, SanctionRecord, Store, StoreError,
};
use crate::domain::{Event, Role, RoomId, Seq, Timestamp};

/// A store whose every read gives up after [`super::transaction::DEADLINE`].
pub struct Deadlined<S>(pub S);

#[async_trait]
impl<S: Store> History for Deadlined<S> {
    async fn events(&self, room_id: RoomId, range: EventRange) -> Result<Vec<Event>, StoreError> {
        within(self.0.events(room_id, range)).await
    }

    async fn replies(
        &self,
        room_id: RoomId,
        reply_to: Seq,
        range: EventRange,
    ) -> Result<Vec<Event>, StoreError> {
        within(self.0.replies(room_id, reply_to, range)).await
    }

    async fn page_after(
        &self,
        room_id: RoomId,
        after: Seq,
        limit: PageLimit,
    ) -> Result<Vec<Event>, StoreError> {
        within(self.0.page_after(room_id, after, limit)).await
    }
}

#[async_trait]
impl<S: Store> Rules for Deadlined<S> {
    async fn admission(
        &self,
        room_id: RoomId,
        name: &str,
    ) -> Result<Option<(RoomRecord, Admission)>, StoreError> {
        within(self.0.admission(room_id, name)).await
    }

    async fn roles_in(
        &self,
        rooms: &[RoomId],
        name: &str,
    ) -> Result<HashMap<RoomId, Role>, StoreError> {
        within(self.0.roles_in(rooms, name)).await
    }

    async fn visible_rooms(
        &self,
        before: Option<i64>,
        limit: u32,
        viewer: Option<&str>,
    ) -> Result<Vec<RoomRecord>, StoreError> {
        within(self.0.visible_rooms(before, limit, viewer)).await
    }

    async fn roles(&self, room_id: RoomId) -> Result<Vec<RoleRecord>, StoreError> {
        within(self.0.roles(room_id)).await
    }

    async fn sanctions(
        &self,
        room_id: RoomId,
        kind: SanctionKind,
        now: Timestamp,
    ) -> Result<Vec<SanctionRecord>, StoreError> {
        within(self.0.sanctions(room_id, kind, now)).await
    }
}

#[async_trait]
impl<S: Store> Store for Deadlined<S> {
    async fn room(&self, room_id: RoomId) -> Result<Option<RoomRecord>, StoreError> {
        within(self.0.room(room_id)).await
    }

    async fn unread_counts(
        &self,
        rooms: &[RoomId],
        reader: &str,
    ) -> Result<HashMap<RoomId, u64>, StoreError> {
        within(self.0.unread_counts(rooms, reader)).await
    }

    async fn member_counts(&self, rooms: &[RoomId]) -> Result<HashMap<RoomId, usize>, StoreError> {
        within(self.0.member_counts(rooms)).await
    }

    async fn members(
        &self,
        room_id: RoomId,
        after: Option<&MemberCursor>,
        limit: u32,
    ) -> Result<Option<MembersPage>, StoreError> {
        within(self.0.members(room_id, after, limit)).await
    }

    async fn last_seqs(&self, rooms: &[RoomId]) -> Result<HashMap<RoomId, Seq>, StoreError> {
        within(self.0.last_seqs(rooms)).await
    }

    async fn deleted_last_seqs(
        &self,
        rooms: &[RoomId],
    ) -> Result<HashMap<RoomId, Seq>, StoreError> {
        within(self.0.deleted_last_seqs(rooms)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        within(self.0.ping()).await
    }

    async fn close(&self) {
        self.0.close().await;
    }
}
