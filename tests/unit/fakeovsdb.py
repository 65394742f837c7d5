"""Build OVSDB snapshots in wire format for planner tests."""
import itertools
import uuid as _uuid

from ansible_collections.opdbus.infra.plugins.module_utils.ovs.bridge import Snapshot
from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import encode, Uuid

_counter = itertools.count(1)


def uid():
    return str(_uuid.UUID(int=next(_counter)))


class FakeSwitch(object):
    """An in-memory Open_vSwitch database, enough for the planner."""

    def __init__(self):
        self.ovs = {"_uuid": uid(), "bridges": [], "next_cfg": 1, "cur_cfg": 1}
        self.bridges, self.ports, self.ifaces, self.controllers = [], [], [], []

    def add_bridge(self, name, ports=(), **cols):
        row = {"_uuid": uid(), "name": name, "ports": [], "datapath_type": cols.pop("datapath_type", "netdev"),
               "fail_mode": [], "protocols": [], "stp_enable": False, "rstp_enable": False, "controller": [],
               "other_config": {}, "external_ids": {}}
        row.update(cols)
        self.bridges.append(row)
        self.ovs["bridges"].append(Uuid(row["_uuid"]))
        self.add_port(name, name, type="internal")
        for p in ports:
            self.add_port(name, p)
        return row

    def add_port(self, bridge, name, type="", tag=None, trunks=(), vlan_mode=None, fake_bridge=False,
                 external_ids=None, iface_external_ids=None, options=None, ofport_request=None):
        iface = {"_uuid": uid(), "name": name, "type": type, "options": options or {},
                 "ofport": 1, "ofport_request": [] if ofport_request is None else ofport_request,
                 "external_ids": iface_external_ids or {}, "link_state": "up", "admin_state": "up",
                 "mac_in_use": "00:00:00:00:00:01", "error": []}
        port = {"_uuid": uid(), "name": name, "interfaces": [Uuid(iface["_uuid"])],
                "tag": [] if tag is None else tag, "trunks": list(trunks),
                "vlan_mode": [] if vlan_mode is None else vlan_mode, "external_ids": external_ids or {},
                "fake_bridge": fake_bridge}
        self.ifaces.append(iface)
        self.ports.append(port)
        br = [b for b in self.bridges if b["name"] == bridge][0]
        br["ports"].append(Uuid(port["_uuid"]))
        return port

    def snapshot(self):
        def wire(rows):
            out = []
            for r in rows:
                w = {}
                for k, v in r.items():
                    if k == "_uuid":
                        w[k] = ["uuid", v]
                    else:
                        w[k] = encode(v)
                out.append(w)
            return {"rows": out}
        return Snapshot([wire([self.ovs]), wire(self.bridges), wire(self.ports), wire(self.ifaces),
                         wire(self.controllers)])
