#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: privacy_router
short_description: The op-dbus privacy chain (WireGuard gateway, XRay client, WARP tunnel) on one OVS bridge, fail-closed
version_added: 0.2.0
description:
  - Plans, converges, checks and reports the privacy chain of the op-dbus design - a WireGuard gateway (CT100), a WARP
    tunnel (CT101) and an XRay client (CT102), each an LXC container on its own privacy socket (an OVS internal port) of
    one Open vSwitch bridge.
  - "On the wire: client -(WireGuard)-> CT100 -> CT102 (XRay, to the VPS) -> CT101 (WARP tunnel) -> uplink. The VPS is
    the exit: a server on the internet sees the VPS's address. The uplink only carries the clients' WireGuard and the
    WARP tunnel."
  - "Fail-closed twice: the bridge's flows let each hop start connections only to the next hop, and only what that hop
    exists to send (the XRay hop only its connection to the VPS, the WARP hop only its tunnel to the endpoint); inside the
    containers the gateway routes clients only towards the XRay hop (a blackhole behind it), the XRay hop never forwards,
    and the WARP hop's only default route is its tunnel (a blackhole when it is gone)."
  - "Converges in this order, each step only when something differs: keys (made on the host, 0600), the hops' ports
    (OVSDB), the flows (one OpenFlow bundle, before any hop runs), the containers (liblxc), the packages the hops need
    (the containers' own apt), the hops' files and units, the services (systemd in each container over its private
    socket). After a change it waits until the chain is healthy. When a step fails or the chain does not come up, every
    step taken is undone in reverse order (files restored and services restarted on them, new containers destroyed, flows
    and ports put back) and the task fails saying so."
  - Secrets (private keys, the VPS id) never appear in the result, the diff or the log; files holding them are 0600.
author:
  - opdbus.infra maintainers (@opdbus)
extends_documentation_fragment:
  - opdbus.infra.attributes
attributes:
  check_mode:
    support: full
    details: Reports every step a real run would take; generates no key and writes nothing.
  diff_mode:
    support: full
    details: Ports, flows, containers and every file the chain owns; files holding secrets are shown with placeholders.
  platform:
    support: full
    platforms: posix
requirements:
  - python3-lxc (in the system Python, found by respawning), dbus-python, cryptography
  - Open vSwitch with the bridge and its uplink port (role opdbus.infra.ovs_network)
options:
  state:
    description: V(present) builds and keeps the chain; V(absent) destroys the hops' containers and removes the chain's flows and ports (keys stay).
    type: str
    choices: [present, absent]
    default: present
  bridge:
    description: The Open vSwitch bridge (it must exist with the uplink port on it).
    type: str
    default: ovs-br0
  uplink_gateway:
    description: The router reached through the uplink port; the hops' addresses are in its network.
    type: str
    required: true
  key_dir:
    description: Host directory (0700) for the keys made here and the clients' wg-quick files (0600).
    type: path
    default: /etc/opdbus/privacy
  wireguard:
    description: The WireGuard gateway (CT100).
    type: dict
    suboptions:
      listen_port:
        description: UDP port clients connect to.
        type: int
        default: 51820
      address:
        description: The gateway's address in the tunnel, with the prefix of the clients' pool.
        type: str
        default: 10.200.0.1/24
      interface:
        description: The WireGuard interface inside the container.
        type: str
        default: wg0
      mtu:
        description: MTU of the clients' tunnel.
        type: int
        default: 1380
      public_endpoint:
        description: IPv4:PORT the clients dial (written into their configurations). Default - the container's address and O(wireguard.listen_port).
        type: str
      clients:
        description:
          - The clients. Without O(wireguard.clients[].public_key) a key pair is made on the host and the client's
            wg-quick file written to O(key_dir)C(/clients/NAME.conf) (0600).
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: The client's name (its file name).
            type: str
            required: true
          address:
            description: The client's address in the pool.
            type: str
            required: true
          public_key:
            description: The client's own public key (then no key is made for it).
            type: str
  warp:
    description: The WARP tunnel (CT101), a WireGuard tunnel to a WARP endpoint.
    type: dict
    suboptions:
      endpoint:
        description: The endpoint, IPv4:PORT.
        type: str
        required: true
      public_key:
        description: The endpoint's public key.
        type: str
      public_key_file:
        description: A host file holding the endpoint's public key.
        type: path
      private_key:
        description: The tunnel's private key (as registered with WARP). Without it or O(warp.private_key_file) one is made in O(key_dir).
        type: str
      private_key_file:
        description: A host file holding the tunnel's private key.
        type: path
      address:
        description: The address WARP assigned to the tunnel, with prefix.
        type: str
        default: 172.16.0.2/32
      interface:
        description: The WireGuard interface inside the container.
        type: str
        default: wgwarp
      mtu:
        description: MTU of the tunnel.
        type: int
        default: 1280
      keepalive:
        description: Persistent keepalive in seconds (0 = off); it also makes the first handshake happen at once.
        type: int
        default: 25
  xray:
    description: The XRay client (CT102). One configuration that both xray and v2ray (v4 JSON) accept.
    type: dict
    default: {}
    suboptions:
      protocol:
        description: The protocol to the VPS.
        type: str
        choices: [vless, vmess]
        default: vless
      transport:
        description: V(tcp) or WebSocket (V(ws)).
        type: str
        choices: [tcp, ws]
        default: tcp
      security:
        description: V(tls) wraps the transport in TLS.
        type: str
        choices: [none, tls]
        default: none
      ws_path:
        description: The WebSocket path.
        type: str
        default: /
      server_name:
        description: The TLS server name (needed with O(xray.security=tls)).
        type: str
      allow_insecure:
        description: Accept a certificate that does not verify (TLS).
        type: bool
        default: false
      local_port:
        description: The port of the transparent inbound the clients' TCP is redirected to.
        type: int
        default: 12345
      binary:
        description: The xray or v2ray binary inside the container (Debian ships v2ray).
        type: str
        default: /usr/bin/v2ray
  vps:
    description: The VPS, the chain's exit.
    type: dict
    suboptions:
      address:
        description: Its IPv4 address.
        type: str
        required: true
      port:
        description: Its VLESS/VMess port.
        type: int
        default: 443
      id:
        description: The client id (a UUID).
        type: str
      id_file:
        description: A host file holding the client id.
        type: path
  socket_networking:
    description: The privacy sockets and the uplink.
    type: dict
    suboptions:
      wireguard_port:
        description: The gateway's port.
        type: str
        default: priv_wg
      warp_port:
        description: The WARP hop's port.
        type: str
        default: priv_warp
      xray_port:
        description: The XRay hop's port.
        type: str
        default: priv_xray
      uplink_port:
        description: The bridge's port towards the internet (the NIC).
        type: str
        required: true
      ofports:
        description: OpenFlow port numbers of the hops' ports, keys V(wireguard), V(warp), V(xray) (defaults 10, 11, 12).
        type: dict
      vlan:
        description: The access VLAN of the hops' ports; the NORMAL action never delivers to them.
        type: int
        default: 4000
  openflow:
    description: The chain's flows.
    type: dict
    default: {}
    suboptions:
      security_level:
        description:
          - V(1) - the chain's security flows (one direction per hop, conntrack, meters on new connections).
          - V(2) - also TTL normalisation of everything the chain sends to the uplink.
          - V(3) (padding, timing, traffic morphing) is refused - Open vSwitch cannot do it; the message says why.
        type: int
        default: 1
      ttl:
        description: The TTL of level 2.
        type: int
        default: 64
      padding:
        description: Refused (OVS cannot pad packets); only here to say so.
        type: bool
        default: false
      timing:
        description: Refused (OVS cannot delay packets); only here to say so.
        type: bool
        default: false
      morphing:
        description: Refused (OVS cannot reshape traffic); only here to say so.
        type: bool
        default: false
      cookie:
        description: The cookie of the chain's flows; the module owns exactly the flows with it.
        type: raw
        default: 0x0d0b0008
      zone:
        description: The conntrack zone.
        type: int
        default: 8
      new_conn_rate:
        description: New connections per second each hop may start (a meter per hop).
        type: int
        default: 200
      new_conn_burst:
        description: Burst of the meters.
        type: int
        default: 50
      meter_base:
        description: The first of the three meter ids.
        type: int
        default: 8
  netmaker:
    description: An optional mesh port on the bridge (NORMAL forwarding, not part of the chain).
    type: dict
    default: {}
    suboptions:
      enabled:
        description: Add the port.
        type: bool
        default: false
      port:
        description: Its name.
        type: str
        default: nm0
      ofport:
        description: Its OpenFlow port number.
        type: int
        default: 13
  containers:
    description: The hops' containers.
    type: dict
    suboptions:
      backend:
        description: Only V(lxc) (local liblxc); see the notes for Proxmox VE.
        type: str
        choices: [lxc]
        default: lxc
      lxcpath:
        description: The liblxc container directory. Default E(OPDBUS_LXC_PATH), else C(/var/lib/lxc).
        type: path
      template:
        description: What new containers are made from (see M(opdbus.infra.lxc_container)).
        type: str
        default: debian
      wireguard:
        description:
          - CT100 - C(name) (default C(ct100)), C(id), C(hostname), C(address) (required, with prefix, in the uplink's
            network), C(cores), C(memory_mb).
        type: dict
        required: true
      warp:
        description: CT101, as O(containers.wireguard) (default name C(ct101)).
        type: dict
        required: true
      xray:
        description: CT102, as O(containers.wireguard) (default name C(ct102)).
        type: dict
        required: true
  rollback:
    description: Undo every step taken when one fails or the chain does not come up.
    type: bool
    default: true
  wait_healthy:
    description: Seconds to wait after a change for every hop to be healthy (0 = do not wait).
    type: int
    default: 90
  timeout:
    description: Seconds for each container operation and each service start.
    type: int
    default: 300
  ovsdb:
    description: The OVSDB endpoint. Default E(OPDBUS_OVSDB), else C(unix:/run/openvswitch/db.sock).
    type: str
  rundir:
    description: Where Open vSwitch keeps C(<bridge>.mgmt). Default E(OVS_RUNDIR), else the system's run directory.
    type: path
notes:
  - "Tested for real: the lab's Open vSwitch (userspace datapath), three Debian bookworm LXC containers with systemd,
    wireguard-go, Debian's v2ray, a WARP endpoint, a VPS (v2ray server) and an HTTP server in network namespaces;
    the end-to-end and leak tests stop each hop in turn (see docs/privacy_router.md)."
  - "Proxmox VE: the module drives local liblxc containers (it writes into their root filesystems and speaks to their
    systemd). On a Proxmox VE node, see docs/privacy_router.md for running the chain there."
  - On rollback, packages the module installed in the containers stay; keys and clients' files the failed run made are removed.
  - The clients' TCP is carried (a transparent inbound of the XRay client); their UDP and ICMP beyond the gateway are dropped,
    never sent another way.
