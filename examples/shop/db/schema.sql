-- Schema of the shop database. Grants are NOT here: trustproof creates one login role per calling
-- workload and grants exactly what the spec's datastores.shopdb.roles says, nothing more.
CREATE TABLE products (
    id          integer PRIMARY KEY,
    name        text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0)
);

CREATE TABLE orders (
    id         serial PRIMARY KEY,
    customer   text NOT NULL,
    status     text NOT NULL DEFAULT 'placed',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_items (
    order_id   integer NOT NULL REFERENCES orders (id),
    product_id integer NOT NULL REFERENCES products (id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE payments (
    id           serial PRIMARY KEY,
    order_id     integer NOT NULL,
    amount_cents integer NOT NULL CHECK (amount_cents >= 0),
    state        text NOT NULL DEFAULT 'authorized'
);

-- Seeded from a scrubbed production-format sample (data: in trustproof.yaml): customers.csv and
-- newsletter.jsonl are shaped like a production export; every personal value in them is masked
-- (deterministically, so the foreign key below still holds) before it reaches the database.
CREATE TABLE customers (
    id            integer PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    full_name     text NOT NULL,
    phone         text,
    address       text,
    card_number   text,
    iban          text,
    birth_date    date,
    signed_up_at  timestamptz NOT NULL,
    last_login_ip text,
    notes         text
);

CREATE TABLE newsletter (
    email         text PRIMARY KEY REFERENCES customers (email),
    customer_id   integer NOT NULL REFERENCES customers (id),
    subscribed_at timestamptz NOT NULL,
    topics        text
);
