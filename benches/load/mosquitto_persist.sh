#!/bin/sh
# mosquitto with `persistence true` on 127.0.0.1:PORT, its database in DIR (made empty), for
# benches/load/run.py: --broker 'mosquitto-persist=sh benches/load/mosquitto_persist.sh {port} /tmp/mq-{port}'
# mosquitto writes its database every autosave_interval (1800 s by default) and at exit, so
# a crash loses what came since; this keeps that default.
set -e
port=$1
dir=$2
rm -rf "$dir"
mkdir -p "$dir"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n' \
  "$port" "$dir" > "$dir/mosquitto.conf"
exec mosquitto -c "$dir/mosquitto.conf"
