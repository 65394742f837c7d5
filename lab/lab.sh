#!/usr/bin/env bash
# opdbus.infra lab: starts the real components in private run dirs and stops them again.
#
#   lab/lab.sh up       start every component (idempotent)
#   lab/lab.sh down     stop every component, remove what the lab made (idempotent)
#   lab/lab.sh status   print what is running; exit 0 if everything is up, 1 otherwise
#   lab/lab.sh env      (re)write and print the sourceable $OPDBUS_LAB_DIR/env
#   lab/lab.sh peers-up [--check]
#                       start the privacy chain's outside world on the running lab: a WireGuard
#                       client, a WARP endpoint, a VPS (v2ray) and "the internet" (www, iperf3) in
#                       namespaces behind the uplink namespace (see "peers" below)
#   lab/lab.sh peers-client CONF [--check]
#                       configure the client namespace's WireGuard from the wg-quick style CONF
#   lab/lab.sh peers-down
#                       stop the peers and delete their namespaces (`down` does this first)
# peers-up and peers-client are idempotent; the last line on stdout is "changed" or "ok". With
# --check they change nothing and tell whether they would.
#
# Settings (environment):
#   OPDBUS_LAB_DIR      lab state dir (default: <repo>/.lab)
#   OPDBUS_LAB_NETNS    network namespace the lab's "host" side lives in: ovs-vswitchd, its
#                       bridge taps and the uplink's upl0 end. Empty = the namespace lab.sh runs
#                       in (the root one). Unset (default) = the root namespace, unless another
#                       ovs-vswitchd already runs there: then "opdbus-lab". Only one ovs-vswitchd
#                       with a userspace datapath works per network namespace (each opens the
#                       tap "ovs-netdev"). In a lab namespace, run what acts on the lab's network
#                       inside it: `nsenter --net=/run/netns/$OPDBUS_LAB_NETNS -- CMD` (the
#                       Makefile does this for integration tests, molecule, demo and bench).
#   OPDBUS_UPLINK_NS    namespace standing in for the upstream network (default: opdbus-uplink)
#   OPDBUS_UPLINK_IF    host end of the uplink veth (default: upl0)
#   OPDBUS_UPLINK_ADDR  address of the far end, inside OPDBUS_UPLINK_NS (default: 192.0.2.254/24)
# While the lab is up, its settings are those `up` wrote to $OPDBUS_LAB_DIR/env (so `down` and
# `status` see the lab `up` made; changing them then is refused). After `down` they are free.
#
# The lab only ever stops processes it started (by the PID in its own pidfiles, after checking
# /proc/PID/cmdline) and only deletes network namespaces listed in $OPDBUS_LAB_DIR/netns.list
# whose names start with "opdbus-". Tests that create namespaces register them by appending the
# name to that file (one per line); `down` deletes them.
#
# Adding a component: write <name>_up, <name>_down, <name>_status and <name>_env (prints
# `export VAR=value` lines), then add <name> to COMPONENTS. `up` runs them in list order,
# `down` in reverse order. Daemons a component starts must close fd 9 (the lab lock, `9>&-`),
# or they hold the lock for their whole life and every later lab command waits forever.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$SCRIPT_DIR/.." && pwd -P)
LAB_DIR=${OPDBUS_LAB_DIR:-$REPO/.lab}
mkdir -p "$LAB_DIR"
LAB_DIR=$(cd "$LAB_DIR" && pwd -P)

# Up in this order, down in reverse: the lab's containers go down first (their root filesystems
# may live on the lab's btrfs), then the btrfs filesystems, then OVS (its bridges release the
# uplink port), namespaces go last. The D-Bus services (dbus) are independent of the rest: they come up
# last and go down first.
COMPONENTS=(netns uplink ovs btrfs lxc dbus)

NETNS_LIST=$LAB_DIR/netns.list
ENV_FILE=$LAB_DIR/env

log() { printf 'lab: %s\n' "$*" >&2; }
die() {
    printf 'lab: error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

# pid_of PIDFILE NAME -> prints the PID if PIDFILE names a live process whose argv[0] is NAME
# and whose command line mentions this lab's dir; returns 1 otherwise.
pid_of() {
    local pidfile=$1 name=$2 pid cmd
    [[ -r $pidfile ]] || return 1
    read -r pid <"$pidfile" 2>/dev/null || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmd=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $(basename -- "$(head -n1 <<<"$cmd")") == "$name" ]] || return 1
    grep -qF -- "$LAB_DIR/" <<<"$cmd" || return 1
    printf '%s\n' "$pid"
}

# stop_pidfile PIDFILE NAME [CHECK]: TERM, wait up to 5 s, then KILL. Only the PID in our pidfile, and only
# when CHECK PIDFILE NAME (default pid_of) says the process is ours.
stop_pidfile() {
    local pidfile=$1 name=$2 check=${3:-pid_of} pid i
    if pid=$("$check" "$pidfile" "$name"); then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            [[ -d /proc/$pid ]] || break
            sleep 0.1
        done
        if [[ -d /proc/$pid ]]; then
            log "$name (pid $pid) did not exit after TERM, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 20; i++)); do
                [[ -d /proc/$pid ]] || break
                sleep 0.1
            done
        fi
    fi
    rm -f -- "$pidfile"
}

netns_exists() { [[ -e /run/netns/$1 ]]; }

# register_netns NAME: remember that the lab made this namespace (down deletes it).
register_netns() {
    touch "$NETNS_LIST"
    grep -qxF -- "$1" "$NETNS_LIST" || printf '%s\n' "$1" >>"$NETNS_LIST"
}

# ---------------------------------------------------------------------------------------------
# component: netns (the lab's host namespace, if any; deletes every registered namespace on down)
# ---------------------------------------------------------------------------------------------
# Run a command / ip in the lab's host namespace.
in_lab_ns() {
    if [[ -n $LAB_NETNS ]]; then
        ip netns exec "$LAB_NETNS" "$@"
    else
        "$@"
    fi
}
lab_ip() {
    if [[ -n $LAB_NETNS ]]; then
        ip -n "$LAB_NETNS" "$@"
    else
        ip "$@"
    fi
}

# The kernel's id of the lab's host namespace, as /proc/PID/ns/net shows it.
lab_netns_id() {
    if [[ -n $LAB_NETNS ]]; then
        printf 'net:[%s]\n' "$(stat -L -c %i "/run/netns/$LAB_NETNS")"
    else
        readlink /proc/self/ns/net
    fi
}

netns_env() {
    printf 'export OPDBUS_LAB_NETNS=%q\n' "$LAB_NETNS"
}

netns_up() {
    [[ -z $LAB_NETNS ]] && return 0
    [[ $LAB_NETNS == opdbus-* ]] || die "OPDBUS_LAB_NETNS must start with opdbus- (got $LAB_NETNS)"
    if ! netns_exists "$LAB_NETNS"; then
        log "creating host namespace $LAB_NETNS"
        ip netns add "$LAB_NETNS"
    fi
    register_netns "$LAB_NETNS"
    ip -n "$LAB_NETNS" link set lo up
}

