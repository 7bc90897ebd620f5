-- Items, their batches (lots) and the stock ledger.
CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('perishable', 'non_perishable')),
    size TEXT,
    unit TEXT,
    sku TEXT UNIQUE,
    barcode TEXT UNIQUE,
    description TEXT,
    min_quantity BIGINT NOT NULL DEFAULT 0 CHECK (min_quantity >= 0),
    target_quantity BIGINT CHECK (target_quantity >= 0),
    expiry_warning_days INTEGER CHECK (expiry_warning_days >= 0),
    photo_file_id BIGINT REFERENCES files (id) ON DELETE SET NULL,
    -- Sum of the batches, kept in the same transaction as every stock change.
    quantity BIGINT NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    -- Earliest expiry among batches that still hold stock.
    next_expiry DATE,
    version BIGINT NOT NULL DEFAULT 1,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX items_name ON items (name_key, id);
CREATE INDEX items_quantity ON items (quantity, id);
CREATE INDEX items_created ON items (created_at, id);
CREATE INDEX items_next_expiry ON items (next_expiry, id);

CREATE TABLE batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    item_id BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    quantity BIGINT NOT NULL CHECK (quantity >= 0),
    expiry_date DATE,
    lot_code TEXT,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX batches_item_expiry ON batches (item_id, expiry_date);
CREATE INDEX batches_expiry_item ON batches (expiry_date, item_id);

CREATE TABLE stock_movements (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    item_id BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    batch_id BIGINT REFERENCES batches (id) ON DELETE SET NULL,
    delta BIGINT NOT NULL,
    reason TEXT NOT NULL,
    quantity_after BIGINT NOT NULL,
    actor_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    note TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX stock_movements_item ON stock_movements (item_id, id);
