//! What a STOMP connection's frames do to its session: CONNECT (and sign-in when identity
//! mode wants a token there), SEND as the same chat frame as `/ws/chat`, SUBSCRIBE as a reader
//! of the room (looked up in storage first when the session does not read it yet), receipts
//! and DISCONNECT.

use std::future::Future;
use std::pin::Pin;

use super::rooms::Reader;
use super::timers::every;
use super::{Dialect, Session};
use crate::domain::{Authority, Standing, Timestamp, Visibility};
use crate::identity::Refused;
use crate::store::{Admission, RoomRecord, StoreError};
use crate::ws::dialect::stomp::{Command, Fatal, Frame, Stomp, Subscription};
use crate::ws::transport::close::End;

/// A subscription whose room was being looked up, and what storage said of the room (and of
/// the session's identity in it).
pub struct Looked {
    subscription: Subscription,
    room: Result<Option<(RoomRecord, Admission)>, StoreError>,
}

/// A DISCONNECT waiting for what the frames before it asked to take effect.
pub struct Disconnect {
    receipt: Option<String>,
}

/// The lookup under way; never resolves while there is none.
pub async fn looked_up(lookup: &mut Option<Pin<Box<dyn Future<Output = Looked>>>>) -> Looked {
    let Some(pending) = lookup else {
        return std::future::pending().await;
    };
    let looked = pending.await;
    *lookup = None;
    looked
}

impl Session {
    /// Acts on a STOMP frame; one over the frame rate limit is refused before anything it
    /// asks is done (no subscription, no storage, no receipt).
    pub(super) fn on_stomp_frame(&mut self, frame: Frame, limited: bool) -> Result<(), End> {
        let signed_as = self.speaker.signed_as.as_ref();
        let command = match &mut self.dialect {
            Dialect::Stomp(stomp) if limited => stomp.limited(&frame, signed_as),
            Dialect::Stomp(stomp) => stomp.command(frame, signed_as),
            Dialect::Chat => return Ok(()),
        };
        self.on_stomp(command)
    }

    fn on_stomp(&mut self, command: Command) -> Result<(), End> {
        match command {
            Command::Connected { token } => self.connected(token),
            Command::Chat(frame, echo) => {
                self.state.metrics.frame_in(frame.action.name());
                self.dispatch(frame, echo)
            }
            Command::Refuse(refusal) => {
                self.state.metrics.frame_in("INVALID");
                self.refuse(refusal)
            }
            Command::Subscribe(subscription) => self.subscribe(subscription),
            Command::Unsubscribe { id, receipt } => {
                if let Some(room_id) = self.presence.table_mut().unsubscribe(&id) {
                    self.done_with(room_id);
                }
                self.answer_receipt(receipt)
            }
            Command::Receipt(receipt) => self.answer_receipt(receipt),
            Command::Disconnect { receipt } => {
                self.disconnect = Some(Disconnect { receipt });
                Ok(())
            }
            Command::Fatal(fatal) => self.fatal(&fatal),
        }
    }

    /// Once every append asked before a DISCONNECT has settled (their receipts sent), answers
    /// its receipt: the connection ends.
    pub(super) fn disconnected(&mut self) -> Option<End> {
        if self.disconnect.is_none() || !self.in_flight.is_empty() || self.parked.is_some() {
            return None;
        }
        let receipt = self
            .disconnect
            .take()
            .and_then(|disconnect| disconnect.receipt);
        self.receipt(receipt);
        Some(End::Disconnected)
    }

    fn stomp(&self) -> Option<&Stomp> {
        match &self.dialect {
            Dialect::Stomp(stomp) => Some(stomp),
            Dialect::Chat => None,
        }
    }

    /// Sends the ERROR and ends the connection.
    pub(super) fn fatal(&mut self, fatal: &Fatal) -> Result<(), End> {
        self.state.metrics.ws_error("stomp", fatal.code());
        if let Some(stomp) = self.stomp() {
            let error = stomp.error(fatal);
            self.socket.text(error);
        }
        Err(End::StompError)
    }