seealso:
  - module: opdbus.infra.lxc_container
  - module: opdbus.infra.openflow_flow
  - module: opdbus.infra.ovs_bridge
"""

EXAMPLES = r"""
- name: The privacy chain on ovs-br0
  opdbus.infra.privacy_router:
    bridge: ovs-br0
    uplink_gateway: 192.0.2.254
    wireguard:
      clients:
        - {name: laptop, address: 10.200.0.2}
    warp:
      endpoint: 162.159.192.1:2408
      public_key: bmXOC+F1FxEMF9dyiK2H5/1SUtzH0JuVo51h2wPfgyo=
      private_key_file: /etc/opdbus/warp-account.key
    xray: {protocol: vless, transport: ws, security: tls, server_name: vps.example.net, ws_path: /opdbus}
    vps: {address: 203.0.113.10, port: 443, id_file: /etc/opdbus/vps.uuid}
    socket_networking: {uplink_port: eno1}
    openflow: {security_level: 2}
    containers:
      wireguard: {address: 192.0.2.10/24}
      warp: {address: 192.0.2.11/24}
      xray: {address: 192.0.2.12/24}

- name: Tear it down (keys stay in /etc/opdbus/privacy)
  opdbus.infra.privacy_router:
    state: absent
    uplink_gateway: 192.0.2.254
    socket_networking: {uplink_port: eno1}
    containers:
      wireguard: {address: 192.0.2.10/24}
      warp: {address: 192.0.2.11/24}
      xray: {address: 192.0.2.12/24}
