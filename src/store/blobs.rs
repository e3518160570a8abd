//! Content-addressed blob storage on the local filesystem: each file's bytes are kept once
//! under `<data dir>/attachments/<first two hex digits>/<sha256>`, written to a temporary
//! name and renamed so a reader never sees half a file. The database says which case
//! holds which blob.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

pub struct Blobs {
    root: PathBuf,
}

impl Blobs {
    /// Start-up: creates the directory.
    pub fn new(data_dir: &std::path::Path) -> std::io::Result<Self> {
        let root = data_dir.join("attachments");
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    /// The folder the blobs are kept in.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    fn path(&self, sha256: &str) -> Option<PathBuf> {
        let valid = sha256.len() == 64
            && sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        valid.then(|| self.root.join(&sha256[..2]).join(sha256))
    }

    /// Stores `bytes` (once, however often they are uploaded); returns their sha256.
    pub async fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.path(&sha).ok_or_else(|| std::io::Error::other("bad digest"))?;
        if tokio::fs::try_exists(&path).await? {
            return Ok(sha);
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::File::open(&tmp).await?.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(sha)
    }

    pub async fn get(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        let path = self.path(sha256).ok_or_else(|| std::io::Error::other("bad digest"))?;
        tokio::fs::read(path).await
    }

    /// How many blobs are stored (tests check refused uploads store nothing).
    pub fn count(&self) -> usize {
        walk_count(&self.root)
    }
}

fn walk_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| if e.path().is_dir() { walk_count(&e.path()) } else { 1 })
                .sum()
        })
        .unwrap_or(0)
}
