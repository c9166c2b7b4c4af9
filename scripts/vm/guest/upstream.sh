#!/bin/bash
# The test's upstream broker on 127.0.0.1:1884 (not the image's mosquitto) and a persistent QoS 1 subscriber that
# writes every message the receiver publishes upstream to the host's share, one "topic payload" line each.
set -euo pipefail
mkdir -p /run/tmc-vm
cat > /run/tmc-vm/upstream.conf <<CONF
listener 1884 127.0.0.1
allow_anonymous true
persistence false
CONF
mosquitto -c /run/tmc-vm/upstream.conf &
broker=$!
for _ in $(seq 100); do
  mosquitto_pub -h 127.0.0.1 -p 1884 -t probe -m up 2>/dev/null && break
  sleep 0.1   # the broker is starting; nothing to wait on but its port
done
mosquitto_sub -h 127.0.0.1 -p 1884 -i tmc-vm-sub -c -q 1 -t 'tmc/#' -v >> /mnt/tmc-share/upstream.txt &
wait $broker
