//! Webhooks' delivery positions, stored with the writer's batches.

use super::*;
use crate::domain::{EventFilter, WebhookId};
use crate::store::{Delivered, WebhookRecord};

async fn webhook(db: &Db) -> WebhookId {
    let record = WebhookRecord {
        webhook_id: WebhookId::random(),
        url: "https://hooks.example/in".into(),
        filter: EventFilter::parse(None, None).unwrap(),
        sealed_secret: vec![0; 44],
        created_at: Timestamp::now(),
    };
    db.storage
        .webhooks
        .store
        .create_webhook(&record)
        .await
        .unwrap();
    record.webhook_id
}

fn at(webhook_id: WebhookId, room_id: RoomId, seq: i64) -> Delivered {
    Delivered {
        webhook_id,
        room_id,
        seq: Seq::new(seq).unwrap(),
    }
}

async fn delivered(db: &Db, webhook_id: WebhookId) -> Vec<(RoomId, i64)> {
    let positions = db.storage.webhooks.store.positions(webhook_id).await;
    let positions = positions.unwrap().into_iter();
    positions
        .map(|p| (p.room_id, p.delivered_seq.get()))
        .collect()
}

pub(super) async fn webhook_positions_go_with_a_batch_only_rise_and_skip_a_webhook_that_is_gone(
    mut db: Db,
) {
    let room = db.room("r").await;
    let hook = webhook(&db).await;
    db.talks(room, 5).await;
    let gone = WebhookId::random();
    let marks = Marks {
        reads: Vec::new(),
        positions: vec![at(hook, room, 4), at(gone, room, 5), at(hook, room, 3)],
    };
    let written = db.storage.writer.write(vec![talk(room, "6")], &marks).await;
    let written = written.unwrap();
    assert_eq!(written.events[0].as_ref().unwrap().seq.get(), 6);
    assert_eq!(
        delivered(&db, hook).await,
        vec![(room, 4)],
        "the highest of the batch"
    );
    assert!(
        delivered(&db, gone).await.is_empty(),
        "no webhook, no position"
    );

    let lower = Marks {
        reads: Vec::new(),
        positions: vec![at(hook, room, 2)],
    };
    db.storage.writer.write(Vec::new(), &lower).await.unwrap();
    assert_eq!(delivered(&db, hook).await, vec![(room, 4)], "it only rises");
}
