//! The control node's durable registry: one redb database holding the latest
//! [`ControlSnapshot`], rewritten whenever the registry changes. A restarted control node
//! loads it and carries on with every service, shadow and announced relocation.

use std::path::{Path, PathBuf};

use edgeshift_control::ControlSnapshot;
use redb::{Database, ReadableDatabase, TableDefinition};

const TABLE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("control");
const KEY: &str = "snapshot";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("control database {path}: {source}")]
    Db {
        /// The file.
        path: PathBuf,
        /// Why.
        source: redb::Error,
    },
    /// The stored snapshot is not one this build can read.
    #[error(
        "control database {path}: unreadable registry ({source}); move the file away to start empty"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: edgeshift_control::SnapshotError,
    },
}

/// The registry database.
pub struct ControlStore {
    db: Database,
    path: PathBuf,
    last: Vec<u8>,
}

impl std::fmt::Debug for ControlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlStore")
            .field("path", &self.path)
            .finish()
    }
}

impl ControlStore {
    /// Opens (or creates) the database at `path`.
    ///
    /// # Errors
    /// The file cannot be opened as a redb database.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|e| StoreError::Db {
            path: path.to_owned(),
            source: e.into(),
        })?;
        Ok(Self {
            db,
            path: path.to_owned(),
            last: Vec::new(),
        })
    }

    fn db_err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            source: e.into(),
        }
    }

    /// The stored snapshot, if any.
    ///
    /// # Errors
    /// A database failure or an unreadable snapshot.
    pub fn load(&mut self) -> Result<Option<ControlSnapshot>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let table = match tx.open_table(TABLE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.db_err(e)),
        };
        let Some(v) = table.get(KEY).map_err(|e| self.db_err(e))? else {
            return Ok(None);
        };
        let bytes = v.value().to_vec();
        let snap = ControlSnapshot::from_bytes(&bytes).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            source,
        })?;
        self.last = bytes;
        Ok(Some(snap))
    }

    /// Stores `snap` if it differs from what is stored; returns whether it wrote.
    ///
    /// # Errors
    /// A database failure.
    pub fn save(&mut self, snap: &ControlSnapshot) -> Result<bool, StoreError> {
        let bytes = snap.to_bytes().map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            source,
        })?;
        if bytes == self.last {
            return Ok(false);
        }
        let tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        {
            let mut t = tx.open_table(TABLE).map_err(|e| self.db_err(e))?;
            t.insert(KEY, bytes.as_slice())
                .map_err(|e| self.db_err(e))?;
        }
        tx.commit().map_err(|e| self.db_err(e))?;
        self.last = bytes;
        Ok(true)
    }
}
