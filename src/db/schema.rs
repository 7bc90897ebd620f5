// One portable schema for both backends. Ids are BIGINT (SQLite's INTEGER is 64-bit),
// times are UTC `Timestamp`, dates are `Date` (ISO text on SQLite).

diesel::table! {
    file_blobs (sha256) {
        sha256 -> Text,
        data -> Binary,
        size -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Nullable<Text>,
        username_key -> Nullable<Text>,
        email -> Nullable<Text>,
        email_key -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        role -> Text,
        name -> Nullable<Text>,
        phone -> Nullable<Text>,
        bio -> Nullable<Text>,
        avatar_file_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    files (id) {
        id -> BigInt,
        sha256 -> Text,
        filename -> Text,
        content_type -> Text,
        size -> BigInt,
        width -> Nullable<Integer>,
        height -> Nullable<Integer>,
        uploader_id -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        user_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        user_agent -> Nullable<Text>,
        address -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> BigInt,
        session_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        spent_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(files -> file_blobs (sha256));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));

diesel::table! {
    items (id) {
        id -> BigInt,
        name -> Text,
        name_key -> Text,
        kind -> Text,
        size -> Nullable<Text>,
        unit -> Nullable<Text>,
        sku -> Nullable<Text>,
        barcode -> Nullable<Text>,
        description -> Nullable<Text>,
        min_quantity -> BigInt,
        target_quantity -> Nullable<BigInt>,
        expiry_warning_days -> Nullable<Integer>,
        photo_file_id -> Nullable<BigInt>,
        quantity -> BigInt,
        next_expiry -> Nullable<Date>,
        version -> BigInt,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        expiry_sort -> Date,
        low_stock_alerted -> Bool,
        low_stock_spells -> BigInt,
        alert_due -> Bool,
        low_from -> Nullable<Date>,
    }
}

diesel::table! {
    batches (id) {
        id -> BigInt,
        item_id -> BigInt,
        quantity -> BigInt,
        expiry_date -> Nullable<Date>,
        lot_code -> Nullable<Text>,
        received_at -> Timestamp,
        alert_stage -> Integer,
        alert_on -> Date,
    }
}

diesel::table! {
    stock_movements (id) {
        id -> BigInt,
        item_id -> BigInt,
        batch_id -> Nullable<BigInt>,
        delta -> BigInt,
        reason -> Text,
        quantity_after -> BigInt,
        actor_id -> Nullable<BigInt>,
        note -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(batches -> items (item_id));
diesel::joinable!(stock_movements -> items (item_id));

diesel::table! {
    holdings (id) {
        id -> BigInt,
        customer_id -> BigInt,
        item_id -> Nullable<BigInt>,
        item_name -> Text,
        quantity -> BigInt,
        expiry_date -> Nullable<Date>,
        min_quantity -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        alert_stage -> Integer,
        alert_on -> Date,
    }
}

diesel::table! {
    replenishment_requests (id) {
        id -> BigInt,
        customer_id -> BigInt,
        item_id -> Nullable<BigInt>,
        item_name -> Text,
        quantity -> BigInt,
        note -> Nullable<Text>,
        status -> Text,
        decision_reason -> Nullable<Text>,
        decided_by -> Nullable<BigInt>,
        decided_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(holdings -> items (item_id));

diesel::table! {
    file_thumbnails (sha256, size) {
        sha256 -> Text,
        size -> Integer,
        data -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    rate_limits (key) {
        key -> Text,
        window_start -> Timestamp,
        hits -> Integer,
    }
}

diesel::table! {
    chats (id) {
        id -> BigInt,
        kind -> Text,
        title -> Nullable<Text>,
        direct_key -> Nullable<Text>,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        last_message_id -> Nullable<BigInt>,
        last_activity_at -> Timestamp,
    }
}

diesel::table! {
    chat_members (chat_id, user_id) {
        chat_id -> BigInt,
        user_id -> BigInt,
        role -> Text,
        joined_at -> Timestamp,
        last_read_message_id -> BigInt,
        muted -> Bool,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        chat_id -> BigInt,
        author_id -> BigInt,
        kind -> Text,
        body -> Nullable<Text>,
        file_id -> Nullable<BigInt>,
        client_id -> Nullable<Text>,
        created_at -> Timestamp,
        edited_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    event_streams (user_id) {
        user_id -> BigInt,
        last_seq -> BigInt,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        kind -> Text,
        data -> Text,
        topic -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_events (user_id, seq) {
        user_id -> BigInt,
        seq -> BigInt,
        event_id -> BigInt,
    }
}

diesel::table! {
    notifications (id) {
        id -> BigInt,
        user_id -> BigInt,
        kind -> Text,
        cause -> Text,
        title -> Text,
        body -> Text,
        subject_type -> Text,
        subject_id -> BigInt,
        path -> Text,
        count -> BigInt,
        last_message_id -> Nullable<BigInt>,
        read_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    alert_settings (id) {
        id -> Integer,
        default_window -> Integer,
    }
}

diesel::table! {
    bots (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        description -> Nullable<Text>,
        token_hash -> Text,
        signing_secret -> Text,
        webhook_url -> Nullable<Text>,
        webhook_disabled_at -> Nullable<Timestamp>,
        webhook_disabled_reason -> Nullable<Text>,
        delivered_seq -> BigInt,
        next_attempt_at -> Nullable<Timestamp>,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        bot_id -> BigInt,
        seq -> BigInt,
        event_type -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        last_attempt_at -> Nullable<Timestamp>,
        next_attempt_at -> Nullable<Timestamp>,
        delivered_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(chat_members -> chats (chat_id));
diesel::joinable!(chat_members -> users (user_id));
diesel::joinable!(messages -> chats (chat_id));
diesel::joinable!(user_events -> events (event_id));
diesel::joinable!(bots -> users (user_id));
diesel::joinable!(webhook_deliveries -> bots (bot_id));

diesel::table! {
    stock_totals (id) {
        id -> Integer,
        items -> BigInt,
        units -> BigInt,
    }
}

diesel::table! {
    stock_total_deltas (id) {
        id -> BigInt,
        items -> BigInt,
        units -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    file_blobs,
    users,
    files,
    sessions,
    refresh_tokens,
    items,
    batches,
    stock_movements,
    holdings,
    replenishment_requests,
    file_thumbnails,
    rate_limits,
    chats,
    chat_members,
    messages,
    event_streams,
    events,
    user_events,
    notifications,
    alert_settings,
    bots,
    webhook_deliveries,
    stock_totals,
    stock_total_deltas,
);
