//! The live meeting on both backends: the WebSocket channel (tickets, Origin, commands,
//! resume, presence, attendance, several instances, a crash and restart) and outcomes.

mod common;

#[path = "meeting/live.rs"]
mod live;

#[path = "meeting/restart.rs"]
mod restart;
