//! The transport: the TCP stream once HTTP has handed it over, WebSocket framing on it, SockJS's
//! framing inside that, and how a connection closes. It knows nothing of what the frames say.

pub mod close;
pub mod sockjs;
pub mod websocket;
