#!/usr/bin/env bash
# berth's main job on one machine, end to end, as a fleet would run it:
#   a local MQTT broker (mosquitto) and OCI registry (docker-registry) on loopback, the multi-arch
#   example image pushed to it, `berth agent` connected to the broker, and a retained desired state
#   published for an example app. It waits until the app runs and the device reports `applied`, then
#   shows the app, its logs, the reported state and one telemetry message.
#
#   sudo bash scripts/demo.sh          start (needs scripts/setup.sh, npm ci and npm run build first)
#   sudo bash scripts/demo.sh stop     stop the agent, broker and registry, remove the app
#
# Everything lives under $BERTH_DEMO_DIR (default .cache/demo in the repo); nothing listens beyond 127.0.0.1.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${BERTH_DEMO_DIR:-$repo/.cache/demo}"
berth=("$repo/bin/berth" --root "$dir/root")
device=demo-1
say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

stop_all() {
  if [[ -f "$dir/agent.pid" ]]; then
    kill "$(cat "$dir/agent.pid")" 2>/dev/null || true
    rm -f "$dir/agent.pid"
  fi
  if [[ -d "$dir/root" ]]; then
    local names
    names="$("${berth[@]}" ps -a --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).map(c=>c.name).join(" "))}catch{}})')"
    [[ -z "$names" ]] || "${berth[@]}" rm -f $names >/dev/null 2>&1 || true
  fi
  for p in mosquitto registry; do
    [[ -f "$dir/$p.pid" ]] && { kill "$(cat "$dir/$p.pid")" 2>/dev/null || true; rm -f "$dir/$p.pid"; }
  done
  return 0
}

if [[ "${1:-}" == stop ]]; then
  stop_all
  say "stopped; state left in $dir (rm -rf it to start from scratch)"
  exit 0
fi

((EUID == 0)) || die "run as root (containers need it): sudo bash $0"
[[ -f "$repo/dist/bundle/berth.mjs" ]] || die "not built: run 'npm ci && npm run build' first"
command -v mosquitto >/dev/null || [[ -x /usr/sbin/mosquitto ]] || die "mosquitto missing: run 'sudo bash scripts/setup.sh' first"
mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
registry_bin="$(command -v docker-registry || echo /usr/bin/docker-registry)"
[[ -x "$registry_bin" ]] || die "docker-registry missing: run 'sudo bash scripts/setup.sh' first"

stop_all
mkdir -p "$dir/root" "$dir/registry"
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
mqtt_port="$(free_port)"
reg_port="$(free_port)"

# The broker: loopback only, anonymous (a demo; scripts/mosquitto/ has the production config with TLS and ACLs).
cat >"$dir/mosquitto.conf" <<CONF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence false
log_dest file $dir/mosquitto.log
CONF
# As root mosquitto drops to its own user: let it write its log.
touch "$dir/mosquitto.log" && chmod 666 "$dir/mosquitto.log"
# Daemons get no handle on our stdout: whoever reads it (a pipe, a test) must see it end with us.
"$mosquitto_bin" -c "$dir/mosquitto.conf" </dev/null >/dev/null 2>&1 & echo $! >"$dir/mosquitto.pid"

cat >"$dir/registry.yml" <<CONF
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $dir/registry }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$reg_port, secret: berth-demo }
CONF
"$registry_bin" serve "$dir/registry.yml" </dev/null >"$dir/registry.log" 2>&1 & echo $! >"$dir/registry.pid"

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; die "nothing listening on 127.0.0.1:$1 (see $dir/*.log)"; }
wait_port "$mqtt_port"
wait_port "$reg_port"
say "broker mqtt://127.0.0.1:$mqtt_port, registry 127.0.0.1:$reg_port"

say "pushing the multi-arch example image (linux/amd64, arm64, arm/v7, arm/v6)"
node "$repo/scripts/test-images.mjs" --registry "127.0.0.1:$reg_port" --repo demo/hello --tag v1 >/dev/null
image="127.0.0.1:$reg_port/demo/hello:v1"

# The fleet's signing key: the agent accepts only desired states and commands signed with it. keygen
# prints the line agent.yaml needs (berth flash writes it on a real card).
rm -f "$dir/fleet-key.key" "$dir/fleet-key.pub"
"${berth[@]}" fleet keygen "$dir/fleet-key" | grep '^fleetKey: ' >"$dir/agent.yaml"

say "starting berth agent as device $device (trusting the fleet key in $dir/fleet-key.pub)"
"${berth[@]}" agent --config "$dir/agent.yaml" --broker "mqtt://127.0.0.1:$mqtt_port" --device-id "$device" --telemetry-interval 5s </dev/null >"$dir/agent.log" 2>&1 &
echo $! >"$dir/agent.pid"

topic="berth/v1/$device"
cat >"$dir/hello.yaml" <<YAML
services:
  hello:
    image: $image
    mem_limit: 32m
    restart: always
    stop_grace_period: 2s
    command: ["sh", "-c", "while true; do echo hello from berth on \`uname -m\`; sleep 5; done"]
    labels: { berth.priority: critical }
x-berth:
  update: { health_window: 3s }
YAML
say "signing and publishing the desired state (retained) to $topic/desired with berth fleet deploy"
# An agent still connecting counts as offline to berth fleet, which then leaves the (retained) desired
# state to reach it when it connects: the wait below decides, from what the device reports.
"${berth[@]}" fleet deploy "$dir/hello.yaml" --device "$device" --broker "mqtt://127.0.0.1:$mqtt_port" --signing-key "$dir/fleet-key.key" --timeout 2m >"$dir/deploy.log" 2>&1 || true

say "waiting for the device to report it applied"
# Any revision but 0 (nothing deployed yet): on a re-run the fleet counts on from the last one.
applied='"revision":[1-9][0-9]*,"status":"applied"'
reported=""
for _ in $(seq 60); do
  reported="$(mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -V mqttv5 -t "$topic/reported" -C 1 -W 2 2>/dev/null || true)"
  [[ "$reported" =~ $applied ]] && break
  sleep 1
done
[[ "$reported" =~ $applied ]] || die "not applied within a minute; see $dir/agent.log (last report: ${reported:-none})"

say "reported:"
printf '%s\n' "$reported" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(JSON.parse(s),null,2)))'
say "berth ps:"
"${berth[@]}" ps
sleep 1
say "the app's log:"
"${berth[@]}" logs --tail 3 "$("${berth[@]}" ps --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].name))')"
say "one telemetry message (host and service):"
mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -V mqttv5 -t "$topic/telemetry" -C 1 -W 15 | cut -c1-400
cat <<TXT

The agent keeps running (log: $dir/agent.log). Try:
  mosquitto_sub -p $mqtt_port -t '$topic/#' -v            # watch everything the device says
  berth fleet logs $device hello --broker mqtt://127.0.0.1:$mqtt_port --signing-key $dir/fleet-key.key
  sudo bash scripts/demo.sh stop                           # stop it all

On a real board, point the agent at your broker instead (see "Fleet agent" and "Broker" below):
  berth agent --broker mqtts://broker.example:8883 --device-id pi-0042 --ca ca.crt --cert pi-0042.crt --key pi-0042.key
TXT
