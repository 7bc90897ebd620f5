use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{chat_members, file_thumbnails, files, items, messages, users};
use crate::db::{on_backend, DbConnection};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = files)]
pub struct FileRow {
    pub id: i64,
    pub sha256: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub uploader_id: Option<i64>,
    pub created_at: NaiveDateTime,
}

pub struct NewFile<'a> {
    pub sha256: &'a str,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub uploader_id: i64,
}

pub fn insert_file(conn: &mut DbConnection, f: &NewFile<'_>) -> QueryResult<FileRow> {
    let id: i64 = diesel::insert_into(files::table)
        .values((
            files::sha256.eq(f.sha256),
            files::filename.eq(f.filename),
            files::content_type.eq(f.content_type),
            files::size.eq(f.size),
            files::width.eq(f.width),
            files::height.eq(f.height),
            files::uploader_id.eq(f.uploader_id),
            files::created_at.eq(crate::time::now()),
        ))
        .returning(files::id)
        .get_result(conn)?;
    find_file(conn, id)
}

pub fn find_file(conn: &mut DbConnection, id: i64) -> QueryResult<FileRow> {
    files::table
        .filter(files::id.eq(id))
        .select(FileRow::as_select())
        .first(conn)
}

pub fn find_files(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<FileRow>> {
    files::table
        .filter(files::id.eq_any(ids))
        .select(FileRow::as_select())
        .load(conn)
}

/// Whether the file was posted (and not deleted) in a chat `user_id` belongs to: the
/// members of a chat may read the files posted in it.
pub fn is_posted_to(conn: &mut DbConnection, id: i64, user_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        messages::table
            .inner_join(
                chat_members::table.on(chat_members::chat_id
                    .eq(messages::chat_id)
                    .and(chat_members::user_id.eq(user_id))),
            )
            .filter(messages::file_id.eq(id))
            .filter(messages::deleted_at.is_null()),
    ))
    .get_result(conn)
}

/// Whether the file is an item photo or a live person's avatar: those are public to
/// everyone signed in.
pub fn is_public_picture(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    let photo: bool = diesel::select(diesel::dsl::exists(
        items::table.filter(items::photo_file_id.eq(id)),
    ))
    .get_result(conn)?;
    if photo {
        return Ok(true);
    }
    diesel::select(diesel::dsl::exists(
        users::table
            .filter(users::avatar_file_id.eq(id))
            .filter(users::deleted_at.is_null()),
    ))
    .get_result(conn)
}

pub fn delete_file(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    // Avatars point at files without a foreign key (users predate files); clear them here.
    diesel::update(users::table.filter(users::avatar_file_id.eq(id)))
        .set(users::avatar_file_id.eq(None::<i64>))
        .execute(conn)?;
    diesel::delete(files::table.filter(files::id.eq(id))).execute(conn)
}

pub fn sha_in_use(conn: &mut DbConnection, sha256: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        files::table.filter(files::sha256.eq(sha256)),
    ))
    .get_result(conn)
}

pub fn thumbnail(conn: &mut DbConnection, sha256: &str, size: i32) -> QueryResult<Option<Vec<u8>>> {
    file_thumbnails::table
        .filter(file_thumbnails::sha256.eq(sha256))
        .filter(file_thumbnails::size.eq(size))
        .select(file_thumbnails::data)
        .first(conn)
        .optional()
}

/// Caches a thumbnail; a concurrent request that made the same one first wins.
pub fn store_thumbnail(
    conn: &mut DbConnection,
    sha256: &str,
    size: i32,
    data: &[u8],
) -> QueryResult<()> {
    let row = (
        file_thumbnails::sha256.eq(sha256),
        file_thumbnails::size.eq(size),
        file_thumbnails::data.eq(data),
        file_thumbnails::created_at.eq(crate::time::now()),
    );
    on_backend!(conn, |c| diesel::insert_into(file_thumbnails::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

pub fn delete_thumbnails(conn: &mut DbConnection, sha256: &str) -> QueryResult<usize> {
    diesel::delete(file_thumbnails::table.filter(file_thumbnails::sha256.eq(sha256))).execute(conn)
}

/// Serializes one uploader's uploads: on PostgreSQL a lock on their user row (on SQLite the
/// write transaction already holds the one writer's lock).
pub fn lock_uploader(conn: &mut DbConnection, user_id: i64) -> QueryResult<()> {
    if let DbConnection::Postgresql(pg) = conn {
        users::table
            .filter(users::id.eq(user_id))
            .select(users::id)
            .for_update()
            .load::<i64>(pg)?;
    }
    Ok(())
}

/// The bytes of every file `user_id` uploaded (each file counts, identical bytes included).
pub fn stored_bytes(conn: &mut DbConnection, user_id: i64) -> QueryResult<i64> {
    files::table
        .filter(files::uploader_id.eq(user_id))
        // SUM of a BIGINT is NUMERIC on PostgreSQL.
        .select(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
        >("CAST(SUM(files.size) AS BIGINT)"))
        .first::<Option<i64>>(conn)
        .map(Option::unwrap_or_default)
}