"""

RETURN = r"""
changes:
  description: What was done (or, in check mode, would be), in order; never secrets.
  returned: always
  type: list
  elements: str
chain:
  description: The health of each hop (V(wireguard), V(warp), V(xray)) - container, its state, the unit, whether it is active, healthy and why not.
  returned: when the containers exist
  type: dict
  sample: {"warp": {"container": "ct101", "role": "WARP tunnel", "state": "running", "unit": "opdbus-privacy-warp.service",
           "active": "active", "healthy": true, "detail": "tunnel up, last handshake 3s ago"}}
client_configs:
  description: The wg-quick files written for the clients, by client name.
  returned: success
  type: dict
public_keys:
  description: The public keys of the gateway, the WARP hop and the clients.
  returned: success
  type: dict
rolled_back:
  description: On failure, whether the steps taken were undone.
  returned: failure
  type: bool
rollback_errors:
  description: On failure, the undo steps that failed themselves (empty when the rollback was complete).
  returned: failure
  type: list
  elements: str
"""

import copy

from ansible.module_utils.basic import AnsibleModule, env_fallback

HOP_SPEC = dict(type="dict", required=True)
# The options written (secrets left out) to key_dir/config.json for opdbus.infra.system_state.
RECORDED = ("bridge", "uplink_gateway", "key_dir", "wireguard", "warp", "xray", "vps", "socket_networking", "openflow",
            "netmaker", "containers", "rollback", "wait_healthy", "timeout")


def argument_spec():
    return dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        bridge=dict(type="str", default="ovs-br0"),
        uplink_gateway=dict(type="str", required=True),
        key_dir=dict(type="path", default="/etc/opdbus/privacy"),
        wireguard=dict(type="dict", options=dict(
            listen_port=dict(type="int", default=51820),
            address=dict(type="str", default="10.200.0.1/24"),
            interface=dict(type="str", default="wg0"),
            mtu=dict(type="int", default=1380),
            public_endpoint=dict(type="str"),
            clients=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                address=dict(type="str", required=True),
                public_key=dict(type="str"),
            )),
        )),
        warp=dict(type="dict", options=dict(
            endpoint=dict(type="str", required=True),
            public_key=dict(type="str"),
            public_key_file=dict(type="path"),
            private_key=dict(type="str", no_log=True),
            private_key_file=dict(type="path"),
            address=dict(type="str", default="172.16.0.2/32"),
            interface=dict(type="str", default="wgwarp"),
            mtu=dict(type="int", default=1280),
            keepalive=dict(type="int", default=25),
        )),
        xray=dict(type="dict", default={}, options=dict(
            protocol=dict(type="str", choices=["vless", "vmess"], default="vless"),
            transport=dict(type="str", choices=["tcp", "ws"], default="tcp"),
            security=dict(type="str", choices=["none", "tls"], default="none"),
            ws_path=dict(type="str", default="/"),
            server_name=dict(type="str"),
            allow_insecure=dict(type="bool", default=False),
            local_port=dict(type="int", default=12345),
            binary=dict(type="str", default="/usr/bin/v2ray"),
        )),
        vps=dict(type="dict", options=dict(
            address=dict(type="str", required=True),
            port=dict(type="int", default=443),
            id=dict(type="str", no_log=True),
            id_file=dict(type="path"),
        )),
        socket_networking=dict(type="dict", options=dict(
            wireguard_port=dict(type="str", default="priv_wg"),
            warp_port=dict(type="str", default="priv_warp"),
            xray_port=dict(type="str", default="priv_xray"),
            uplink_port=dict(type="str", required=True),
            ofports=dict(type="dict"),
            vlan=dict(type="int", default=4000),
        )),
        openflow=dict(type="dict", default={}, options=dict(
            security_level=dict(type="int", default=1),
            ttl=dict(type="int", default=64),
            padding=dict(type="bool", default=False),
            timing=dict(type="bool", default=False),
            morphing=dict(type="bool", default=False),
            cookie=dict(type="raw", default=0x0D0B0008),
            zone=dict(type="int", default=8),
            new_conn_rate=dict(type="int", default=200),
            new_conn_burst=dict(type="int", default=50),
            meter_base=dict(type="int", default=8),
        )),
        netmaker=dict(type="dict", default={}, options=dict(
            enabled=dict(type="bool", default=False),
            port=dict(type="str", default="nm0"),
            ofport=dict(type="int", default=13),
        )),
        containers=dict(type="dict", options=dict(
            backend=dict(type="str", choices=["lxc"], default="lxc"),
            lxcpath=dict(type="path", fallback=(env_fallback, ["OPDBUS_LXC_PATH"])),
            template=dict(type="str", default="debian"),
            wireguard=copy.deepcopy(HOP_SPEC),
            warp=copy.deepcopy(HOP_SPEC),
            xray=copy.deepcopy(HOP_SPEC),
        )),
        rollback=dict(type="bool", default=True),
        wait_healthy=dict(type="int", default=90),
        timeout=dict(type="int", default=300),
        ovsdb=dict(type="str", fallback=(env_fallback, ["OPDBUS_OVSDB"])),
        rundir=dict(type="path", fallback=(env_fallback, ["OVS_RUNDIR"])),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "present", ("warp", "vps", "socket_networking", "containers"), False),
                     ("state", "absent", ("socket_networking", "containers"), False)],
        supports_check_mode=True,
    )
    from ansible_collections.opdbus.infra.plugins.module_utils.privacy.config import ConfigError, normalize
    params = module.params
    try:
        cfg = normalize(dict(params, wireguard=params["wireguard"] or {}))
    except ConfigError as exc:
        module.fail_json(msg="invalid input: %s" % exc)
    if params["timeout"] < 1 or params["wait_healthy"] < 0:
        module.fail_json(msg="invalid input: timeout must be at least 1 and wait_healthy at least 0")

    # python3-lxc and dbus-python live in the system Python: respawn there before anything is read.
    from ansible_collections.opdbus.infra.plugins.module_utils.lxc.liblxc import LiblxcBackend, import_lxc
    lxc_module = import_lxc(module)
    from ansible_collections.opdbus.infra.plugins.module_utils.dbus import import_dbus
    import_dbus(module)
    from ansible_collections.opdbus.infra.plugins.module_utils.privacy.chain import Chain, ChainError
    from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import LxcError
    from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import DEFAULT_ENDPOINT, OvsdbError
    from ansible_collections.opdbus.infra.plugins.module_utils.openflow.errors import OpenFlowError
    from ansible_collections.opdbus.infra.plugins.module_utils.openflow.reconcile import FlowInputError
    from ansible_collections.opdbus.infra.plugins.module_utils.privacy.files import FileError
    from ansible_collections.opdbus.infra.plugins.module_utils.dbus import DBusError
    from ansible_collections.opdbus.infra.plugins.module_utils.wireguard import WireGuardError

    backend = LiblxcBackend(cfg["containers"]["lxcpath"] or "/var/lib/lxc", lxc_module=lxc_module)
    record = None
    if cfg["state"] == "present":
        # The options as given, for opdbus.infra.system_state (the role's variables); secrets left out.
        record = dict((key, copy.deepcopy(params[key])) for key in RECORDED)
        if record["warp"].get("private_key") is not None:
            record["warp"]["private_key"] = None
        if record["vps"].get("id") is not None:
            record["vps"]["id"] = None
    chain = Chain(cfg, backend, params["ovsdb"] or DEFAULT_ENDPOINT, rundir=params["rundir"], timeout=params["timeout"],
                  check=module.check_mode, wait_healthy=params["wait_healthy"], rollback=params["rollback"],
                  warn=module.warn, record=record)
    try:
        chain.run()
    except ChainError as exc:
        module.fail_json(msg=str(exc), changes=chain.changes, rolled_back=exc.rolled_back,
                         rollback_errors=exc.rollback_errors, chain=chain.health)
    except (LxcError, OvsdbError, OpenFlowError, FlowInputError, FileError, DBusError, WireGuardError, OSError) as exc:
        module.fail_json(msg="%s: %s" % (type(exc).__name__, exc), changes=chain.changes, rolled_back=False)
    result = {"changed": bool(chain.changes), "changes": chain.changes, "chain": chain.health}
    if cfg["state"] == "present":
        result["client_configs"] = chain.client_files
        result["public_keys"] = {"gateway": chain.keys["gateway_public"], "warp": chain.keys["warp_public"],
                                 "clients": dict((n, k["public"]) for n, k in chain.keys["clients"].items())}
        if chain.health:
            bad = [h["container"] for h in chain.health.values() if not h["healthy"]]
            if bad:
                module.warn("the chain is not healthy: %s" % "; ".join(
                    "%s (%s): %s" % (h["container"], h["role"], h["detail"]) for h in chain.health.values() if not h["healthy"]))
    if module._diff:
        result["diff"] = {"before": chain.diff_before, "after": chain.diff_after,
                          "before_header": "privacy chain on %s" % cfg["bridge"],
                          "after_header": "privacy chain on %s" % cfg["bridge"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
