//! Rendered frames of image attachments (issue 18), kept in memory by the file's content
//! hash and the render's parameters, so a frame the meeting is looking at is encoded
//! once. Bounded by bytes; the least recently used renders go first.

use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::domain::viewer::RenderRequest;

/// A render's identity: the same bytes and parameters always give the same PNG.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RenderKey {
    sha256: String,
    frame: u32,
    /// The window's centre and width as bits (the stored window when `None`).
    window: Option<(u64, u64)>,
    size: Option<u32>,
}

impl RenderKey {
    pub fn new(sha256: &str, request: &RenderRequest) -> Self {
        RenderKey {
            sha256: sha256.to_owned(),
            frame: request.frame,
            window: request.window.map(|w| (w.center.to_bits(), w.width.to_bits())),
            size: request.size,
        }
    }
}

#[derive(Clone)]
struct ByLength;

impl Weighter<RenderKey, Arc<[u8]>> for ByLength {
    fn weight(&self, _key: &RenderKey, png: &Arc<[u8]>) -> u64 {
        png.len() as u64 + 64
    }
}

/// The cache.
pub struct Renders(Cache<RenderKey, Arc<[u8]>, ByLength>);

impl Renders {
    /// Holds up to `bytes` of PNGs.
    pub fn new(bytes: u64) -> Self {
        Renders(Cache::with_weighter((bytes / 32_768).max(16) as usize, bytes, ByLength))
    }

    pub fn get(&self, key: &RenderKey) -> Option<Arc<[u8]>> {
        self.0.get(key)
    }

    pub fn insert(&self, key: RenderKey, png: Arc<[u8]>) {
        self.0.insert(key, png);
    }
}
