#!/usr/bin/env bash
# Runs an MPI job across "machines" made on this one: HOSTS network namespaces joined by veth links
# to one bridge namespace, each with an address in 10.213.47.0/24, one rank in each, talking TCP.
# Open MPI starts its daemons through `ip netns exec` (plm_rsh_agent names a small script written
# here). Everything the script creates (namespaces, links, files) it removes when it ends.
#   netns-mpirun.sh HOSTS PROGRAM [ARGUMENTS...]      (as root; needs iproute2 and Open MPI)
set -euo pipefail
hosts=$1; shift
[ "$hosts" -ge 2 ] && [ "$hosts" -le 8 ] || { echo "netns-mpirun.sh: HOSTS must be 2..8, got $hosts" >&2; exit 64; }
[ "$(id -u)" -eq 0 ] || { echo "netns-mpirun.sh: making network namespaces needs root" >&2; exit 77; }
tag="cn$$"
work=$(mktemp -d)
names=()
cleanup() {
    for n in "${names[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    ip netns del "${tag}br" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A bridge in a namespace of its own links the hosts; nothing touches the machine's own interfaces.
ip netns add "${tag}br"
ip -n "${tag}br" link add br0 type bridge
ip -n "${tag}br" link set br0 up
for i in $(seq 1 "$hosts"); do
    n="${tag}h$i"
    names+=("$n")
    ip netns add "$n"
    ip link add "${tag}e$i" netns "$n" type veth peer name "p$i" netns "${tag}br"
    ip -n "$n" link set "${tag}e$i" name eth0
    ip -n "$n" addr add "10.213.47.$i/24" dev eth0
    ip -n "$n" link set eth0 up
    ip -n "$n" link set lo up
    ip -n "${tag}br" link set "p$i" master br0
    ip -n "${tag}br" link set "p$i" up
    echo "10.213.47.$i slots=1" >> "$work/hostfile"
done

# mpirun calls the agent as: agent HOST COMMAND...; the host's address names its namespace.
cat > "$work/agent" <<AGENT
#!/bin/sh
host="\$1"; shift
exec ip netns exec "${tag}h\${host##*.}" /bin/sh -c "\$*"
AGENT
chmod +x "$work/agent"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# rtc_hwloc_vmhole none: each daemon would otherwise write its hwloc topology into a shared-memory segment
# mapped at a hole it guesses in its address space; with several daemons on one machine that write now and
# then segfaulted (hwloc_shmem_topology_write, Open MPI 4.1.4). Nothing here binds processes, so it is not needed.
ip netns exec "${tag}h1" mpirun --hostfile "$work/hostfile" -np "$hosts" --bind-to none \
    --mca rtc_hwloc_vmhole none \
    --mca plm_rsh_agent "$work/agent" --mca pml ob1 --mca btl self,tcp \
    --mca btl_tcp_if_include 10.213.47.0/24 --mca oob_tcp_if_include 10.213.47.0/24 \
    --timeout 240 "$@"
