//! Where file bytes live. The database is the default (SQLite blob / PostgreSQL bytea);
//! a filesystem or object store implements the same trait without touching handlers.

use diesel::prelude::*;

use crate::db::schema::file_blobs;
use crate::db::{on_backend, DbConnection};
use crate::error::ApiResult;

pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under their SHA-256 unless they are stored already.
    fn put(&self, conn: &mut DbConnection, sha256: &str, bytes: &[u8]) -> ApiResult<()>;
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
