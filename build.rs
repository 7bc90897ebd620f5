//! Rebuilds when a migration changes: `embed_migrations!` reads the `migrations` folders at
//! compile time, and cargo does not otherwise know the crate depends on them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
