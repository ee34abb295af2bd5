-- The billing database of the misconfiguration corpus's PostgreSQL target.
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE invoices (
    id serial PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id),
    amount_cents integer NOT NULL
);
CREATE TABLE payments (
    id serial PRIMARY KEY,
    invoice_id integer NOT NULL REFERENCES invoices (id),
    amount_cents integer NOT NULL
);
-- Written by a back-office job only; no workload of the spec reads or writes it.
CREATE TABLE audit_log (id serial PRIMARY KEY, entry text NOT NULL);
