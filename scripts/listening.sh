# Sourced by the scripts that start a server. start_listening PREFIX COMMAND... runs COMMAND
# in the background (stdout to PREFIX.out, stderr to PREFIX.log), waits for its
# "listening on URL" line and sets $listening_pid and $listening_url; it fails with the
# server's log when the server exits or has not started within 10 minutes.
start_listening() {
  local prefix=$1
  shift
  "$@" >"$prefix.out" 2>"$prefix.log" &
  listening_pid=$!
  for _ in $(seq 3000); do
    grep -q '^listening on ' "$prefix.out" 2>/dev/null && break
    kill -0 "$listening_pid" 2>/dev/null || break
    sleep 0.2
  done
  listening_url=$(sed -n 's/^listening on //p' "$prefix.out")
  if [[ -z $listening_url ]]; then
    cat "$prefix.log" >&2
    echo "$* did not start listening" >&2
    return 1
  fi
}
