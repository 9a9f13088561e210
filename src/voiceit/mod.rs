//! The VoiceIt side: the Web SDK protocol, the calls to VoiceIt, and the routes that join them.

pub mod client;
pub mod endpoint;
pub mod protocol;
