-- Test data only (run by the sandbox's admin after the roles and their grants exist).
INSERT INTO customers (name) VALUES ('Example Customer');
INSERT INTO invoices (customer_id, amount_cents) VALUES (1, 1200);
INSERT INTO payments (invoice_id, amount_cents) VALUES (1, 1200);
INSERT INTO audit_log (entry) VALUES ('corpus seed');