    /// Answers CONNECT, once the connection has an identity where identity mode wants one: the
    /// one its upgrade carried, else the token CONNECT carries.
    fn connected(&mut self, token: Option<String>) -> Result<(), End> {
        self.timers.connect_by = None;
        if let (None, Some(verifier)) = (&self.identity, &self.state.identity) {
            match verifier.verify(token.as_deref()) {
                Ok(identity) => self.sign_in(Some(identity)),
                Err(refused) => return self.unauthorized(&refused),
            }
        }
        let Some(stomp) = self.stomp() else {
            return Ok(());
        };
        let (connected, send_every, expect_every) = (
            stomp.connected(self.id),
            stomp.send_every,
            stomp.expect_every,
        );
        self.socket.text(connected);
        self.timers.stomp_beat = send_every.map(every);
        if let Some(expect_every) = expect_every {
            // Two to three of the client's periods of silence, as the specification allows.
            self.timers.heartbeat.expect_within(expect_every * 5 / 2);
        }
        Ok(())
    }

    fn unauthorized(&mut self, refused: &Refused) -> Result<(), End> {
        self.state.metrics.auth_refused("stomp", refused.reason());
        let fatal = Fatal::unauthorized(refused.to_string());
        self.fatal(&fatal)
    }

    /// Adds a subscription to a room the session reads already, or looks the room up first.
    fn subscribe(&mut self, subscription: Subscription) -> Result<(), End> {
        let id = &subscription.id;
        let taken = self.presence.table().subscribed(id)
            || self.stomp().is_some_and(|stomp| stomp.is_errors(id));
        if taken {
            let fatal = Fatal::in_use(subscription.receipt);
            return self.fatal(&fatal);
        }
        let room_id = subscription.room_id;
        if self.presence.table().contains(room_id) {
            self.add_subscription(subscription);
            return Ok(());
        }
        // Listening before the room's newest seq is read: what is stored meanwhile waits.
        self.presence.listen(room_id);
        let store = self.state.store.clone();
        let name = self.speaker.signed_as.clone();
        self.lookup = Some(Box::pin(async move {
            let room = match name {
                Some(name) => store.admission(room_id, name.as_str()).await,
                None => store
                    .room(room_id)
                    .await
                    .map(|room| room.map(|record| (record, Admission::default()))),
            };
            Looked { subscription, room }
        }));
        Ok(())
    }

    /// The room of a subscription was looked up: it starts reading from the room's newest
    /// event (or from its `last-seq`), or the room does not exist.
    pub(super) fn subscribed(&mut self, looked: Looked) -> Result<(), End> {
        let Looked { subscription, room } = looked;
        let room_id = subscription.room_id;
        let (record, place) = match room {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.presence.remove(room_id);
                let fatal = Fatal::unknown_room(room_id, subscription.receipt);
                return self.fatal(&fatal);
            }
            Err(error) => {
                tracing::error!(%error, "looking a subscription's room up failed");
                return Err(End::Unavailable);
            }
        };
        if let Err(fatal) = self.admit(&record, &place, &subscription) {
            self.presence.remove(room_id);
            return self.fatal(&fatal);
        }
        let standing = Standing {
            private: record.visibility == Visibility::Private,
            muted: place.mute,
        };
        let table = self.presence.table_mut();
        table.watch_from(room_id, record.last_seq);
        table.stand(room_id, standing, record.last_seq);
        self.add_subscription(subscription);
        Ok(())
    }

    /// Whether the room's rules let this session's identity read it: a private room without a
    /// role is refused as a room that does not exist, a ban as such (an `admin` is above both).
    fn admit(
        &self,
        record: &RoomRecord,
        place: &Admission,
        subscription: &Subscription,
    ) -> Result<(), Fatal> {
        let (room_id, receipt) = (record.room_id, subscription.receipt.clone());
        match self.speaker.authority {
            Authority::Signed
                if record.visibility == Visibility::Private && place.role.is_none() =>
            {
                Err(Fatal::unknown_room(room_id, receipt))
            }
            Authority::Signed if place.banned_at(Timestamp::now()) => {
                Err(Fatal::banned(room_id, receipt))
            }
            _ => Ok(()),
        }
    }

    fn add_subscription(&mut self, subscription: Subscription) {
        let Subscription {
            id,
            destination,
            room_id,
            after,
            notices,
            receipt,
        } = subscription;
        let Some(head) = self
            .stomp()
            .map(|stomp| stomp.message_head(&id, &destination))
        else {
            return;
        };
        let reader = Reader::Subscription {
            id: id.into(),
            head,
            notices,
        };
        self.presence.table_mut().subscribe(room_id, reader, after);
        self.receipt(receipt);
    }
}
