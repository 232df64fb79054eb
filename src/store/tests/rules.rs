//! Rooms' rules and their MODERATION events.

use super::*;

/// A MODERATION event by alice, a signed-in owner.
fn by_alice(room_id: RoomId, moderation: Moderation) -> NewEvent {
    NewEvent::moderation(room_id, name("alice"), moderation, Authority::Signed)
}

pub(super) async fn a_rooms_rules_change_with_its_moderation_events_and_go_with_the_room(
    mut db: Db,
) {
    let new = NewRoom {
        name: RoomName::parse("team").unwrap(),
        visibility: Visibility::Private,
        owner: Some(name("alice")),
    };
    let writer = &mut db.storage.writer;
    let room = writer.create_room(&new, Timestamp::now()).await.unwrap();
    assert_eq!(room.visibility, Visibility::Private);
    let room = room.room_id;
    let alice = name("alice");
    let later = Timestamp::from_millis(Timestamp::now().millis() + 600_000);
    let actions = vec![
        by_alice(
            room,
            Moderation {
                role: Some(Role::Member),
                ..Moderation::new(Action::Grant, &name("bob"), &alice)
            },
        ),
        by_alice(
            room,
            Moderation {
                until: Some(later),
                ..Moderation::new(Action::Mute, &name("bob"), &alice)
            },
        ),
        by_alice(
            room,
            Moderation {
                role: Some(Role::Member),
                ..Moderation::new(Action::Grant, &name("carol"), &alice)
            },
        ),
        by_alice(
            room,
            Moderation {
                reason: Some("spam".into()),
                ..Moderation::new(Action::Ban, &name("carol"), &alice)
            },
        ),
        by_alice(room, Moderation::new(Action::Revoke, &alice, &alice)),
        by_alice(room, Moderation::new(Action::Unban, &name("dave"), &alice)),
    ];
    let stored = writer.append(actions).await.unwrap();
    assert_eq!(
        seqs_of(&stored),
        [
            Ok(1),
            Ok(2),
            Ok(3),
            Ok(4),
            Err(Refused::LastOwner),
            Err(Refused::NoChange("they are not banned"))
        ]
    );

    let enter =
        |who: &str, session| NewEvent::enter(room, name(who), session).acting_as(Authority::Signed);
    let entered = writer
        .write(
            vec![enter("bob", 1), enter("carol", 2), enter("dave", 3)],
            &Marks::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        seqs_of(&entered.events),
        [Ok(5), Err(Refused::Banned), Err(Refused::RoomGone)]
    );
    let bob = entered.standings[0].expect("an ENTER learns its standing");
    assert!(bob.private && bob.muted_at(Timestamp::now()));

    let store = &db.storage.store;
    let (_, place) = store.admission(room, "bob").await.unwrap().unwrap();
    assert_eq!(place.role, Some(Role::Member));
    assert_eq!(place.mute.and_then(|mute| mute.until), Some(later));
    let roles: Vec<(String, Role)> = store
        .roles(room)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".to_owned(), Role::Owner),
            ("bob".to_owned(), Role::Member),
            ("carol".to_owned(), Role::Member)
        ]
    );
    let history = db.seqs(room).await;
    assert_eq!(history, [1, 2, 3, 4, 5], "refusals stored nothing");

    db.storage.writer.delete_room(room).await.unwrap();
    assert!(
        db.storage.store.roles(room).await.unwrap().is_empty(),
        "roles go with the room"
    );
    let bans = db
        .storage
        .store
        .sanctions(room, crate::store::SanctionKind::Ban, Timestamp::now());
    assert!(bans.await.unwrap().is_empty());
}
