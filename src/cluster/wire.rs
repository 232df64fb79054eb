//! What instances say to each other on a room's channel: an event one of them stored (or
//! several, stored in one batch: one message for them all), that the room was deleted after
//! its last event, or a notice (TYPING, READ), which has no seq and goes straight to the
//! members, outside the room's order. Each message names the instance that sent it, so an
//! instance skips its own (it handed them to its members already).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Event, InstanceId, Notice, RoomId, Seq};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "EnvelopeJson")]
pub struct Envelope {
    pub origin: Uuid,
    #[serde(flatten)]
    pub body: Body,
}

/// How an envelope is read: its body's one key as a field of its own. Derived with the body
/// flattened, every message was read twice, first into serde's generic content, then from it
/// (1,340-1,400 ns per TALK then, about 740 now: `examples/decode_bench.rs`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeJson {
    origin: Uuid,
    event: Option<Event>,
    events: Option<Vec<Event>>,
    closed: Option<ClosedJson>,
    notice: Option<Notice>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClosedJson {
    room_id: RoomId,
    last_seq: Seq,
}

/// An envelope without exactly one body.
#[derive(Debug, thiserror::Error)]
#[error("an envelope carries one of event, events (two or more), closed and notice")]
pub struct NoBody;

impl TryFrom<EnvelopeJson> for Envelope {
    type Error = NoBody;

