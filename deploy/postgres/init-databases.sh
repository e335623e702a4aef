#!/usr/bin/env bash
# PostgreSQL init for compose: one role and one database per service, each role allowed only
# its own database (CONNECT revoked from PUBLIC). Idempotent: after adding a service to an
# existing volume, run it again:
#   docker compose -f docker-compose.microservices.yml exec postgres /docker-entrypoint-initdb.d/10-repitbot.sh
# SERVICE_DATABASES lists the databases (the role has the database's name); the role's password
# is the secret /run/secrets/<database>_password. The metrics exporter gets a role of its own,
# MONITORING_ROLE (repitbot_monitor), member of pg_monitor and nothing else: it reads the statistics
# views, not the services' data (password: the secret postgres_exporter_password).
set -euo pipefail
secrets_dir=${SECRETS_DIR:-/run/secrets}

# login_role NAME PASSWORD [SQL]: the role (created once, its password set every time), then SQL run with
# :'name' bound to it
login_role() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}" --dbname postgres \
       -v name="$1" -v password="$2" <<SQL
SELECT format('CREATE ROLE %I', :'name') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name') \\gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'name', :'password') \\gexec
${3:-}
SQL
}

for database in ${SERVICE_DATABASES:?set SERVICE_DATABASES, e.g. "repitbot_user repitbot_lesson"}; do
  echo "repitbot: database and role $database"
  login_role "$database" "$(cat "$secrets_dir/${database}_password")" "
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', :'name') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'name', :'name') \gexec"
done

monitoring_role=${MONITORING_ROLE:-repitbot_monitor}
echo "repitbot: role $monitoring_role for the metrics exporter"
login_role "$monitoring_role" "$(cat "$secrets_dir/postgres_exporter_password")" \
  "SELECT format('GRANT pg_monitor TO %I', :'name') \gexec"
