//! `stockroom serve --demo`: on an empty database, a small store that shows every feature.

use chrono::Duration;

use crate::auth::{Principal, Role};
use crate::error::ApiResult;
use crate::identity::service::{create_account, NewAccount};
use crate::inventory::dto::{ItemKind, NewBatch, NewItem};
use crate::state::AppState;

const DEMO_PASSWORD: &str = "stockroom-demo";

/// Seeds the demo store when the database has no accounts yet, and prints the logins.
pub async fn seed(state: &AppState) -> ApiResult<()> {
    let empty = state
        .db
        .run(|conn| {
            use crate::db::schema::users;
            use diesel::prelude::*;
            Ok(users::table.count().get_result::<i64>(conn)? == 0)
        })
        .await?;
    if !empty {
        tracing::info!("--demo: the database is not empty, so no demo store was created");
        return Ok(());
    }
    let accounts = [
        ("owner", Role::Owner, "Olivia Owner"),
        ("worker", Role::Worker, "Walter Worker"),
        ("alice", Role::Customer, "Alice Customer"),
        ("bob", Role::Customer, "Bob Customer"),
    ];
    let mut ids = Vec::new();
    for (username, role, name) in accounts {
        let user = create_account(
            state,
            NewAccount {
                username: username.to_owned(),
                email: Some(format!("{username}@demo.stockroom.local")),
                password: DEMO_PASSWORD.to_owned(),
                name: Some(name.to_owned()),
                phone: None,
            },
            role,
        )
        .await?;
        ids.push(user.id);
    }
    seed_stock(state, ids[1], &ids[2..]).await?;
    let mut logins = String::from("demo store created; log in with any of:\n");
    for (username, role, _) in accounts {
        logins.push_str(&format!(
            "  {username:<8} ({role})  password: {DEMO_PASSWORD}\n"
        ));
    }
    println!("{logins}");
    Ok(())
}

fn acting(user_id: i64, role: Role) -> Principal {
    Principal {
        user_id,
        role,
        session_id: None,
        bot_id: None,
        ticket: None,
    }
}

/// A few dozen items: fresh, expiring and expired batches, low stock, and some requests.
async fn seed_stock(state: &AppState, worker: i64, customers: &[i64]) -> ApiResult<()> {
    let staff = acting(worker, Role::Worker);
    let today = crate::time::today();
    let perishables = [
        ("Whole milk", "1", "l"),
        ("Yogurt", "500", "g"),
        ("Cheddar", "200", "g"),
        ("Butter", "250", "g"),
        ("Eggs", "12", "pcs"),
        ("Bread", "1", "loaf"),
        ("Apples", "1", "kg"),
        ("Bananas", "1", "kg"),
        ("Tomatoes", "500", "g"),
        ("Lettuce", "1", "head"),
        ("Chicken breast", "500", "g"),
        ("Salmon", "300", "g"),
        ("Orange juice", "1", "l"),
        ("Cream", "200", "ml"),
        ("Strawberries", "250", "g"),
        ("Spinach", "200", "g"),
        ("Mozzarella", "125", "g"),
        ("Ham", "150", "g"),
    ];
    let dry = [
        ("Rice", "1", "kg"),
        ("Pasta", "500", "g"),
        ("Flour", "1", "kg"),
        ("Sugar", "1", "kg"),
        ("Olive oil", "750", "ml"),
        ("Coffee beans", "500", "g"),
        ("Tea bags", "40", "pcs"),
        ("Dish soap", "500", "ml"),
        ("Paper towels", "4", "rolls"),
        ("Batteries AA", "8", "pcs"),
        ("Light bulbs", "2", "pcs"),
        ("Salt", "500", "g"),
        ("Canned beans", "400", "g"),
        ("Toothpaste", "75", "ml"),
    ];
    let mut ids = Vec::new();
    for (n, (name, size, unit)) in perishables.iter().enumerate() {
        let n = i64::try_from(n).unwrap_or(0);
        // Spread expiry: some expired, some expiring this week, most fresh.
        let offset = match n % 6 {
            0 => -3,
            1 => 2,
            2 => 5,
            _ => 10 + n,
        };
        let item = crate::inventory::service::create(
            state,
            &staff,
            NewItem {
                name: (*name).to_owned(),
                kind: ItemKind::Perishable,
                size: Some((*size).to_owned()),
                unit: Some((*unit).to_owned()),
                sku: Some(format!("P-{:03}", n + 1)),
                barcode: Some(format!("400000000{:04}", n + 1)),
                description: None,
                min_quantity: 5,
                target_quantity: Some(20),
                expiry_warning_days: None,
                photo_file_id: None,
                quantity: Some(3 + (n * 7) % 25),
                expiry_date: Some(today + Duration::days(offset)),
                lot_code: Some(format!("L{}", 100 + n)),
            },
        )
        .await?;
        if n % 4 == 0 {
            crate::inventory::service::add_batch(
                state,
                &staff,
                item.id,
                NewBatch {
                    quantity: 6,
                    expiry_date: Some(today + Duration::days(21)),
                    lot_code: Some(format!("L{}", 200 + n)),
                },
            )
            .await?;
        }
        ids.push(item.id);
    }
    for (n, (name, size, unit)) in dry.iter().enumerate() {
        let n = i64::try_from(n).unwrap_or(0);
        let item = crate::inventory::service::create(
            state,
            &staff,
            NewItem {
                name: (*name).to_owned(),
                kind: ItemKind::NonPerishable,
                size: Some((*size).to_owned()),
                unit: Some((*unit).to_owned()),
                sku: Some(format!("D-{:03}", n + 1)),
                barcode: Some(format!("500000000{:04}", n + 1)),
                description: None,
                min_quantity: 4,
                target_quantity: None,
                expiry_warning_days: None,
                photo_file_id: None,
                quantity: Some((n * 5) % 30),
                expiry_date: None,
                lot_code: None,
            },
        )
        .await?;
        ids.push(item.id);
    }
    for (k, &customer) in customers.iter().enumerate() {
        let who = acting(customer, Role::Customer);
        for (j, &item_id) in ids.iter().skip(k * 3 + 3).step_by(5).take(3).enumerate() {
            let request = crate::replenishment::service::create(
                state,
                &who,
                crate::replenishment::dto::NewRequest {
                    item_id,
                    quantity: 2,
                    note: Some("for the week".to_owned()),
                },
            )
            .await?;
            if j == 0 {
                // Fulfilled requests give the customer holdings to look at; if stock is
                // short the request simply stays pending.
                let _ = crate::replenishment::service::fulfil(state, &staff, request.id).await;
            }
        }
    }
    Ok(())
}
