//! Safe defaults, and the faults found by attacking the running service (issue 9): each
//! test here failed on the code before its fix.

use crate::common::{is_postgres, TestApp};

// ---------------------------------------------------------------------------------------
// Point 6: safe as shipped.

#[actix_web::test]
async fn the_sqlite_database_is_readable_by_its_owner_only() {
    if is_postgres() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn().await;
    // Write something so that the WAL and its index exist too.
    app.register("ruth").await;
    let path = stockroom::config::sqlite_path(&app.database_url).to_owned();
    for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
        let mode = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
}
