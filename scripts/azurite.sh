#!/usr/bin/env bash
# Start/stop a local Azurite (blob only) for humans, on loopback, the way entra-state talks to
# Azure: HTTPS + OAuth ("--oauth basic": JWT claims checked, signature not), since the official
# azure_storage_blob crate only does token auth and token auth requires https.
#
#   scripts/azurite.sh start    # prints the container URL to use and the CA file to trust
#   scripts/azurite.sh stop
#   scripts/azurite.sh status
#
# Env: AZURITE_BLOB_PORT (default 10000), AZURITE_BIN (default .tools/node_modules/.bin/azurite-blob).
# State lives in .tools/azurite/ (git-ignored): certs, data, log, pid.
# Tests do not use this script: they start their own Azurite (entra_state::testing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${AZURITE_BIN:-$ROOT/.tools/node_modules/.bin/azurite-blob}"
DIR="$ROOT/.tools/azurite"
PORT="${AZURITE_BLOB_PORT:-10000}"
PIDFILE="$DIR/azurite.pid"
LOG="$DIR/azurite.log"

die() { echo "azurite.sh: $*" >&2; exit 1; }

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

make_certs() {
  [ -f "$DIR/ca.pem" ] && [ -f "$DIR/leaf.pem" ] && [ -f "$DIR/leaf-key.pem" ] && return 0
  command -v openssl >/dev/null || die "openssl is needed to create the local CA (apt-get install -y openssl)"
  echo "azurite.sh: creating a local CA and a 127.0.0.1/localhost certificate in $DIR"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=entra-enrich local Azurite CA" -keyout "$DIR/ca-key.pem" -out "$DIR/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=azurite-local" \
    -keyout "$DIR/leaf-key.pem" -out "$DIR/leaf.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > "$DIR/leaf.ext"
  openssl x509 -req -in "$DIR/leaf.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca-key.pem" -CAcreateserial \
    -days 365 -extfile "$DIR/leaf.ext" -out "$DIR/leaf.pem" 2>/dev/null
  rm -f "$DIR/leaf.csr" "$DIR/leaf.ext"
}

start() {
  [ -x "$BIN" ] || die "Azurite not found at $BIN: run scripts/bootstrap.sh first"
  mkdir -p "$DIR/data"
  if pid="$(running_pid)"; then
    echo "azurite.sh: already running (pid $pid)"
  else
    make_certs
    nohup "$BIN" --blobHost 127.0.0.1 --blobPort "$PORT" --location "$DIR/data" \
      --disableTelemetry --silent --oauth basic --cert "$DIR/leaf.pem" --key "$DIR/leaf-key.pem" \
      > "$LOG" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 100); do
      grep -q "successfully listens on" "$LOG" 2>/dev/null && break
      kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { cat "$LOG" >&2; rm -f "$PIDFILE"; die "Azurite exited"; }
      sleep 0.2
    done
    grep -q "successfully listens on" "$LOG" || { cat "$LOG" >&2; die "Azurite did not start within 20 s"; }
  fi
  cat <<MSG
Azurite blob (HTTPS, --oauth basic) on loopback:
  account URL:   https://127.0.0.1:$PORT/devstoreaccount1
  state store:   ENRICH_STATE_BLOB_URL=https://127.0.0.1:$PORT/devstoreaccount1/entra-enrich-state
  trust this CA: $DIR/ca.pem   (e.g. SSL_CERT_FILE / reqwest tls_certs_merge)
  token:         any JWT with iss https://sts.windows.net/<tid>/, aud https://storage.azure.com, iat/nbf/exp
  log:           $LOG
MSG
}

stop() {
  if pid="$(running_pid)"; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "azurite.sh: stopped (pid $pid)"
  else
    echo "azurite.sh: not running"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if pid="$(running_pid)"; then echo "running (pid $pid) on https://127.0.0.1:$PORT"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
