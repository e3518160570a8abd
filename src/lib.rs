//! MDT Coordinator: book, run, record and report virtual multidisciplinary team meetings
//! for musculoskeletal care. Start reading at [`startup`], which wires everything below.

/// Authentication and authorisation: passwords, tokens, login limits, access rules.
pub mod auth;
/// The app's clock ("now"), which tests can move.
pub mod clock;
/// Layered settings: built-in defaults, settings file, environment file, `MDT__…` variables.
pub mod config;
/// Seeds an empty database with demo accounts, series and cases.
pub mod demo;
/// Parsed, validated domain types and pure rules (no I/O).
pub mod domain;
/// The one API error type and how each variant maps to a status and code.
pub mod error;
/// The clinic and patient letters a signed outcome makes, composed and rendered to PDF.
pub mod letters;
/// The live meeting: per-session rooms, WebSocket connections, the wire protocol.
pub mod live;
/// Email: templates, iCalendar invitations, the outbox worker and its transports.
pub mod mail;
/// The SFU: voice and screen share forwarded between a meeting's participants.
pub mod media;
/// HTTP handlers (thin), the table of routes, their OpenAPI document and the static front end.
pub mod routes;
/// The wire frames `live` and `media` share: media signalling, errors, a connection's queue.
pub mod signal;
/// Builds the HTTP server around the state, starts the mail worker, mounts the routes.
pub mod startup;
/// The application state every handler receives, built once at start-up.
pub mod state;
/// Storage: one Store over SQLite or PostgreSQL, each workflow written once.
pub mod store;
/// Tracing, request ids and Prometheus metrics, with no patient data.
pub mod telemetry;
/// Upgraded connections (the live WebSocket), served outside the HTTP/1 dispatcher.
pub mod upgraded;
