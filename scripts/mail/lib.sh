# Shared by the mail server scripts (sourced, not run): the test certificate, port checks,
# waiting for a server to listen, and stopping its process group.

# Creates DIR/tls/cert.pem + key.pem once: a self-signed end-entity certificate for
# localhost and 127.0.0.1 (CA:FALSE, serverAuth: rustls/webpki refuse a CA certificate used
# as a server's certificate).
self_signed_cert() {
  local dir=$1
  mkdir -p "$dir/tls"
  if [ ! -s "$dir/tls/cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
      -keyout "$dir/tls/key.pem" -out "$dir/tls/cert.pem" \
      -subj "/CN=localhost" \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -addext "basicConstraints=critical,CA:FALSE" \
      -addext "extendedKeyUsage=serverAuth" >/dev/null 2>&1
  fi
  chmod 600 "$dir/tls/key.pem"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A foreign listener would make the readiness probe succeed while our server dies.
refuse_taken_ports() {
  local p
  for p in "$@"; do
    if port_open "$p"; then
      echo "127.0.0.1:$p is already in use" >&2
      exit 1
    fi
  done
}

# wait_listening NAME PID PIDFILE LOG TIMEOUT PORT...: until every port accepts; on the
# server's death or the timeout, prints its log, removes PIDFILE and exits 1.
wait_listening() {
  local name=$1 pid=$2 pidfile=$3 log=$4 timeout=$5 p deadline
  shift 5
  deadline=$(( $(date +%s) + timeout ))
  for p in "$@"; do
    until port_open "$p"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "$name exited during startup; log:" >&2
        cat "$log" >&2
        rm -f "$pidfile"
        exit 1
      fi
      if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "$name did not open 127.0.0.1:$p within ${timeout}s; log:" >&2
        cat "$log" >&2
        kill -- -"$pid" 2>/dev/null || true
        rm -f "$pidfile"
        exit 1
      fi
      sleep 0.05
    done
  done
}

# alive = some process of the server's process group (pgid = server pid, see setsid in the
# start scripts) exists and is not a zombie. Zombies are ignored: once the start script has
# exited the server is re-parented to PID 1, which may take 1-2 s to reap it, and `kill -0`
# succeeds on a zombie.
group_alive() {
  ps -e -o pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ {f=1} END {exit !f}'
}

# stop_group PIDFILE: SIGTERM to the process group, waits up to 5 s, then SIGKILL; removes
# PIDFILE and prints the pid. Returns 1 (after a note on stderr) when PIDFILE is missing.
stop_group() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || { echo "no $pidfile (not running?)" >&2; return 1; }
  pid=$(cat "$pidfile")
  if group_alive "$pid"; then
    kill -TERM -- -"$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do
      group_alive "$pid" || break
      sleep 0.05
    done
    if group_alive "$pid"; then
      kill -KILL -- -"$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -f "$pidfile"
  echo "$pid"
}