    fn try_from(json: EnvelopeJson) -> Result<Self, NoBody> {
        let body = match (json.event, json.events, json.closed, json.notice) {
            (Some(event), None, None, None) => Body::Event(event),
            (None, Some(events), None, None) if events.len() > 1 => Body::Events(events),
            (None, None, Some(ClosedJson { room_id, last_seq }), None) => {
                Body::Closed { room_id, last_seq }
            }
            (None, None, None, Some(notice)) => Body::Notice(notice),
            _ => return Err(NoBody),
        };
        Ok(Self {
            origin: json.origin,
            body,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Body {
    Event(Event),
    /// Two or more events of one room, in `seq` order.
    Events(Vec<Event>),
    #[serde(rename_all = "camelCase")]
    Closed {
        room_id: RoomId,
        last_seq: Seq,
    },
    Notice(Notice),
}

/// Most events one message carries: a busy room's batch goes out in a few messages of
/// moderate size rather than one large one.
const EVENTS_PER_MESSAGE: usize = 64;

/// What one batch stored, as messages: each room's events together and in order, the rooms in
/// the order they first appear, at most [`EVENTS_PER_MESSAGE`] events to a message, and an
/// event alone as `event` (which instances of the previous version read).
pub fn batch(events: &[Event]) -> Vec<(RoomId, Body)> {
    let mut rooms: Vec<(RoomId, Vec<&Event>)> = Vec::new();
    for event in events {
        match rooms
            .iter_mut()
            .find(|(room_id, _)| *room_id == event.room_id)
        {
            Some((_, room)) => room.push(event),
            None => rooms.push((event.room_id, vec![event])),
        }
    }
    let mut bodies = Vec::new();
    for (room_id, events) in rooms {
        for chunk in events.chunks(EVENTS_PER_MESSAGE) {
            let body = match chunk {
                [event] => Body::Event((*event).clone()),
                several => Body::Events(several.iter().map(|&event| event.clone()).collect()),
            };
            bodies.push((room_id, body));
        }
    }
    bodies
}

/// Sharded channels' partitions: each room's channel carries one of these as its hash tag, so
/// the channels spread over a cluster's slots evenly whatever its size, and those of one
/// partition (one slot) are subscribed to with one command.
pub const PARTITIONS: u128 = 128;

/// A room's partition.
pub fn partition(room_id: RoomId) -> u128 {
    room_id.uuid().as_u128() % PARTITIONS
}

/// A room's sharded channel on a Redis Cluster: `chat:{p<partition>}:room:<roomId>`.
pub fn sharded_channel(room_id: RoomId) -> String {
    format!("chat:{{p{}}}:room:{room_id}", partition(room_id))
}

/// The channel a room's messages travel on, on one Redis.
pub fn channel(room_id: RoomId) -> String {
    format!("chat:room:{room_id}")
}

impl Envelope {
    pub fn new(origin: InstanceId, body: Body) -> Self {
        Self {
            origin: origin.uuid(),
            body,
        }
    }

    /// Whether `payload` is an envelope `me` published, told from its first bytes: every
    /// message an instance publishes comes back to it, and it skips its own without reading
    /// them (the origin is the first field written).
    pub fn published_by(payload: &[u8], me: InstanceId) -> bool {
        let mut buffer = Uuid::encode_buffer();
        let origin = me.uuid().hyphenated().encode_lower(&mut buffer);
        payload
            .strip_prefix(br#"{"origin":""#)
            .and_then(|rest| rest.strip_prefix(origin.as_bytes()))
            .is_some_and(|rest| rest.starts_with(b"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NewEvent, Sender, Timestamp};

    fn departure(room_id: RoomId, seq: i64) -> Event {
        Event::stored(
            NewEvent::departure(room_id, Sender::parse("bob").unwrap()),
            Seq::new(seq).unwrap(),
            Uuid::new_v4(),
            Timestamp::from_millis(1_795_253_400_123),
        )
    }

    #[test]
    fn an_envelope_reads_back_as_it_was_written() {
        let room_id = RoomId::random();
        let me = InstanceId::random();
        for body in [
            Body::Event(departure(room_id, 7)),
            Body::Events((8..=10).map(|seq| departure(room_id, seq)).collect()),
            Body::Closed {
                room_id,
                last_seq: Seq::new(9).unwrap(),
            },
            Body::Notice(Notice::Typing {
                room_id,
                sender: "bob".into(),
            }),
        ] {
            let envelope = Envelope::new(me, body);
            let text = serde_json::to_string(&envelope).unwrap();
            let read: Envelope = serde_json::from_str(&text).unwrap();
            assert_eq!(read, envelope, "{text}");
            assert!(Envelope::published_by(text.as_bytes(), me), "{text}");
            assert!(!Envelope::published_by(
                text.as_bytes(),
                InstanceId::random()
            ));
            let origin = me.uuid().to_string();
            for other in [
                format!(r#"{{"origin":"{origin}0","event":{{}}}}"#),
                format!(r#"{{"origin":"{origin}"#),
                format!(r#"{{ "origin":"{origin}","event":{{}}}}"#),
            ] {
                assert!(!Envelope::published_by(other.as_bytes(), me), "{other}");
            }
        }
    }

    /// Each message's room and its events' seqs.
    fn seqs(bodies: &[(RoomId, Body)]) -> Vec<(RoomId, Vec<i64>)> {
        bodies
            .iter()
            .map(|(room_id, body)| {
                let seqs = match body {
                    Body::Event(event) => vec![event.seq.get()],
                    Body::Events(events) => events.iter().map(|e| e.seq.get()).collect(),
                    other => panic!("not events: {other:?}"),
                };
                (*room_id, seqs)
            })
            .collect()
    }

    #[test]
    fn a_batch_goes_out_room_by_room_each_in_its_order() {
        let rooms = [RoomId::random(), RoomId::random(), RoomId::random()];
        let batch = [
            departure(rooms[1], 4),
            departure(rooms[0], 7),
            departure(rooms[1], 5),
            departure(rooms[2], 1),
            departure(rooms[0], 8),
        ];
        let bodies = super::batch(&batch);
        assert_eq!(
            seqs(&bodies),
            [
                (rooms[1], vec![4, 5]),
                (rooms[0], vec![7, 8]),
                (rooms[2], vec![1])
            ]
        );
        assert!(
            matches!(bodies[2].1, Body::Event(_)),
            "one event goes as `event`"
        );
    }

    #[test]
    fn a_busy_rooms_batch_goes_out_in_messages_of_at_most_64_events() {
        let room_id = RoomId::random();
        let batch: Vec<Event> = (1..=65).map(|seq| departure(room_id, seq)).collect();
        let bodies = super::batch(&batch);
        assert_eq!(
            seqs(&bodies),
            [(room_id, (1..=64).collect()), (room_id, vec![65])]
        );
    }

    #[test]
    fn an_envelope_without_exactly_one_body_is_refused() {
        let origin = Uuid::new_v4();
        let room_id = RoomId::random();
        let closed = serde_json::json!({"roomId": room_id.to_string(), "lastSeq": 3});
        let typing = Notice::Typing {
            room_id,
            sender: "bob".into(),
        };
        let notice = serde_json::to_value(typing).unwrap();
        let event = serde_json::to_value(departure(room_id, 4)).unwrap();
        for body in [
            serde_json::json!({"origin": origin}),
            serde_json::json!({"origin": origin, "closed": closed, "notice": notice}),
            serde_json::json!({"origin": origin, "event": event, "events": [event, event]}),
            serde_json::json!({"origin": origin, "events": []}),
            serde_json::json!({"origin": origin, "events": [event]}),
        ] {
            let error = serde_json::from_value::<Envelope>(body).unwrap_err();
            assert!(error.to_string().contains("one of"), "{error}");
        }
    }
}
