-- The handshake-obs ledger's own database and role, beside Temporal's databases.
-- Runs once, when the PostgreSQL volume is created.
CREATE ROLE handshake LOGIN PASSWORD 'handshake';
CREATE DATABASE handshake OWNER handshake;
