//! STOMP's way of reading: subscriptions, which read a room whether or not the session entered
//! it.

use super::*;

fn subscription(id: &str) -> Reader {
    Reader::Subscription {
        id: id.to_owned().into(),
        head: format!("MESSAGE\nsubscription:{id}\n").into(),
        notices: true,
    }
}

#[test]
fn subscriptions_read_a_room_without_entering_it_each_from_where_it_starts() {
    let mut table = RoomTable::new(Reading::Subscriptions);
    let room = RoomId::random();
    table.watch_from(room, seq(10));
    table.subscribe(room, subscription("s-1"), None);
    assert!(!table.changing());
    assert_eq!(table.sender(room), None, "subscribing enters nothing");
    assert_eq!(table.live(room, seq(11)), Decision::Deliver);
    assert_eq!(table.targets(room, seq(11)).len(), 1);

    table.subscribe(room, subscription("s-2"), Some(seq(9)));
    assert_eq!(table.behind(), Some((room, seq(9))), "s-2 replays from 9");
    let replayed = table.replayed(room, seq(10));
    assert_eq!(replayed.len(), 1, "only s-2 had not had 10");
    let both = table.replayed(room, seq(11));
    assert_eq!(both.len(), 1, "s-1 had 11 already");
    assert_eq!(table.live(room, seq(12)), Decision::Deliver);
    assert_eq!(table.targets(room, seq(12)).len(), 2);

    assert!(table.subscribed("s-1"));
    assert_eq!(table.unsubscribe("s-1"), Some(room));
    assert!(!table.subscribed("s-1"));
    assert_eq!(table.unsubscribe("s-2"), Some(room));
    assert_eq!(table.done(room), Done::Left, "nobody reads it now");
}

#[test]
fn entering_on_stomp_reads_nothing_and_a_subscription_keeps_reading_after_leave() {
    let mut table = RoomTable::new(Reading::Subscriptions);
    let room = RoomId::random();
    table.enter(room, alice(), None, true);
    table.entered(room, seq(5));
    assert_eq!(
        table.behind(),
        None,
        "nobody reads it: nothing to catch up on"
    );
    assert_eq!(table.live(room, seq(5)), Decision::Deliver);
    assert!(table.targets(room, seq(5)).is_empty());
    assert_eq!(table.done(room), Done::No, "it is a member");

    table.subscribe(room, subscription("s"), None);
    table.leaving(room);
    table.left(room, seq(6));
    assert_eq!(table.live(room, seq(6)), Decision::Deliver);
    assert_eq!(
        table.targets(room, seq(6)).len(),
        1,
        "its subscription sees its LEAVE"
    );
    assert_eq!(table.done(room), Done::No, "still subscribed");
    assert_eq!(table.drain(), vec![(room, None)], "its LEAVE is stored");
}
