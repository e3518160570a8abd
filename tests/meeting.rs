//! The live meeting on both backends: the WebSocket channel (tickets, Origin, commands,
//! resume, presence, attendance, several instances, a crash and restart) and the
//! meeting's records (outcomes: draft, sign, amend, letters, follow-ups, access; the
//! tracked actions they make), and its media with an independent WebRTC stack (aiortc),
//! invitations with the guests' lobby, and the shared image viewer. Each area is a module under `tests/meeting/`.

mod common;

#[path = "meeting/actions.rs"]
mod actions;

#[path = "meeting/faults.rs"]
mod faults;

#[path = "meeting/interop.rs"]
mod interop;

#[path = "meeting/invitations.rs"]
mod invitations;

#[path = "meeting/live.rs"]
mod live;

#[path = "meeting/media.rs"]
mod media;

#[path = "meeting/outcomes.rs"]
mod outcomes;

#[path = "meeting/restart.rs"]
mod restart;

#[path = "meeting/viewer.rs"]
mod viewer;
