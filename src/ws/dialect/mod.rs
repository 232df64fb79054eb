//! The dialects: what a client's frames mean and how events become frames. `/ws/chat` speaks
//! JSON frames ([`chat`]); `/ws/stomp` speaks STOMP ([`stomp`]), whose SENDs carry the same chat
//! frames. Both turn what arrives into the same commands for the session; neither does I/O.

pub mod chat;
pub(crate) mod stomp;
