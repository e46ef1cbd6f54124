#!/bin/sh
# The compose broker's entrypoint: writes deploy/rabbitmq/definitions.json with this deployment's
# passwords (RABBITMQ_API_PASSWORD, RABBITMQ_RENDERER_PASSWORD; compose refuses to start
# without them) to /tmp, which 20-snapshots.conf loads at boot, then runs the image's own
# entrypoint. A blank node that loads definitions creates no default (administrator) user.
set -eu
for name in RABBITMQ_API_PASSWORD RABBITMQ_RENDERER_PASSWORD; do
  eval "value=\${$name:-}"
  case "$value" in
    "" | *[!A-Za-z0-9_.~-]*)
      echo "$name must be set to URL-safe characters (README: The stack in containers)" >&2
      exit 64 ;;
  esac
done
umask 077
# (the paths can be moved for tests/integration/test_observability_deploy.py)
sed -e "s|@RABBITMQ_API_PASSWORD@|$RABBITMQ_API_PASSWORD|" \
    -e "s|@RABBITMQ_RENDERER_PASSWORD@|$RABBITMQ_RENDERER_PASSWORD|" \
    "${DEFINITIONS_TEMPLATE:-/etc/rabbitmq/definitions.json}" \
    > "${DEFINITIONS_FILE:-/tmp/definitions.json}"
unset RABBITMQ_API_PASSWORD RABBITMQ_RENDERER_PASSWORD
exec docker-entrypoint.sh "$@"
