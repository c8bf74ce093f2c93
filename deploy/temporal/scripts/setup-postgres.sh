#!/bin/sh
# Create Temporal's two databases in PostgreSQL and bring their schemas up to date
# (temporal-sql-tool from the temporalio/admin-tools image). On a second start the databases
# and their base schema already exist: those steps may fail, the update must not.
set -eu

echo 'waiting for PostgreSQL'
until nc -z -w 10 postgresql 5432; do sleep 1; done

tool() { temporal-sql-tool --plugin postgres12 --ep postgresql -u temporal -p 5432 "$@"; }
schema=/etc/temporal/schema/postgresql/v12

for db in temporal temporal_visibility; do
  tool --db "$db" create || echo "database $db exists"
  tool --db "$db" setup-schema -v 0.0 || echo "database $db has its base schema"
done
tool --db temporal update-schema -d "$schema/temporal/versioned"
tool --db temporal_visibility update-schema -d "$schema/visibility/versioned"

echo 'Temporal schemas are set up'
