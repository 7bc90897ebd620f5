//! Where file bytes live. The database is the default (SQLite blob / PostgreSQL bytea);
//! a filesystem or object store implements the same trait without touching handlers.

use std::io::Read;

use diesel::prelude::*;

use crate::db::schema::file_blobs;
use crate::db::{on_backend, DbConnection};
use crate::error::{ApiResult, OrInternal};

pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under their SHA-256 unless they are stored already.
    fn put(&self, conn: &mut DbConnection, sha256: &str, bytes: &[u8]) -> ApiResult<()>;
    /// Stores what `source` holds (read to its end) under its SHA-256 unless that is stored
    /// already, in which case `source` is not read at all. Called on a blocking thread, inside
    /// the upload's transaction.
    fn put_from(
        &self,
        conn: &mut DbConnection,
        sha256: &str,
        source: &mut dyn Read,
    ) -> ApiResult<()>;
    fn get(&self, conn: &mut DbConnection, sha256: &str) -> ApiResult<Option<Vec<u8>>>;
    fn delete(&self, conn: &mut DbConnection, sha256: &str) -> ApiResult<()>;
}

pub struct DatabaseBlobs;

impl BlobStore for DatabaseBlobs {
    fn put(&self, conn: &mut DbConnection, sha256: &str, bytes: &[u8]) -> ApiResult<()> {
        let row = (
            file_blobs::sha256.eq(sha256),
            file_blobs::data.eq(bytes),
            file_blobs::size.eq(i64::try_from(bytes.len()).unwrap_or(i64::MAX)),
            file_blobs::created_at.eq(crate::time::now()),
        );
        // Two uploads of the same bytes may race: keep whichever lands first. The upsert
        // is not available on the multi-connection enum.
        on_backend!(conn, |c| diesel::insert_into(file_blobs::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c))?;
        Ok(())
    }

    /// The database binds the content as one value (a SQLite blob, a PostgreSQL `bytea`), so
    /// this reads the one file into memory for its insert: the only point where an upload
    /// holds a whole file (at most `STOCKROOM_MAX_UPLOAD_BYTES`), one file at a time however
    /// many it carries, with at most `STOCKROOM_CONCURRENT_UPLOADS_PER_USER` uploads in flight
    /// per user. A store on a filesystem or an object store would copy the stream instead.
    fn put_from(
        &self,
        conn: &mut DbConnection,
        sha256: &str,
        source: &mut dyn Read,
    ) -> ApiResult<()> {
        let stored: bool = diesel::select(diesel::dsl::exists(
            file_blobs::table.filter(file_blobs::sha256.eq(sha256)),
        ))
        .get_result(conn)?;
        if stored {
            return Ok(());
        }
        let mut bytes = Vec::new();
        source.read_to_end(&mut bytes).or_internal()?;
        self.put(conn, sha256, &bytes)
    }

    fn get(&self, conn: &mut DbConnection, sha256: &str) -> ApiResult<Option<Vec<u8>>> {
        Ok(file_blobs::table
            .filter(file_blobs::sha256.eq(sha256))
            .select(file_blobs::data)
            .first(conn)
            .optional()?)
    }

    fn delete(&self, conn: &mut DbConnection, sha256: &str) -> ApiResult<()> {
        diesel::delete(file_blobs::table.filter(file_blobs::sha256.eq(sha256))).execute(conn)?;
        Ok(())
    }
}
