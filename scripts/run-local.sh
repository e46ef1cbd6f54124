#!/usr/bin/env bash
# Starts the API and one renderer in the foreground against the local PostgreSQL and RabbitMQ.
# Ctrl-C (or SIGTERM) stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${SNAPSHOT_API_PORT:-8000}"
# Each service connects as its own broker user (`make broker-users` created them), unless set.
SNAPSHOT_API_AMQP_URL="${SNAPSHOT_API_AMQP_URL:-$(python3 scripts/rabbitmq_users.py --url snapshot-api)}"
SNAPSHOT_RENDERER_AMQP_URL="${SNAPSHOT_RENDERER_AMQP_URL:-$(python3 scripts/rabbitmq_users.py --url snapshot-renderer)}"
export SNAPSHOT_API_AMQP_URL SNAPSHOT_RENDERER_AMQP_URL
# Development: webhooks may reach a receiver on this machine (127.0.0.1 / ::1 only).
export SNAPSHOT_API_WEBHOOK_ALLOW_LOOPBACK="${SNAPSHOT_API_WEBHOOK_ALLOW_LOOPBACK:-true}"
pids=()
stop() { trap - INT TERM EXIT; kill -TERM "${pids[@]}" 2>/dev/null || true; wait || true; }
trap stop INT TERM EXIT
.venv/bin/snapshot-renderer & pids+=($!)
.venv/bin/snapshot-api serve & pids+=($!)
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:${port}/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
token=$(.venv/bin/snapshot-api token alice)
cat <<TXT

  Room Snapshots is up.
  API docs:   http://127.0.0.1:${port}/docs
  Renderer:   http://127.0.0.1:${SNAPSHOT_RENDERER_METRICS_PORT:-9100}/healthz

  Try it (a development token for "alice"):

    TOKEN=${token}
    ROOM=\$(curl -s -X POST http://127.0.0.1:${port}/api/v1/rooms -H "Authorization: Bearer \$TOKEN" \\
      -H 'Content-Type: application/json' -d '{"name": "Design review"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    curl -s -X POST http://127.0.0.1:${port}/api/v1/rooms/\$ROOM/messages -H "Authorization: Bearer \$TOKEN" \\
      -H 'Content-Type: application/json' -d '{"messages": [{"body": "Hello"}, {"body": "Ship it"}]}'
    SNAP=\$(curl -s -X POST http://127.0.0.1:${port}/api/v1/rooms/\$ROOM/snapshots -H "Authorization: Bearer \$TOKEN" \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshot_id"])')
    curl -s http://127.0.0.1:${port}/api/v1/snapshots/\$SNAP -H "Authorization: Bearer \$TOKEN"
    curl -s -o snapshot.pdf http://127.0.0.1:${port}/api/v1/snapshots/\$SNAP/download -H "Authorization: Bearer \$TOKEN"

  Ctrl-C stops both services.
TXT
wait -n "${pids[@]}"
