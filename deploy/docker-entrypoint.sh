#!/bin/sh
# Compose hands secrets over as files (FOO_FILE=/run/secrets/foo). The services' settings read
# those themselves; tools that read only plain variables (python -m shared.migrations) get
# FOO exported from FOO_FILE here, unless FOO is already set.
set -eu
for name in $(env | sed -n 's/^\([A-Z][A-Z0-9_]*\)_FILE=.*/\1/p'); do
  if [ -z "$(printenv "$name" || true)" ]; then
    file=$(printenv "${name}_FILE")
    [ -r "$file" ] || { echo "repitbot-entrypoint: ${name}_FILE=$file is not readable" >&2; exit 1; }
    export "$name=$(cat "$file")"
  fi
done
exec "$@"
