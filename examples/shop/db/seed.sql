-- Test data only: no real customer data ever goes into a sandbox.
INSERT INTO products (id, name, price_cents) VALUES
    (1, 'Trust anchor (paperweight)', 1500),
    (2, 'Short-lived certificate (5 min)', 300),
    (3, 'Revocation list, printed', 990);

INSERT INTO orders (customer, status) VALUES ('alice', 'shipped');
INSERT INTO order_items (order_id, product_id, quantity) VALUES (1, 1, 2);
INSERT INTO payments (order_id, amount_cents, state) VALUES (1, 3000, 'captured');
