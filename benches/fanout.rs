//! Agenda fan-out benchmark (placeholder until the harness lands).
fn main() {}