netns_down() {
    local keep=() ns pids
    [[ -f $NETNS_LIST ]] || return 0
    while read -r ns; do
        [[ -n $ns ]] || continue
        if [[ $ns != opdbus-* ]]; then
            log "warning: ignoring $ns in $NETNS_LIST (not an opdbus- name)"
            continue
        fi
        netns_exists "$ns" || continue
        pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
        [[ -z $pids ]] || log "warning: processes still run in $ns (pids $pids); it lives on until they exit"
        log "deleting namespace $ns"
        ip netns del "$ns" || keep+=("$ns")
    done <"$NETNS_LIST"
    if ((${#keep[@]})); then
        printf '%s\n' "${keep[@]}" >"$NETNS_LIST"
    else
        rm -f -- "$NETNS_LIST"
    fi
}

netns_status() {
    printf '  host netns     %s\n' "${LAB_NETNS:-(root)}"
    if [[ -s $NETNS_LIST ]]; then
        printf '  registered     %s\n' "$(tr '\n' ' ' <"$NETNS_LIST")"
    fi
    if [[ -n $LAB_NETNS ]] && ! netns_exists "$LAB_NETNS"; then
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# component: uplink (a namespace standing in for the upstream network, joined by a veth pair)
# ---------------------------------------------------------------------------------------------
uplink_env() {
    printf 'export OPDBUS_UPLINK_NS=%q\n' "$UPLINK_NS"
    printf 'export OPDBUS_UPLINK_IF=%q\n' "$UPLINK_IF"
    printf 'export OPDBUS_UPLINK_ADDR=%q\n' "$UPLINK_ADDR"
    printf 'export OPDBUS_UPLINK_PEER_IP=%q\n' "${UPLINK_ADDR%/*}"
}

uplink_up() {
    [[ $UPLINK_NS == opdbus-* ]] || die "OPDBUS_UPLINK_NS must start with opdbus- (got $UPLINK_NS)"
    if ! netns_exists "$UPLINK_NS"; then
        log "creating namespace $UPLINK_NS"
        ip netns add "$UPLINK_NS"
    fi
    register_netns "$UPLINK_NS"
    ip -n "$UPLINK_NS" link set lo up
    local have_host=0 have_peer=0
    lab_ip link show dev "$UPLINK_IF" >/dev/null 2>&1 && have_host=1
    ip -n "$UPLINK_NS" link show dev "$UPLINK_PEER" >/dev/null 2>&1 && have_peer=1
    if ((have_host != 1 || have_peer != 1)); then
        # half a pair: start over
        if ((have_host)); then lab_ip link del dev "$UPLINK_IF"; fi
        if ((have_peer)); then ip -n "$UPLINK_NS" link del dev "$UPLINK_PEER"; fi
        log "creating veth $UPLINK_IF <-> $UPLINK_NS:$UPLINK_PEER"
        lab_ip link add "$UPLINK_IF" type veth peer name "$UPLINK_PEER" netns "$UPLINK_NS"
    fi
    ip -n "$UPLINK_NS" addr replace "$UPLINK_ADDR" dev "$UPLINK_PEER"
    ip -n "$UPLINK_NS" link set "$UPLINK_PEER" up
    lab_ip link set "$UPLINK_IF" up
    # The userspace datapath does not fill in checksums that veth offloads: turn TX offload off,
    # or TCP across the bridge fails (ICMP works, which makes this confusing).
    in_lab_ns ethtool -K "$UPLINK_IF" tx off >/dev/null 2>&1 ||
        log "warning: ethtool -K $UPLINK_IF tx off failed"
    ip netns exec "$UPLINK_NS" ethtool -K "$UPLINK_PEER" tx off >/dev/null 2>&1 ||
        log "warning: ethtool -K $UPLINK_PEER tx off failed in $UPLINK_NS"
}

uplink_down() {
    if lab_ip link show dev "$UPLINK_IF" >/dev/null 2>&1 &&
        [[ $(in_lab_ns ethtool -i "$UPLINK_IF" 2>/dev/null | sed -n 's/^driver: //p') == veth ]]; then
        log "deleting veth $UPLINK_IF"
        lab_ip link del dev "$UPLINK_IF" || true
    fi
    # the namespace itself is in netns.list: netns_down deletes it
}

uplink_status() {
    if netns_exists "$UPLINK_NS" && lab_ip link show dev "$UPLINK_IF" >/dev/null 2>&1; then
        printf '  uplink         %s <-> %s:%s %s\n' "$UPLINK_IF" "$UPLINK_NS" "$UPLINK_PEER" "$UPLINK_ADDR"
    else
        printf '  uplink         down\n'
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# component: ovs (ovsdb-server + ovs-vswitchd, userspace datapath, private run dir)
# ---------------------------------------------------------------------------------------------
OVS_DIR=$LAB_DIR/ovs
OVS_DB=unix:$OVS_DIR/db.sock
OVS_SCHEMA=${OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}

ovs_env() {
    printf 'export OVS_RUNDIR=%q\n' "$OVS_DIR"
    printf 'export OPDBUS_OVSDB=%q\n' "$OVS_DB"
}

vsctl() { ovs-vsctl --db="$OVS_DB" "$@"; }

# Probe with ovsdb-client: `ovs-vsctl show` on a database without the Open_vSwitch row (before
# `init`) does not fail, it waits for the row until --timeout.
ovs_db_answers() { ovsdb-client --timeout=5 list-dbs "$OVS_DB" 2>/dev/null | grep -qx Open_vSwitch; }

# Daemons get the private dirs in their environment (so <bridge>.mgmt sockets land in $OVS_DIR),
# log only warnings to the console (the rest goes to the log file), and must not inherit the
# lab lock on fd 9.
ovs_daemon() {
    OVS_RUNDIR=$OVS_DIR OVS_LOGDIR=$OVS_DIR OVS_DBDIR=$OVS_DIR "$@" -vconsole:warn 9>&-
}

# Only one ovs-vswitchd with a userspace datapath can run per network namespace: each opens
# the tap "ovs-netdev" (and one tap per bridge/internal port). Refuse early, with a hint.
ovs_check_foreign_vswitchd() {
    local p
    if p=$(foreign_vswitchd "$(lab_netns_id)" "${1:-}"); then
        die "another ovs-vswitchd (pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" | cut -c1-100)) runs in the ${LAB_NETNS:-root} network namespace; a second userspace datapath there cannot open the 'ovs-netdev' tap. Stop that one, or give the lab its own namespace: OPDBUS_LAB_NETNS=opdbus-lab (or leave OPDBUS_LAB_NETNS unset)"
    fi
}

ovs_up() {
    command -v ovsdb-server >/dev/null || die "ovsdb-server not found (make deps installs openvswitch-switch)"
    mkdir -p "$OVS_DIR"
    local vpid
    vpid=$(pid_of "$OVS_DIR/ovs-vswitchd.pid" ovs-vswitchd) || vpid=
    ovs_check_foreign_vswitchd "$vpid"
    # unix socket paths are limited to 107 bytes; <bridge>.mgmt sockets live here too.
    if ((${#OVS_DIR} > 80)); then
        log "warning: $OVS_DIR is long; <bridge>.mgmt socket paths may exceed the 107-byte limit"
    fi

    if ! pid_of "$OVS_DIR/ovsdb-server.pid" ovsdb-server >/dev/null; then
        rm -f -- "$OVS_DIR/ovsdb-server.pid" "$OVS_DIR/ovsdb-server.ctl" "$OVS_DIR/db.sock"
        if [[ ! -s $OVS_DIR/conf.db ]]; then
            rm -f -- "$OVS_DIR/conf.db" "$OVS_DIR/.conf.db.~lock~"
            ovsdb-tool create "$OVS_DIR/conf.db" "$OVS_SCHEMA"
        elif [[ $(ovsdb-tool needs-conversion "$OVS_DIR/conf.db" "$OVS_SCHEMA") == yes ]]; then
            ovsdb-tool convert "$OVS_DIR/conf.db" "$OVS_SCHEMA"
        fi
        log "starting ovsdb-server in $OVS_DIR"
        ovs_daemon ovsdb-server "$OVS_DIR/conf.db" \
            --remote="punix:$OVS_DIR/db.sock" \
            --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
            --pidfile="$OVS_DIR/ovsdb-server.pid" \
            --unixctl="$OVS_DIR/ovsdb-server.ctl" \
            --log-file="$OVS_DIR/ovsdb-server.log" \
            --detach
    fi
    local i
    for ((i = 0; i < 50; i++)); do
        ovs_db_answers && break
        sleep 0.1
    done
    ovs_db_answers || die "ovsdb-server does not answer on $OVS_DB (see $OVS_DIR/ovsdb-server.log)"
    vsctl --timeout=5 --no-wait init

    if [[ -z $vpid ]]; then
        rm -f -- "$OVS_DIR/ovs-vswitchd.pid" "$OVS_DIR/ovs-vswitchd.ctl"
        log "starting ovs-vswitchd (userspace datapath) in $OVS_DIR${LAB_NETNS:+, namespace $LAB_NETNS}"
        ovs_daemon in_lab_ns ovs-vswitchd "$OVS_DB" \
            --pidfile="$OVS_DIR/ovs-vswitchd.pid" \
            --unixctl="$OVS_DIR/ovs-vswitchd.ctl" \
            --log-file="$OVS_DIR/ovs-vswitchd.log" \
            --detach --disable-system
    fi
    # Wait until vswitchd has caught up with the database (cur_cfg >= next_cfg).
    local next cur
    for ((i = 0; i < 100; i++)); do
        next=$(vsctl --timeout=5 get Open_vSwitch . next_cfg 2>/dev/null || echo x)
        cur=$(vsctl --timeout=5 get Open_vSwitch . cur_cfg 2>/dev/null || echo y)
        [[ $next =~ ^[0-9]+$ && $cur =~ ^[0-9]+$ ]] && ((cur >= next)) && return 0
        sleep 0.1
    done
    die "ovs-vswitchd did not reach cur_cfg >= next_cfg (see $OVS_DIR/ovs-vswitchd.log)"
}

ovs_down() {
    local ports=() br
    if pid_of "$OVS_DIR/ovsdb-server.pid" ovsdb-server >/dev/null && ovs_db_answers; then
        # Internal ports of netdev bridges are persistent tap devices: remember them and let
        # vswitchd remove them by deleting the bridges while it still runs.
        mapfile -t ports < <(vsctl --timeout=5 --bare --columns=name find Interface type=internal | sed '/^$/d')
        local wait=(--no-wait)
        pid_of "$OVS_DIR/ovs-vswitchd.pid" ovs-vswitchd >/dev/null && wait=()
        while read -r br; do
            [[ -n $br ]] || continue
            log "deleting bridge $br"
            vsctl --timeout=10 "${wait[@]}" del-br "$br" ||
                vsctl --timeout=5 --no-wait del-br "$br" || true
        done < <(vsctl --timeout=5 list-br)
    elif [[ -s $OVS_DIR/conf.db ]]; then
        # ovsdb-server is gone: read the internal ports from the database file instead
        mapfile -t ports < <(ovsdb-tool query "$OVS_DIR/conf.db" \
            '["Open_vSwitch",{"op":"select","table":"Interface","where":[["type","==","internal"]],"columns":["name"]}]' \
            2>/dev/null | grep -o '"name":"[^"]*"' | cut -d'"' -f4)
    fi
    stop_pidfile "$OVS_DIR/ovs-vswitchd.pid" ovs-vswitchd
    stop_pidfile "$OVS_DIR/ovsdb-server.pid" ovsdb-server
    # Safety net (vswitchd had died before down): remove leftover persistent taps of our
    # internal ports that no process holds open.
    local p
    for p in "${ports[@]}" ovs-netdev; do
        if lab_ip -d link show dev "$p" 2>/dev/null | grep -q 'tun type tap' && ! tap_held "$p"; then
            log "removing leftover tap $p"
            lab_ip link del dev "$p" 2>/dev/null || true
        fi
    done
    if [[ -d $OVS_DIR ]]; then
        rm -f -- "$OVS_DIR"/*.ctl "$OVS_DIR"/*.mgmt "$OVS_DIR"/*.snoop "$OVS_DIR/db.sock" \
            "$OVS_DIR/conf.db" "$OVS_DIR/.conf.db.~lock~"
    fi
}

# tap_held NAME: does a process in the lab's host namespace hold tap NAME open?
tap_held() {
    local ns f pid
    ns=$(lab_netns_id)
    while IFS= read -r f; do
        pid=${f#/proc/}
        pid=${pid%%/*}
        [[ $(readlink "/proc/$pid/ns/net" 2>/dev/null) == "$ns" ]] && return 0
    done < <(grep -lsxE "iff:[[:space:]]+$1" /proc/[0-9]*/fdinfo/* 2>/dev/null || true)
    return 1
}

ovs_status() {
    local pid rc=0 d
    for d in ovsdb-server ovs-vswitchd; do
        if pid=$(pid_of "$OVS_DIR/$d.pid" "$d"); then
            printf '  %-14s running (pid %s)\n' "$d" "$pid"
        else
            printf '  %-14s stopped\n' "$d"
            rc=1
        fi
    done
    if ((rc == 0)) && ovs_db_answers; then
        printf '  bridges        %s\n' "$(vsctl --timeout=5 list-br | tr '\n' ' ')"
    fi
    return "$rc"
}

# ---------------------------------------------------------------------------------------------
# component: btrfs (two small btrfs filesystems on loop devices: "main" and "replica")
# ---------------------------------------------------------------------------------------------
# Each filesystem NAME is a sparse image $BTRFS_DIR/NAME.img attached to a loop device (its name
# kept in $BTRFS_DIR/NAME.loop) and mounted at $BTRFS_DIR/NAME. `down` unmounts only that mount
# point, detaches only the device named in NAME.loop (and only while it is backed by our image),
# then removes the image. Two filesystems, so that send/receive across filesystems is testable.
BTRFS_DIR=$LAB_DIR/btrfs
BTRFS_FS=(main replica)
BTRFS_SIZE=${OPDBUS_BTRFS_SIZE:-4G}

btrfs_env() {
    printf 'export OPDBUS_BTRFS_MNT=%q\n' "$BTRFS_DIR/main"
    printf 'export OPDBUS_BTRFS_REPLICA_MNT=%q\n' "$BTRFS_DIR/replica"
}

# btrfs_loop NAME -> prints the loop device recorded for NAME if it is still backed by NAME.img.
btrfs_loop() {
    local name=$1 dev back
    [[ -r $BTRFS_DIR/$name.loop ]] || return 1
    read -r dev <"$BTRFS_DIR/$name.loop" 2>/dev/null || return 1
    [[ $dev =~ ^/dev/loop[0-9]+$ && -b $dev ]] || return 1
    back=$(losetup --noheadings --output BACK-FILE --list "$dev" 2>/dev/null) || return 1
    back=${back%"${back##*[![:space:]]}"}
    [[ $back == "$BTRFS_DIR/$name.img" ]] || return 1
    printf '%s\n' "$dev"
}

# btrfs_mounted NAME: is our loop device mounted at NAME's mount point?
btrfs_mounted() {
    local name=$1 dev src
    dev=$(btrfs_loop "$name") || return 1
    src=$(findmnt --noheadings --output SOURCE --mountpoint "$BTRFS_DIR/$name" 2>/dev/null) || return 1
    [[ $(head -n1 <<<"$src") == "$dev" ]]
}

btrfs_up() {
    command -v mkfs.btrfs >/dev/null || die "mkfs.btrfs not found (install btrfs-progs)"
    mkdir -p "$BTRFS_DIR"
    local name dev img mnt
    for name in "${BTRFS_FS[@]}"; do
        img=$BTRFS_DIR/$name.img
        mnt=$BTRFS_DIR/$name
        btrfs_mounted "$name" && continue
        if ! dev=$(btrfs_loop "$name"); then
            [[ -f $img ]] || truncate -s "$BTRFS_SIZE" "$img"
            chmod 0600 "$img"
            dev=$(losetup --find --show "$img")
            printf '%s\n' "$dev" >"$BTRFS_DIR/$name.loop"
            log "attached $img to $dev"
        fi
        if [[ $(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true) != btrfs ]]; then
            log "creating btrfs on $dev ($name)"
            mkfs.btrfs -q -L "opdbus-$name" "$dev" >/dev/null
        fi
        mkdir -p "$mnt"
        if findmnt --mountpoint "$mnt" >/dev/null 2>&1; then
            die "$mnt is already a mount point of something else"
        fi
        log "mounting $dev on $mnt"
        mount -t btrfs "$dev" "$mnt"
    done
}

btrfs_down() {
    local i name dev mnt
    [[ -d $BTRFS_DIR ]] || return 0
    for ((i = ${#BTRFS_FS[@]} - 1; i >= 0; i--)); do
        name=${BTRFS_FS[i]}
        mnt=$BTRFS_DIR/$name
        if btrfs_mounted "$name"; then
            log "unmounting $mnt"
            if ! umount "$mnt"; then
                # busy (a process works in it): keep its state so that the next `down` retries
                log "warning: cannot unmount $mnt (in use?); left mounted, run down again later"
                continue
            fi
        fi
        if dev=$(btrfs_loop "$name"); then
            log "detaching $dev"
            if ! losetup --detach "$dev"; then
                log "warning: cannot detach $dev; left attached, run down again later"
                continue
            fi
        fi
        rm -f -- "$BTRFS_DIR/$name.loop" "$BTRFS_DIR/$name.img"
        # only an empty directory that is not a mount point goes
        findmnt --mountpoint "$mnt" >/dev/null 2>&1 || rmdir -- "$mnt" 2>/dev/null || true
    done
    rmdir -- "$BTRFS_DIR" 2>/dev/null || true
}

btrfs_status() {
    local name rc=0
    for name in "${BTRFS_FS[@]}"; do
        if btrfs_mounted "$name"; then
            printf '  %-14s mounted on %s (%s)\n' "btrfs $name" "$BTRFS_DIR/$name" "$(btrfs_loop "$name")"
        else
            printf '  %-14s not mounted\n' "btrfs $name"
            rc=1
        fi
    done
    return "$rc"
}

# ---------------------------------------------------------------------------------------------
# component: lxc (a private lxcpath for liblxc containers)
# ---------------------------------------------------------------------------------------------
# The lxcpath is a btrfs subvolume "lxc" on the lab's main btrfs filesystem (container root
# filesystems become subvolumes there, and clones btrfs snapshots), or else $LAB_DIR/lxc. `up`
# records the chosen path in $LAB_DIR/lxc.path. `down` stops (lxc-stop -k) and destroys
# (lxc-destroy) only the containers under that path, by name, then removes the path. The host's
# default lxcpath (/var/lib/lxc) and LXC's system configuration are never touched.
LXC_PATH_FILE=$LAB_DIR/lxc.path

# lxc_path: the recorded lxcpath, or the one `up` will choose.
lxc_path() {
    local p
    if [[ -r $LXC_PATH_FILE ]] && read -r p <"$LXC_PATH_FILE" && [[ -n $p ]]; then
        printf '%s\n' "$p"
    elif btrfs_mounted main || command -v mkfs.btrfs >/dev/null; then
        printf '%s\n' "$BTRFS_DIR/main/lxc"
    else
        printf '%s\n' "$LAB_DIR/lxc"
    fi
}

lxc_env() {
    printf 'export OPDBUS_LXC_PATH=%q\n' "$(lxc_path)"
}

lxc_up() {
    command -v lxc-start >/dev/null || die "lxc-start not found (install lxc)"
    local p
    p=$(lxc_path)
    if [[ $p == "$BTRFS_DIR/main/lxc" ]]; then
        btrfs_mounted main || die "the lab's btrfs is not mounted at $BTRFS_DIR/main"
        if [[ ! -d $p ]]; then
            log "creating btrfs subvolume $p (lxcpath)"
            btrfs subvolume create "$p" >/dev/null
        fi
    elif [[ ! -d $p ]]; then
        log "creating lxcpath $p"
        mkdir -p "$p"
    fi
    chmod 0700 "$p"
    printf '%s\n' "$p" >"$LXC_PATH_FILE"
}

# lxc_containers PATH: the names of the containers defined under PATH (directories with a config).
lxc_containers() {
    local d
    for d in "$1"/*/; do
        [[ -f ${d}config ]] && basename -- "$d"
    done
    return 0
}

lxc_down() {
    local p name sub
    [[ -r $LXC_PATH_FILE ]] || return 0
    p=$(lxc_path)
    # only a path of this lab
    [[ $p == "$LAB_DIR/lxc" || $p == "$BTRFS_DIR/main/lxc" ]] || die "refusing to clean up $p (not a lab lxcpath)"
    if [[ -d $p ]]; then
        while read -r name; do
            [[ -n $name ]] || continue
            if [[ $(lxc-info -P "$p" -n "$name" -sH 2>/dev/null) != STOPPED ]]; then
                log "stopping container $name"
                lxc-stop -P "$p" -n "$name" -k || log "warning: cannot stop container $name"
            fi
            log "destroying container $name"
            lxc-destroy -P "$p" -n "$name" >/dev/null || log "warning: cannot destroy container $name"
        done < <(lxc_containers "$p")
        # subvolumes left behind (deepest first), then the path itself
        if findmnt --noheadings --output FSTYPE --target "$p" 2>/dev/null | grep -qx btrfs; then
            while read -r sub; do
                [[ -n $sub && $sub != "$p" ]] || continue
                [[ $(stat -c %i "$sub" 2>/dev/null) == 256 ]] || continue
                btrfs property set -f -ts "$sub" ro false 2>/dev/null || true
                btrfs subvolume delete "$sub" >/dev/null 2>&1 || log "warning: cannot delete subvolume $sub"
            done < <(find "$p" -mindepth 1 -xdev -depth -type d 2>/dev/null)
            if [[ $(stat -c %i "$p") == 256 ]]; then
                rm -rf --one-file-system -- "${p:?}"/* 2>/dev/null || true
                btrfs subvolume delete "$p" >/dev/null || log "warning: cannot delete subvolume $p"
            fi
        fi
        [[ ! -d $p ]] || rm -rf --one-file-system -- "$p"
    fi
    rm -f -- "$LXC_PATH_FILE"
}

lxc_status() {
    local p n
    p=$(lxc_path)
    if [[ -r $LXC_PATH_FILE && -d $p ]]; then
        n=$(lxc_containers "$p" | wc -l)
        printf '  %-14s %s (%s containers)\n' lxcpath "$p" "$n"
    else
        printf '  %-14s down\n' lxcpath
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# component: dbus (a system-type D-Bus on a private socket, with polkitd and packagekitd on it)
# ---------------------------------------------------------------------------------------------
# dbus-daemon runs with a config of its own ($DBUS_DIR/system.conf): the system bus's default
# policy and the system policy dirs (/usr/share/dbus-1/system.d, /etc/dbus-1/system.d, so the
# policies of polkit and PackageKit apply), listening on $DBUS_SOCKET (under /run) only; no
# bus activation (the lab starts the services itself). The host's /run/dbus is never touched.
# polkitd (it switches to user polkitd itself, which its bus policy requires) and packagekitd (root, the apt
# backend, idle timer off) get DBUS_SYSTEM_BUS_ADDRESS pointing at that socket and a clean
# environment. Their PIDs go to pidfiles in $DBUS_DIR; `down` stops only those PIDs, after
# checking the process's name and that its environment names our socket.
DBUS_DIR=$LAB_DIR/dbus
# The socket lives under /run (0755), not in the checkout: polkitd runs as user polkitd and test callers as
# nobody, and a checkout may sit below a directory only root can enter (mktemp -d makes 0700 ones).
DBUS_RUN=/run/opdbus-lab-$(printf '%s' "$LAB_DIR" | cksum | cut -d' ' -f1)
DBUS_SOCKET=$DBUS_RUN/system_bus_socket
DBUS_ADDRESS=unix:path=$DBUS_SOCKET
POLKITD=${OPDBUS_POLKITD:-/usr/lib/polkit-1/polkitd}
PACKAGEKITD=${OPDBUS_PACKAGEKITD:-/usr/libexec/packagekitd}

dbus_env() {
    printf 'export DBUS_SYSTEM_BUS_ADDRESS=%q\n' "$DBUS_ADDRESS"
    printf 'export OPDBUS_DBUS_ADDRESS=%q\n' "$DBUS_ADDRESS"
}

# dbus_service_pid PIDFILE NAME -> the PID if it is a live NAME whose environment has our bus.
dbus_service_pid() {
    local pidfile=$1 name=$2 pid
    [[ -r $pidfile ]] || return 1
    read -r pid <"$pidfile" 2>/dev/null || return 1
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    [[ $(basename -- "$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1)") == "$name" ]] || return 1
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF -- "DBUS_SYSTEM_BUS_ADDRESS=$DBUS_ADDRESS" || return 1
    printf '%s\n' "$pid"
}

# stop_service PIDFILE NAME: stop_pidfile for the services identified by their environment.
stop_service() { stop_pidfile "$1" "$2" dbus_service_pid; }

# dbus_owned NAME: is NAME owned on the lab's bus?
dbus_owned() {
    dbus-send --bus="$DBUS_ADDRESS" --print-reply=literal --reply-timeout=2000 --dest=org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner "string:$1" 2>/dev/null | grep -q true
}

dbus_wait_owned() {
    local i
    for ((i = 0; i < 100; i++)); do
        dbus_owned "$1" && return 0
        sleep 0.1
    done
    return 1
}

dbus_write_config() {
    local tmp
    tmp=$(mktemp "$DBUS_DIR/.system.conf.XXXXXX")
    cat >"$tmp" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- generated by lab/lab.sh: the opdbus lab's system bus -->
<busconfig>
  <type>system</type>
  <listen>$DBUS_ADDRESS</listen>
  <pidfile>$DBUS_DIR/dbus-daemon.pid</pidfile>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>/etc/dbus-1/system.d</includedir>
</busconfig>
XML
    chmod 0644 "$tmp"
    mv -f -- "$tmp" "$DBUS_DIR/system.conf"
}

# The services' environment (env -i: nothing of the caller's but the bus address). Started with
# env directly, not through a function, so that $! is the daemon's PID (env execs it).
DBUS_SERVICE_ENV=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
    "DBUS_SYSTEM_BUS_ADDRESS=$DBUS_ADDRESS")

dbus_up() {
    command -v dbus-daemon >/dev/null || die "dbus-daemon not found (make deps installs dbus)"
    [[ -x $POLKITD ]] || die "$POLKITD not found (make deps installs polkitd)"
    [[ -x $PACKAGEKITD ]] || die "$PACKAGEKITD not found (make deps installs packagekit)"
    mkdir -p "$DBUS_DIR" "$DBUS_RUN"
    chmod 0755 "$DBUS_DIR" "$DBUS_RUN"
    if ((${#DBUS_SOCKET} > 100)); then
        die "$DBUS_SOCKET is longer than a unix socket path may be; use a shorter OPDBUS_LAB_DIR"
    fi
    if ! pid_of "$DBUS_DIR/dbus-daemon.pid" dbus-daemon >/dev/null; then
        # a new bus: services still registered on an old one are gone with it
        stop_service "$DBUS_DIR/packagekitd.pid" packagekitd
        stop_service "$DBUS_DIR/polkitd.pid" polkitd
        rm -f -- "$DBUS_DIR/dbus-daemon.pid" "$DBUS_SOCKET"
        dbus_write_config
        log "starting dbus-daemon (system bus) on $DBUS_SOCKET"
        env -i "${DBUS_SERVICE_ENV[@]}" dbus-daemon --config-file="$DBUS_DIR/system.conf" --fork --nosyslog 9>&-
        local i
        for ((i = 0; i < 50; i++)); do
            [[ -S $DBUS_SOCKET ]] && break
            sleep 0.1
        done
        pid_of "$DBUS_DIR/dbus-daemon.pid" dbus-daemon >/dev/null || die "dbus-daemon did not start"
    fi
    if ! dbus_service_pid "$DBUS_DIR/polkitd.pid" polkitd >/dev/null; then
        dbus_owned org.freedesktop.PolicyKit1 && die "org.freedesktop.PolicyKit1 is owned on $DBUS_SOCKET by a process the lab did not start"
        log "starting polkitd"
        # started as root, polkitd switches to user polkitd itself (whom its bus policy lets own the name)
        env -i "${DBUS_SERVICE_ENV[@]}" "$POLKITD" --no-debug \
            </dev/null >>"$DBUS_DIR/polkitd.log" 2>&1 9>&- &
        printf '%s\n' "$!" >"$DBUS_DIR/polkitd.pid"
        dbus_wait_owned org.freedesktop.PolicyKit1 || die "polkitd did not come up on the lab's bus (see $DBUS_DIR/polkitd.log)"
    fi
    if ! dbus_service_pid "$DBUS_DIR/packagekitd.pid" packagekitd >/dev/null; then
        dbus_owned org.freedesktop.PackageKit && die "org.freedesktop.PackageKit is owned on $DBUS_SOCKET by a process the lab did not start"
        log "starting packagekitd"
        # --keep-environment: packagekitd clears its environment otherwise, and with it the bus address
        env -i "${DBUS_SERVICE_ENV[@]}" "$PACKAGEKITD" --keep-environment --disable-timer \
            </dev/null >>"$DBUS_DIR/packagekitd.log" 2>&1 9>&- &
        printf '%s\n' "$!" >"$DBUS_DIR/packagekitd.pid"
        dbus_wait_owned org.freedesktop.PackageKit || die "packagekitd did not come up on the lab's bus (see $DBUS_DIR/packagekitd.log)"
    fi
}

dbus_down() {
    stop_service "$DBUS_DIR/packagekitd.pid" packagekitd
    stop_service "$DBUS_DIR/polkitd.pid" polkitd
    stop_pidfile "$DBUS_DIR/dbus-daemon.pid" dbus-daemon
    if [[ -d $DBUS_DIR ]]; then
        rm -f -- "$DBUS_DIR/system.conf"
    fi
    rm -f -- "$DBUS_SOCKET"
    [[ -d $DBUS_RUN ]] && rmdir -- "$DBUS_RUN" 2>/dev/null
    return 0
}

dbus_status() {
    local pid rc=0
    if pid=$(pid_of "$DBUS_DIR/dbus-daemon.pid" dbus-daemon); then
        printf '  %-14s running (pid %s) on %s\n' dbus-daemon "$pid" "$DBUS_SOCKET"
    else
        printf '  %-14s stopped\n' dbus-daemon
        rc=1
    fi
    local d
    for d in polkitd packagekitd; do
        if pid=$(dbus_service_pid "$DBUS_DIR/$d.pid" "$d"); then
            printf '  %-14s running (pid %s)\n' "$d" "$pid"
        else
            printf '  %-14s stopped\n' "$d"
            rc=1
        fi
    done
    return "$rc"
}

# ---------------------------------------------------------------------------------------------
# peers: the privacy chain's outside world (peers-up, peers-client, peers-down)
# ---------------------------------------------------------------------------------------------
# Not a component (`up` does not start them; `down` stops them first). Lab-only namespaces hang
# off the uplink namespace, which becomes the "ISP router" (ip_forward=1), each by a veth pair
# (isp-<name> in the router, eth0 in the peer):
#   opdbus-client  a WireGuard client; `peers-client CONF` runs wireguard-go opdbus-wgc in it and
#                  routes only the www's 198.18.0.0/24 through it
#   opdbus-warpep  a WARP endpoint: wireguard-go opdbus-warp on :2408, whose one peer is the
#                  chain's WARP hop (warp-client.key); tunnel traffic leaves masqueraded
#                  as 198.51.100.2, as Cloudflare WARP's egress does
#   opdbus-vps     a VPS: v2ray, VLESS over TCP on :443 and VMess over WebSocket on :8443 /opdbus
#   opdbus-www     "the internet": lab/www.py on :80 (GET / -> "source=<client ip>") and iperf3 -s
# Keys and the VPS's client id are made once per lab in $PEERS_DIR (0700, files 0600) and never
# printed; `peers-down` keeps them, `down` removes them (and keeps the logs). wireguard-go's
# control sockets live in /var/run/wireguard for every namespace: its interface names are unique.
PEERS_DIR=$LAB_DIR/peers
CLIENT_NS=opdbus-client
WARP_NS=opdbus-warpep
VPS_NS=opdbus-vps
WWW_NS=opdbus-www
PEER_IF=eth0 # each peer's end of its veth
CLIENT_ROUTER_ADDR=100.64.0.1/24
CLIENT_ADDR=100.64.0.2/24
WARP_ROUTER_ADDR=198.51.100.1/24
WARP_ADDR=198.51.100.2/24
VPS_ROUTER_ADDR=203.0.113.1/24
VPS_ADDR=203.0.113.10/24
WWW_ROUTER_ADDR=198.18.0.1/24
WWW_ADDR=198.18.0.80/24
WWW_DIRECT_ADDR=198.18.1.80/24 # the www's second address: its /24 stays off the client's tunnel
WWW_DIRECT_NET=198.18.1.0/24
WARP_IF=opdbus-warp
WARP_PORT=2408
WARP_TUN_ADDR=172.16.0.1/24
WARP_TUN_NET=172.16.0.0/24
WARP_CLIENT_TUN_ADDR=172.16.0.2/32
VPS_VLESS_PORT=443
VPS_VMESS_PORT=8443
VPS_WS_PATH=/opdbus
WWW_PORT=80
IPERF_PORT=5201
CLIENT_WG_IF=opdbus-wgc
CLIENT_WG_MTU=1380
CLIENT_TUNNEL_NET=198.18.0.0/24
PEERS_NFT_TABLE=opdbus_lab
# namespace, router-side veth, router address, the peer's addresses
PEER_LINKS=(
    "$CLIENT_NS isp-client $CLIENT_ROUTER_ADDR $CLIENT_ADDR"
    "$WARP_NS isp-warpep $WARP_ROUTER_ADDR $WARP_ADDR"
    "$VPS_NS isp-vps $VPS_ROUTER_ADDR $VPS_ADDR"
    "$WWW_NS isp-www $WWW_ROUTER_ADDR $WWW_ADDR $WWW_DIRECT_ADDR"
)
PEER_NSES=("$CLIENT_NS" "$WARP_NS" "$VPS_NS" "$WWW_NS")
WG_RUN=/var/run/wireguard

peers_env() {
    printf 'export OPDBUS_PEERS_DIR=%q\n' "$PEERS_DIR"
    printf 'export OPDBUS_CLIENT_NS=%q\n' "$CLIENT_NS"
    printf 'export OPDBUS_WARP_NS=%q\n' "$WARP_NS"
    printf 'export OPDBUS_VPS_NS=%q\n' "$VPS_NS"
    printf 'export OPDBUS_WWW_NS=%q\n' "$WWW_NS"
    printf 'export OPDBUS_WARP_ENDPOINT=%q\n' "${WARP_ADDR%/*}:$WARP_PORT"
    printf 'export OPDBUS_WARP_PUBLIC_KEY_FILE=%q\n' "$PEERS_DIR/warp-endpoint.pub"
    printf 'export OPDBUS_WARP_CLIENT_KEY_FILE=%q\n' "$PEERS_DIR/warp-client.key"
    printf 'export OPDBUS_VPS_ADDR=%q\n' "${VPS_ADDR%/*}"
    printf 'export OPDBUS_VPS_ID_FILE=%q\n' "$PEERS_DIR/vps.uuid"
    printf 'export OPDBUS_WWW_ADDR=%q\n' "${WWW_ADDR%/*}"
    printf 'export OPDBUS_WWW_DIRECT_ADDR=%q\n' "${WWW_DIRECT_ADDR%/*}"
}

# Every step checks the state first and calls peers_change only when something differs. In check
# mode (--check) peers_change only notes the change; steps that need what a skipped change would
# have made test the real state afterwards and stop there. Functions that change something are
# never called as conditions (set -e does not apply inside those).
PEERS_CHECK=0
PEERS_CHANGED=0

# peers_change WHAT CMD...: note a change; unless in check mode, log WHAT and run CMD.
peers_change() {
    local what=$1
    shift
    PEERS_CHANGED=1
    if ((PEERS_CHECK)); then
        log "would $what"
    else
        log "$what"
        "$@"
    fi
}

# peers_result: the last line on stdout, "changed" or "ok".
peers_result() {
    if ((PEERS_CHANGED)); then echo changed; else echo ok; fi
}

# peers_read FILE: its content, or nothing (a file check mode would have made).
peers_read() { if [[ -r $1 ]]; then cat -- "$1"; fi; }

# wg_pid PIDFILE NAME: pid_of for wireguard-go, whose command line cannot name the lab dir: it is
# started with OPDBUS_LAB_PEER=<lab dir> in its environment instead.
wg_pid() {
    local pidfile=$1 name=$2 pid
    [[ -r $pidfile ]] || return 1
    read -r pid <"$pidfile" 2>/dev/null || return 1
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    [[ $(basename -- "$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1)") == "$name" ]] || return 1
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF -- "OPDBUS_LAB_PEER=$LAB_DIR" || return 1
    printf '%s\n' "$pid"
}

peers_registered() { [[ -r $NETNS_LIST ]] && grep -qxF -- "$1" "$NETNS_LIST"; }

peers_require_lab() {
    if ! netns_exists "$UPLINK_NS" || ! ip -n "$UPLINK_NS" link show dev "$UPLINK_PEER" >/dev/null 2>&1; then
        die "the lab is not up (no namespace $UPLINK_NS with $UPLINK_PEER): run \`$0 up\` first"
    fi
    local c
    for c in wireguard-go wg wg-quick v2ray iperf3 nft; do
        command -v "$c" >/dev/null || die "$c not found (make deps installs wireguard-go wireguard-tools v2ray iperf3 nftables)"
    done
}

peers_link_is_up() { [[ -n $(ip -n "$1" link show dev "$2" up 2>/dev/null) ]]; }

peers_sysctl() {
    local ns=$1 key=$2 value=$3
    [[ $(ip netns exec "$ns" sysctl -n "$key") == "$value" ]] && return 0
    peers_change "set $key=$value in $ns" ip netns exec "$ns" sysctl -qw "$key=$value"
}

peers_ns_add() {
    register_netns "$1"
    ip netns add "$1"
}

peers_ns() {
    local ns=$1
    if netns_exists "$ns"; then
        peers_registered "$ns" || die "namespace $ns exists but this lab did not make it (not in $NETNS_LIST)"
    else
        peers_change "create namespace $ns" peers_ns_add "$ns"
    fi
    netns_exists "$ns" || return 0
    if ! peers_link_is_up "$ns" lo; then
        peers_change "bring lo up in $ns" ip -n "$ns" link set lo up
    fi
}

# peers_veth_add NS ROUTER_IF: a new pair (half a pair is deleted first).
peers_veth_add() {
    local ns=$1 rif=$2
    ip -n "$UPLINK_NS" link del dev "$rif" 2>/dev/null || true
    ip -n "$ns" link del dev "$PEER_IF" 2>/dev/null || true
    ip -n "$UPLINK_NS" link add "$rif" type veth peer name "$PEER_IF" netns "$ns"
}

# peers_addr NS IF ADDR/LEN
peers_addr() {
    local ns=$1 ifname=$2 addr=$3
    if ! ip -n "$ns" -o addr show dev "$ifname" 2>/dev/null | awk '{print $4}' | grep -qxF -- "$addr"; then
        peers_change "add $addr to $ns:$ifname" ip -n "$ns" addr replace "$addr" dev "$ifname"
    fi
}

peers_up_link() {
    if ! peers_link_is_up "$1" "$2"; then
        peers_change "bring $1:$2 up" ip -n "$1" link set "$2" up
    fi
}

# The userspace OVS datapath does not fill in checksums that veth offloads (see uplink_up).
peers_tx_off() {
    local ns=$1 ifname=$2 state
    state=$(ip netns exec "$ns" ethtool -k "$ifname" 2>/dev/null | sed -n 's/^tx-checksumming: //p')
    if [[ $state != off* ]]; then
        peers_change "turn tx checksum offload off on $ns:$ifname" \
            ip netns exec "$ns" ethtool -K "$ifname" tx off >/dev/null
    fi
}

# peers_route NS DEST GATEWAY|- DEV: DEST only via GATEWAY (or on-link, -) on DEV.
peers_route() {
    local ns=$1 dest=$2 gw=$3 dev=$4 out want=(via "$3")
    [[ $gw == - ]] && want=()
    out=$(ip -n "$ns" -4 route show exact "$dest" 2>/dev/null || true)
    if [[ $(wc -l <<<"$out") == 1 && " $out " == *" dev $dev "* ]] &&
        { [[ $gw == - && " $out " != *" via "* ]] || [[ " $out " == *" via $gw "* ]]; }; then
        return 0
    fi
    peers_change "route $dest${want[*]:+ ${want[*]}} dev $dev in $ns" ip -n "$ns" route replace "$dest" "${want[@]}" dev "$dev"
}

# peers_link NS ROUTER_IF ROUTER_ADDR ADDR...: the veth from the router to a peer.
peers_link() {
    local ns=$1 rif=$2 raddr=$3 a
    shift 3
    if ! ip -n "$UPLINK_NS" link show dev "$rif" >/dev/null 2>&1 || ! ip -n "$ns" link show dev "$PEER_IF" >/dev/null 2>&1; then
        peers_change "create veth $UPLINK_NS:$rif <-> $ns:$PEER_IF" peers_veth_add "$ns" "$rif"
    fi
    ip -n "$ns" link show dev "$PEER_IF" >/dev/null 2>&1 || return 0
    peers_addr "$UPLINK_NS" "$rif" "$raddr"
    for a in "$@"; do peers_addr "$ns" "$PEER_IF" "$a"; done
    peers_up_link "$UPLINK_NS" "$rif"
    peers_up_link "$ns" "$PEER_IF"
    peers_tx_off "$UPLINK_NS" "$rif"
    peers_tx_off "$ns" "$PEER_IF"
    peers_route "$ns" default "${raddr%/*}" "$PEER_IF"
}

# --- secrets -----------------------------------------------------------------------------------
peers_mkdir() {
    mkdir -p "$PEERS_DIR"
    chmod 0700 "$PEERS_DIR"
}

peers_genkey() {
    local tmp
    tmp=$(umask 077 && mktemp "$PEERS_DIR/.$1.key.XXXXXX")
    wg genkey >"$tmp"
    mv -f -- "$tmp" "$PEERS_DIR/$1.key"
    peers_pubkey "$1"
}

peers_pubkey() {
    local tmp
    tmp=$(umask 077 && mktemp "$PEERS_DIR/.$1.pub.XXXXXX")
    wg pubkey <"$PEERS_DIR/$1.key" >"$tmp"
    mv -f -- "$tmp" "$PEERS_DIR/$1.pub"
}

peers_new_uuid() {
    local tmp
    tmp=$(umask 077 && mktemp "$PEERS_DIR/.vps.uuid.XXXXXX")
    cat /proc/sys/kernel/random/uuid >"$tmp"
    mv -f -- "$tmp" "$PEERS_DIR/vps.uuid"
}

peers_keypair() {
    local name=$1 key=$PEERS_DIR/$1.key pub=$PEERS_DIR/$1.pub
    if [[ ! -s $key ]]; then
        peers_change "generate the WireGuard key pair $name" peers_genkey "$name"
    elif [[ ! -s $pub || $(wg pubkey <"$key") != "$(<"$pub")" ]]; then
        peers_change "derive $name.pub" peers_pubkey "$name"
    fi
}

peers_secrets() {
    local f
    if [[ ! -d $PEERS_DIR ]]; then
        peers_change "create $PEERS_DIR" peers_mkdir
    elif [[ $(stat -c %a "$PEERS_DIR") != 700 ]]; then
        peers_change "chmod 0700 $PEERS_DIR" chmod 0700 "$PEERS_DIR"
    fi
    [[ -d $PEERS_DIR ]] || return 0
    peers_keypair warp-endpoint
    peers_keypair warp-client
    if [[ ! -s $PEERS_DIR/vps.uuid ]]; then
        peers_change "generate the VPS's client id" peers_new_uuid
    fi
    for f in warp-endpoint.key warp-endpoint.pub warp-client.key warp-client.pub vps.uuid; do
        [[ -e $PEERS_DIR/$f ]] || continue
        if [[ $(stat -c %a "$PEERS_DIR/$f") != 600 ]]; then
            peers_change "chmod 0600 $PEERS_DIR/$f" chmod 0600 "$PEERS_DIR/$f"
        fi
    done
}

# peers_forget_secrets: remove the lab's keys, the VPS's id and configs holding them (down).
peers_forget_secrets() {
    [[ -d $PEERS_DIR ]] || return 0
    rm -f -- "$PEERS_DIR"/warp-endpoint.{key,pub} "$PEERS_DIR"/warp-client.{key,pub} "$PEERS_DIR/vps.uuid" \
        "$PEERS_DIR/vps.json" "$PEERS_DIR/$CLIENT_WG_IF.conf" "$PEERS_DIR/$CLIENT_WG_IF.applied"
}

# --- wireguard-go ------------------------------------------------------------------------------
# peers_wg_start NS IF PIDFILE LOG: wireguard-go IF in NS, in the foreground (so $! is its PID).
peers_wg_start() {
    local ns=$1 ifname=$2 pidfile=$3 logf=$4 i
    stop_pidfile "$pidfile" wireguard-go wg_pid
    peers_wg_stale_socket "$ifname"
    [[ ! -e $WG_RUN/$ifname.sock ]] || die "$WG_RUN/$ifname.sock is in use: a WireGuard interface $ifname runs elsewhere (another lab?)"
    ip netns exec "$ns" env "OPDBUS_LAB_PEER=$LAB_DIR" wireguard-go -f "$ifname" \
        </dev/null >>"$logf" 2>&1 9>&- &
    printf '%s\n' "$!" >"$pidfile"
    for ((i = 0; i < 50; i++)); do
        if [[ -S $WG_RUN/$ifname.sock ]] && ip -n "$ns" link show dev "$ifname" >/dev/null 2>&1; then
            return 0
        fi
        [[ -d /proc/$!/ ]] || break # (until ip netns exec has exec'd it, $! is not wireguard-go yet)
        sleep 0.1
    done
    die "wireguard-go $ifname did not come up in $ns (see $logf)"
}

# peers_wg_stale_socket IF: remove IF's control socket if nothing answers on it (a killed wireguard-go).
peers_wg_stale_socket() {
    local sock=$WG_RUN/$1.sock
    [[ -S $sock ]] || return 0
    python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$sock" 2>/dev/null && return 0
    log "removing stale $sock"
    rm -f -- "$sock"
}

# peers_wg NS IF PIDFILE LOG: wireguard-go IF runs in NS (started by this lab).
peers_wg() {
    local ns=$1 ifname=$2 pidfile=$3
    if ! wg_pid "$pidfile" wireguard-go >/dev/null || ! ip -n "$ns" link show dev "$ifname" >/dev/null 2>&1; then
        peers_change "start wireguard-go $ifname in $ns" peers_wg_start "$@"
    fi
}

# --- the WARP endpoint -------------------------------------------------------------------------
peers_warp_setconf() {
    ip netns exec "$WARP_NS" wg setconf "$WARP_IF" /dev/stdin <<EOF
[Interface]
PrivateKey = $(<"$PEERS_DIR/warp-endpoint.key")
ListenPort = $WARP_PORT

[Peer]
PublicKey = $(<"$PEERS_DIR/warp-client.pub")
AllowedIPs = $WARP_CLIENT_TUN_ADDR
EOF
}

peers_nat_rule() { printf 'ip saddr %s oifname "%s" masquerade' "$WARP_TUN_NET" "$PEER_IF"; }

peers_nat_apply() {
    ip netns exec "$WARP_NS" nft -f - <<EOF
table ip $PEERS_NFT_TABLE
delete table ip $PEERS_NFT_TABLE
table ip $PEERS_NFT_TABLE {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        $(peers_nat_rule)
    }
}
EOF
}

peers_warp() {
    local pidfile=$PEERS_DIR/warp.pid
    peers_sysctl "$WARP_NS" net.ipv4.ip_forward 1
    if ! ip netns exec "$WARP_NS" nft list table ip "$PEERS_NFT_TABLE" 2>/dev/null | grep -qF -- "$(peers_nat_rule)"; then
        peers_change "masquerade $WARP_TUN_NET as ${WARP_ADDR%/*} in $WARP_NS" peers_nat_apply
    fi
    peers_wg "$WARP_NS" "$WARP_IF" "$pidfile" "$PEERS_DIR/warp.log"
    wg_pid "$pidfile" wireguard-go >/dev/null || return 0
    local pub peer
    pub=$(peers_read "$PEERS_DIR/warp-endpoint.pub")
    peer=$(peers_read "$PEERS_DIR/warp-client.pub")
    if [[ -z $pub || $(wg show "$WARP_IF" public-key 2>/dev/null) != "$pub" ||
        $(wg show "$WARP_IF" listen-port 2>/dev/null) != "$WARP_PORT" ||
        $(wg show "$WARP_IF" allowed-ips 2>/dev/null) != "$peer"$'\t'"$WARP_CLIENT_TUN_ADDR" ]]; then
        peers_change "configure $WARP_IF (port $WARP_PORT, peer warp-client)" peers_warp_setconf
    fi
    peers_addr "$WARP_NS" "$WARP_IF" "$WARP_TUN_ADDR"
    peers_up_link "$WARP_NS" "$WARP_IF"
}

# --- the VPS -----------------------------------------------------------------------------------
peers_vps_config() {
    local id
    id=$(peers_read "$PEERS_DIR/vps.uuid")
    cat <<EOF
{
  "log": {
    "access": "$PEERS_DIR/vps-access.log",
    "error": "$PEERS_DIR/vps-error.log",
    "loglevel": "warning"
  },
  "inbounds": [
    {
      "tag": "vless-tcp",
      "listen": "${VPS_ADDR%/*}",
      "port": $VPS_VLESS_PORT,
      "protocol": "vless",
      "settings": {"clients": [{"id": "$id"}], "decryption": "none"},
      "streamSettings": {"network": "tcp"}
    },
    {
      "tag": "vmess-ws",
      "listen": "${VPS_ADDR%/*}",
      "port": $VPS_VMESS_PORT,
      "protocol": "vmess",
      "settings": {"clients": [{"id": "$id", "alterId": 0}]},
      "streamSettings": {"network": "ws", "wsSettings": {"path": "$VPS_WS_PATH"}}
    }
  ],
  "outbounds": [{"protocol": "freedom"}]
}
EOF
}

peers_vps_write() {
    local tmp
    tmp=$(umask 077 && mktemp "$PEERS_DIR/.vps.json.XXXXXX")
    peers_vps_config >"$tmp"
    if ! ip netns exec "$VPS_NS" v2ray -test -config "$tmp" >>"$PEERS_DIR/vps.log" 2>&1; then
        rm -f -- "$tmp"
        die "v2ray rejects the VPS configuration (see $PEERS_DIR/vps.log)"
    fi
    mv -f -- "$tmp" "$PEERS_DIR/vps.json"
}

# peers_listening NS PORT...: does something listen on every TCP PORT in NS?
peers_listening() {
    local ns=$1 p
    shift
    for p in "$@"; do
        [[ -n $(ip netns exec "$ns" ss -Hltn "sport = :$p" 2>/dev/null) ]] || return 1
    done
}

# peers_wait_listening NS PIDFILE NAME PORT...: wait for the daemon's ports, die if it exits.
peers_wait_listening() {
    local ns=$1 pidfile=$2 name=$3 i pid
    shift 3
    read -r pid <"$pidfile"
    for ((i = 0; i < 100; i++)); do
        # (until ip netns exec has exec'd it, the PID is not NAME yet: wait for it to exit instead)
        if peers_listening "$ns" "$@"; then
            pid_of "$pidfile" "$name" >/dev/null && return 0
            break # someone else's
        fi
        [[ -d /proc/$pid/ ]] || break
        sleep 0.1
    done
    die "$name did not come up in $ns (see the logs in $PEERS_DIR)"
}

peers_vps_start() {
    local pidfile=$PEERS_DIR/vps.pid
    stop_pidfile "$pidfile" v2ray
    ip netns exec "$VPS_NS" v2ray -config "$PEERS_DIR/vps.json" </dev/null >>"$PEERS_DIR/vps.log" 2>&1 9>&- &
    printf '%s\n' "$!" >"$pidfile"
    peers_wait_listening "$VPS_NS" "$pidfile" v2ray "$VPS_VLESS_PORT" "$VPS_VMESS_PORT"
}

peers_vps() {
    local conf=$PEERS_DIR/vps.json restart=0
    if [[ ! -f $conf || $(stat -c %a "$conf") != 600 || "$(<"$conf")" != "$(peers_vps_config)" ]]; then
        peers_change "write $conf" peers_vps_write
        restart=1
    fi
    if ((restart)) || ! pid_of "$PEERS_DIR/vps.pid" v2ray >/dev/null; then
        peers_change "(re)start v2ray in $VPS_NS" peers_vps_start
    fi
}

# --- www ---------------------------------------------------------------------------------------
peers_www_start() {
    local pidfile=$PEERS_DIR/www.pid
    stop_pidfile "$pidfile" python3
    ip netns exec "$WWW_NS" /usr/bin/python3 "$SCRIPT_DIR/www.py" --port "$WWW_PORT" --log "$PEERS_DIR/www.log" \
        </dev/null >>"$PEERS_DIR/www.err" 2>&1 9>&- &
    printf '%s\n' "$!" >"$pidfile"
    peers_wait_listening "$WWW_NS" "$pidfile" python3 "$WWW_PORT"
}

peers_iperf_start() {
    local pidfile=$PEERS_DIR/iperf3.pid
    stop_pidfile "$pidfile" iperf3
    ip netns exec "$WWW_NS" iperf3 -s -p "$IPERF_PORT" --logfile "$PEERS_DIR/iperf3.log" \
        </dev/null >/dev/null 2>&1 9>&- &
    printf '%s\n' "$!" >"$pidfile"
    peers_wait_listening "$WWW_NS" "$pidfile" iperf3 "$IPERF_PORT"
}

peers_www() {
    if ! pid_of "$PEERS_DIR/www.pid" python3 >/dev/null; then
        peers_change "start the web server (www.py) in $WWW_NS" peers_www_start
    fi
    if ! pid_of "$PEERS_DIR/iperf3.pid" iperf3 >/dev/null; then
        peers_change "start iperf3 -s in $WWW_NS" peers_iperf_start
    fi
}

peers_up() {
    local link ns rif raddr addrs
    peers_require_lab
    peers_sysctl "$UPLINK_NS" net.ipv4.ip_forward 1
    peers_secrets
    for link in "${PEER_LINKS[@]}"; do
        read -r ns rif raddr addrs <<<"$link"
        peers_ns "$ns"
        netns_exists "$ns" || continue
        # shellcheck disable=SC2086 # addrs: a list
        peers_link "$ns" "$rif" "$raddr" $addrs
    done
    # the www's direct-path /24 is behind its router-side veth too
    if ip -n "$UPLINK_NS" link show dev isp-www >/dev/null 2>&1; then
        peers_route "$UPLINK_NS" "$WWW_DIRECT_NET" "${WWW_ADDR%/*}" isp-www
    fi
    [[ -d $PEERS_DIR ]] || return 0
    if netns_exists "$WARP_NS"; then peers_warp; fi
    if netns_exists "$VPS_NS"; then peers_vps; fi
    if netns_exists "$WWW_NS"; then peers_www; fi
}

peers_down() {
    local ns keep
    stop_pidfile "$PEERS_DIR/wgc.pid" wireguard-go wg_pid
    stop_pidfile "$PEERS_DIR/warp.pid" wireguard-go wg_pid
    stop_pidfile "$PEERS_DIR/vps.pid" v2ray
    stop_pidfile "$PEERS_DIR/www.pid" python3
    stop_pidfile "$PEERS_DIR/iperf3.pid" iperf3
    peers_wg_stale_socket "$CLIENT_WG_IF"
    peers_wg_stale_socket "$WARP_IF"
    rm -f -- "$PEERS_DIR/$CLIENT_WG_IF.applied"
    for ns in "${PEER_NSES[@]}"; do
        peers_registered "$ns" || continue
        if netns_exists "$ns"; then
            log "deleting namespace $ns"
            ip netns del "$ns" || continue
        fi
        keep=$(grep -vxF -- "$ns" "$NETNS_LIST" || true)
        if [[ -n $keep ]]; then printf '%s\n' "$keep" >"$NETNS_LIST"; else : >"$NETNS_LIST"; fi
    done
    if netns_exists "$UPLINK_NS" && [[ $(ip netns exec "$UPLINK_NS" sysctl -n net.ipv4.ip_forward) != 0 ]]; then
        ip netns exec "$UPLINK_NS" sysctl -qw net.ipv4.ip_forward=0
    fi
}

# peers_status: one line; peers that were simply not started are no failure.
peers_status() {
    local ns have=() missing=() procs=() pid spec f name check wgc='' list
    for ns in "${PEER_NSES[@]}"; do
        if netns_exists "$ns"; then have+=("$ns"); else missing+=("$ns"); fi
    done
    for spec in "warp.pid wireguard-go wg_pid" "vps.pid v2ray pid_of" "www.pid python3 pid_of" "iperf3.pid iperf3 pid_of"; do
        read -r f name check <<<"$spec"
        if pid=$("$check" "$PEERS_DIR/$f" "$name"); then
            procs+=("${f%.pid} $pid")
        else
            missing+=("${f%.pid}")
        fi
    done
    if pid=$(wg_pid "$PEERS_DIR/wgc.pid" wireguard-go); then wgc=", client $CLIENT_WG_IF $pid"; fi
    if ((${#have[@]} == 0 && ${#procs[@]} == 0)); then
        printf '  %-14s not started\n' peers
    elif ((${#missing[@]} == 0)); then
        list=$(printf '%s, ' "${procs[@]}")
        printf '  %-14s up (%s%s)\n' peers "${list%, }" "$wgc"
    else
        printf '  %-14s degraded: missing %s\n' peers "${missing[*]}"
        return 1
    fi
}

# --- the WireGuard client ----------------------------------------------------------------------
# peers_conf_values CONF KEY: the comma-separated values of KEY in CONF's [Interface], one a line.
peers_conf_values() {
    awk -v key="$2" '
        /^[[:space:]]*\[/ { sect = tolower($0); gsub(/[[:space:]]/, "", sect); next }
        sect == "[interface]" {
            line = $0; sub(/#.*/, "", line)
            n = index(line, "="); if (!n) next
            k = tolower(substr(line, 1, n - 1)); gsub(/[[:space:]]/, "", k)
            if (k != tolower(key)) next
            v = substr(line, n + 1); gsub(/[[:space:]]/, "", v)
            m = split(v, parts, ","); for (i = 1; i <= m; i++) if (parts[i] != "") print parts[i]
        }' "$1"
}

# peers_wgc_setconf CONF: apply CONF (kept as $PEERS_DIR/opdbus-wgc.conf: wg-quick strip wants a
# file named <interface>.conf) and remember which wireguard-go it went to.
peers_wgc_setconf() {
    local copy=$PEERS_DIR/$CLIENT_WG_IF.conf
    rm -f -- "$PEERS_DIR/$CLIENT_WG_IF.applied"
    install -m 0600 -- "$1" "$copy"
    if ! wg-quick strip "$copy" | ip netns exec "$CLIENT_NS" wg setconf "$CLIENT_WG_IF" /dev/stdin; then
        rm -f -- "$copy"
        die "wg setconf $CLIENT_WG_IF failed for $1"
    fi
    wg_pid "$PEERS_DIR/wgc.pid" wireguard-go >"$PEERS_DIR/$CLIENT_WG_IF.applied"
}

# peers_wgc_current CONF: is CONF what runs on opdbus-wgc?
peers_wgc_current() {
    local conf=$1 copy=$PEERS_DIR/$CLIENT_WG_IF.conf pid want have
    cmp -s -- "$conf" "$copy" || return 1
    pid=$(wg_pid "$PEERS_DIR/wgc.pid" wireguard-go) || return 1
    [[ $(peers_read "$PEERS_DIR/$CLIENT_WG_IF.applied") == "$pid" ]] || return 1
    # and nobody changed the device since: same own key, same peers
    want=$(wg-quick strip "$copy" | sed -nE 's/^[[:space:]]*privatekey[[:space:]]*=[[:space:]]*([^[:space:]]+).*/\1/Ip' |
        wg pubkey 2>/dev/null) || return 1
    [[ $(wg show "$CLIENT_WG_IF" public-key 2>/dev/null) == "$want" ]] || return 1
    want=$(wg-quick strip "$copy" | sed -nE 's/^[[:space:]]*publickey[[:space:]]*=[[:space:]]*([^[:space:]]+).*/\1/Ip' | sort)
    have=$(wg show "$CLIENT_WG_IF" peers 2>/dev/null | sort)
    [[ $want == "$have" ]]
}

peers_client() {
    local conf=$1 addrs=() a mtu have
    [[ -f $conf && -r $conf ]] || die "cannot read $conf"
    if [[ $(stat -c %a "$conf") != [0-7]00 ]]; then
        log "warning: $conf is accessible to others (it holds a private key; make it 0600)"
    fi
    peers_require_lab
    if ! netns_exists "$CLIENT_NS" || ! peers_registered "$CLIENT_NS" || [[ ! -d $PEERS_DIR ]]; then
        die "the peers are not up (no namespace $CLIENT_NS): run \`$0 peers-up\` first"
    fi
    grep -qiE '^[[:space:]]*PrivateKey[[:space:]]*=' "$conf" || die "$conf has no [Interface] PrivateKey"
    mapfile -t addrs < <(peers_conf_values "$conf" Address)
    ((${#addrs[@]})) || die "$conf has no [Interface] Address"
    for a in "${!addrs[@]}"; do
        [[ ${addrs[a]} == */* ]] && continue
        if [[ ${addrs[a]} == *:* ]]; then addrs[a]+=/128; else addrs[a]+=/32; fi
    done
    mtu=$(peers_conf_values "$conf" MTU | tail -n1)
    mtu=${mtu:-$CLIENT_WG_MTU}
    [[ $mtu =~ ^[0-9]+$ ]] || die "$conf: MTU is not a number"

    peers_wg "$CLIENT_NS" "$CLIENT_WG_IF" "$PEERS_DIR/wgc.pid" "$PEERS_DIR/wgc.log"
    wg_pid "$PEERS_DIR/wgc.pid" wireguard-go >/dev/null || return 0
    if ! peers_wgc_current "$conf"; then
        peers_change "configure $CLIENT_WG_IF from $conf" peers_wgc_setconf "$conf"
    fi
    # addresses: exactly CONF's (link-local ones aside); new ones first (the kernel drops the
    # device's routes with its last IPv4 address)
    for a in "${addrs[@]}"; do peers_addr "$CLIENT_NS" "$CLIENT_WG_IF" "$a"; done
    while read -r have; do
        [[ -n $have ]] || continue
        printf '%s\n' "${addrs[@]}" | grep -qxF -- "$have" && continue
        peers_change "remove $have from $CLIENT_NS:$CLIENT_WG_IF" ip -n "$CLIENT_NS" addr del "$have" dev "$CLIENT_WG_IF"
    done < <(ip -n "$CLIENT_NS" -o addr show dev "$CLIENT_WG_IF" scope global | awk '{print $4}')
    if [[ " $(ip -n "$CLIENT_NS" -o link show dev "$CLIENT_WG_IF") " != *" mtu $mtu "* ]]; then
        peers_change "set the MTU of $CLIENT_WG_IF to $mtu" ip -n "$CLIENT_NS" link set dev "$CLIENT_WG_IF" mtu "$mtu"
    fi
    peers_up_link "$CLIENT_NS" "$CLIENT_WG_IF"
    # only the www's 198.18.0.0/24 goes through the tunnel; the rest (198.18.1.0/24 too) goes direct
    peers_route "$CLIENT_NS" "$CLIENT_TUNNEL_NET" - "$CLIENT_WG_IF"
}

# ---------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------

# While the lab is in use, its saved settings (what `up` wrote to $ENV_FILE) win over the
# environment, so `down` and `status` act on the lab that is there. A differing value in the
# environment is remembered in SETTINGS_CONFLICTS (up refuses, down/status warn).
SETTINGS_CONFLICTS=()
load_saved_settings() {
    local line name value
    [[ -r $ENV_FILE ]] && lab_in_use || return 0
    while IFS= read -r line; do
        [[ $line =~ ^export\ (OPDBUS_LAB_NETNS|OPDBUS_UPLINK_NS|OPDBUS_UPLINK_IF|OPDBUS_UPLINK_ADDR)=(.*)$ ]] || continue
        name=${BASH_REMATCH[1]}
        eval "value=${BASH_REMATCH[2]}" # written by write_env with printf %q
        if [[ -n ${!name+x} && ${!name} != "$value" ]]; then
            SETTINGS_CONFLICTS+=("$name=${!name} (the running lab has '$value')")
        fi
        printf -v "$name" '%s' "$value"
    done <"$ENV_FILE"
}

# foreign_vswitchd NETNS_ID [OUR_PID]: print the PID of an ovs-vswitchd in that namespace that
# is not ours; return 1 if there is none.
foreign_vswitchd() {
    local ns=$1 mine=${2:-} p
    for p in $(pgrep -x ovs-vswitchd || true); do
        [[ $p == "$mine" ]] && continue
        [[ $(readlink "/proc/$p/ns/net" 2>/dev/null) == "$ns" ]] || continue
        grep -qF -- "$LAB_DIR/" "/proc/$p/cmdline" 2>/dev/null && continue
        printf '%s\n' "$p"
        return 0
    done
    return 1
}

settings() {
    load_saved_settings
    UPLINK_NS=${OPDBUS_UPLINK_NS:-opdbus-uplink}
    UPLINK_IF=${OPDBUS_UPLINK_IF:-upl0}
    UPLINK_PEER=eth0
    UPLINK_ADDR=${OPDBUS_UPLINK_ADDR:-192.0.2.254/24}
    local busy
    if [[ -n ${OPDBUS_LAB_NETNS+x} ]]; then
        LAB_NETNS=$OPDBUS_LAB_NETNS
    elif busy=$(foreign_vswitchd "$(readlink /proc/self/ns/net)"); then
        # The default lab's fallback is opdbus-lab; another lab dir gets its own, so that two labs never
        # share (and delete) one namespace.
        if [[ $LAB_DIR == "$REPO/.lab" ]]; then
            LAB_NETNS=opdbus-lab
        else
            LAB_NETNS=opdbus-lab-$(printf '%s' "$LAB_DIR" | cksum | cut -d' ' -f1)
        fi
        LAB_NETNS_WHY="another ovs-vswitchd (pid $busy) runs in this network namespace"
    else
        LAB_NETNS=
    fi
}
LAB_NETNS_WHY=

# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------
write_env() {
    local c tmp
    tmp=$(mktemp "$LAB_DIR/.env.XXXXXX")
    {
        printf '# generated by lab/lab.sh; source me\n'
        printf 'export OPDBUS_LAB_DIR=%q\n' "$LAB_DIR"
        for c in "${COMPONENTS[@]}"; do "${c}_env"; done
        peers_env
    } >"$tmp"
    chmod 0644 "$tmp"
    mv -f -- "$tmp" "$ENV_FILE"
}

# Anything of the lab still there? (namespaces it registered, or its ovsdb-server)
lab_in_use() {
    [[ -s $NETNS_LIST ]] || pid_of "$OVS_DIR/ovsdb-server.pid" ovsdb-server >/dev/null
}

need_root() { ((EUID == 0)) || die "the lab needs root (network namespaces, veth, taps)"; }

# One lab operation at a time (parallel test workers may call up/down).
lock() {
    exec 9>"$LAB_DIR/.lock"
    flock 9
}

# Refuse (up) or warn (down, status, env) when the environment asks for other settings than
# those of the running lab.
check_conflicts() {
    local c
    ((${#SETTINGS_CONFLICTS[@]})) || return 0
    for c in "${SETTINGS_CONFLICTS[@]}"; do log "setting $c"; done
    [[ $1 == warn ]] && { log "acting on the running lab"; return 0; }
    die "the lab is up with other settings; run \`$0 down\` first"
}

cmd_up() {
    need_root
    check_conflicts refuse
    lock
    write_env
    [[ -z $LAB_NETNS_WHY ]] || log "$LAB_NETNS_WHY: the lab's host side goes into namespace $LAB_NETNS"
    local c
    for c in "${COMPONENTS[@]}"; do "${c}_up"; done
    log "up ($LAB_DIR); source $ENV_FILE"
}

cmd_down() {
    need_root
    check_conflicts warn
    lock
    peers_down
    peers_forget_secrets
    local i
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do "${COMPONENTS[i]}_down"; done
    log "down"
}

cmd_status() {
    local c rc=0
    check_conflicts warn
    printf 'lab dir: %s\n' "$LAB_DIR"
    for c in "${COMPONENTS[@]}"; do
        printf '%s:\n' "$c"
        "${c}_status" || rc=1
    done
    printf 'peers:\n'
    peers_status || rc=1
    return "$rc"
}

cmd_env() {
    check_conflicts warn
    write_env
    cat -- "$ENV_FILE"
}

# cmd_peers_up [--check]: everything goes to stderr but the result line.
cmd_peers_up() {
    need_root
    check_conflicts warn
    lock
    umask 077 # the peers' dir holds keys: its files are 0600
    peers_up >&2
    peers_result
}

cmd_peers_client() {
    need_root
    check_conflicts warn
    lock
    umask 077
    peers_client "$1" >&2
    peers_result
}

cmd_peers_down() {
    need_root
    check_conflicts warn
    lock
    peers_down
}

usage() {
    echo "usage: $0 {up|down|status|env|peers-up [--check]|peers-client CONF [--check]|peers-down}" >&2
    exit 2
}

(($# >= 1)) || usage
settings
case $1 in
up | down | status | env | peers-down)
    (($# == 1)) || usage
    case $1 in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    peers-down) cmd_peers_down ;;
    esac
    ;;
peers-up)
    case $# in
    1) ;;
    2) if [[ $2 == --check ]]; then PEERS_CHECK=1; else usage; fi ;;
    *) usage ;;
    esac
    cmd_peers_up
    ;;
peers-client)
    case $# in
    2) if [[ $2 == --check ]]; then usage; fi ;;
    3) if [[ $3 == --check ]]; then PEERS_CHECK=1; else usage; fi ;;
    *) usage ;;
    esac
    cmd_peers_client "$2"
    ;;
*) usage ;;
esac
