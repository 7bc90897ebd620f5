-- What customers hold, and what they ask the store for.
CREATE TABLE holdings (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    customer_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    item_id BIGINT REFERENCES items (id) ON DELETE SET NULL,
    -- Kept so a holding still reads well after its item is deleted.
    item_name TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity >= 0),
    expiry_date DATE,
    min_quantity BIGINT NOT NULL DEFAULT 0 CHECK (min_quantity >= 0),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX holdings_customer ON holdings (customer_id, id);
CREATE INDEX holdings_customer_item ON holdings (customer_id, item_id, expiry_date);

CREATE TABLE replenishment_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    customer_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    item_id BIGINT REFERENCES items (id) ON DELETE SET NULL,
    item_name TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    note TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'fulfilled', 'rejected', 'cancelled')),
    decision_reason TEXT,
    decided_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    decided_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX requests_status ON replenishment_requests (status, id);
CREATE INDEX requests_customer ON replenishment_requests (customer_id, id);
CREATE INDEX requests_item_status ON replenishment_requests (item_id, status);
