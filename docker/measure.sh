#!/usr/bin/env bash
# Measures the image for docs/benchmarks.md: its size, and how long a container takes from its
# start to its first passing health check (`pyvmd health`: an SSH login and a NETCONF <get>),
# without packages and with the example packages; and how long `docker stop` takes.
#
#   docker/measure.sh [IMAGE] [RUNS]      (default: pyvmd, 5 runs; build the image first)
#
# The health check is run every 100 ms here (`--health-interval`): Docker 20.10 runs the first
# check one interval after the start, so with the image's own interval (10 s) a container reports
# healthy at 10 s however fast the server is. The times are the daemon's: State.StartedAt to the
# end of the first passing check; "ready" is the server's own `ready:` log line.
set -euo pipefail
IMAGE=${1:-pyvmd}
RUNS=${2:-5}
docker image inspect "$IMAGE" >/dev/null

secs() { date -d "${1% UTC}" +%s.%N; }

# One container: prints "<start-to-ready> <start-to-healthy> <stop>" in seconds.
measure_one() {
    local id started ready healthy t0 t1
    id=$(docker run -d --health-interval 100ms "$@" "$IMAGE")
    for _ in $(seq 600); do
        [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ] && break
        sleep 0.05
    done
    started=$(secs "$(docker inspect -f '{{.State.StartedAt}}' "$id")")
    healthy=$(docker inspect -f '{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End}}|{{end}}{{end}}' "$id" | cut -d'|' -f1)
    [ -n "$healthy" ] || { echo "measure: $IMAGE did not become healthy" >&2; docker logs "$id" >&2; exit 1; }
    healthy=$(secs "$healthy")
    ready=$(docker logs "$id" 2>&1 | awk '/ ready: / {print $1; exit}')
    ready=$(secs "$ready")
    t0=$(date +%s.%N)
    docker stop -t 30 "$id" >/dev/null
    t1=$(date +%s.%N)
    [ "$(docker inspect -f '{{.State.ExitCode}}' "$id")" = 0 ] || echo "measure: exit code not 0" >&2
    docker rm -v "$id" >/dev/null
    awk -v s="$started" -v r="$ready" -v h="$healthy" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "%.3f %.3f %.3f\n", r - s, h - s, b - a }'
}

# RUNS containers: prints "median min max" of each column, in ms.
measure() {
    local results=()
    for _ in $(seq "$RUNS"); do
        results+=("$(measure_one "$@")")
    done
    printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
for col in zip(*rows):
    ms = [v * 1000 for v in col]
    print(f"{statistics.median(ms):.0f} ms (min {min(ms):.0f}, max {max(ms):.0f})", end="|")
print()'
}

size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
empty=$(measure --tmpfs /packages)
examples=$(measure)
IFS='|' read -r e_ready e_healthy e_stop _ <<<"$empty"
IFS='|' read -r x_ready x_healthy x_stop _ <<<"$examples"

echo "image $IMAGE: $(awk -v b="$size" 'BEGIN { printf "%.1f MB (%.1f MiB)", b / 1e6, b / 1048576 }')"
echo "Docker $(docker version -f '{{.Server.Version}}'), $(nproc) cores, $RUNS runs each"
echo
echo "| figure | no packages | the example packages (5 VMs) |"
echo "|---|---|---|"
echo "| container start to \`ready:\` | $e_ready | $x_ready |"
echo "| container start to healthy (first passing \`pyvmd health\`) | $e_healthy | $x_healthy |"
echo "| \`docker stop\` to exited (exit status 0) | $e_stop | $x_stop |"
