# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulator's schema subset and its PVE::JSONSchema-like verification."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

import pytest

from ansible_collections.opdbus.infra.tests.proxmox_sim import extract_schema
from ansible_collections.opdbus.infra.tests.proxmox_sim.schema import (
    FORMATS, INDEXED, NOT_DEFINED, UNCHECKED_FORMATS, ApiSchema, check_named_format, lookup, parse_property_string,
    print_property_string, FormatError)

CONFIG = "/nodes/{node}/lxc/{vmid}/config"


@pytest.fixture(scope="module")
def schema():
    return ApiSchema()


@pytest.mark.skipif(not os.path.exists(extract_schema.DEFAULT_SOURCE), reason="../shared/data/pve-api-9.1.3-lxc.json not present")
def test_committed_subset_is_a_fresh_extraction():
    with open(extract_schema.DEFAULT_SOURCE) as handle:
        fresh = extract_schema.dumps(extract_schema.extract(json.load(handle)))
    with open(extract_schema.DEFAULT_OUTPUT) as handle:
        assert handle.read() == fresh


def test_subset_serves_every_handled_method(schema):
    from ansible_collections.opdbus.infra.tests.proxmox_sim.api import HANDLERS
    served = set((path, method) for path, methods in extract_schema.SERVED.items() for method in methods)
    assert set(HANDLERS) | {("/access/ticket", "POST")} == served
    for path, method in served:
        assert schema.method(path, method)["parameters"]["additionalProperties"] == 0


def test_mount_point_range_agrees_with_resize_enum(schema):
    disks = schema.properties("/nodes/{node}/lxc/{vmid}/resize", "PUT")["disk"]["enum"]
    assert disks == ["rootfs"] + ["mp%d" % i for i in range(INDEXED["mp"])]


def _formats(node, found):
    if isinstance(node, dict):
        fmt = node.get("format")
        if isinstance(fmt, str):
            found.add(fmt)
        for value in node.values():
            _formats(value, found)
    elif isinstance(node, list):
        for value in node:
            _formats(value, found)


def test_every_named_parameter_format_is_known(schema):
    found = set()
    for methods in schema.paths.values():
        for entry in methods.values():
            _formats(entry["parameters"], found)
    for name in sorted(found):
        base = re.sub(r"-a?list\Z", "", name)
        assert name in FORMATS or base in FORMATS or name in UNCHECKED_FORMATS, name


def test_indexed_lookup(schema):
    props = schema.properties(CONFIG, "PUT")
    assert lookup(props, "net0") is props["net[n]"]
    assert lookup(props, "net31") is props["net[n]"]
    assert lookup(props, "net32") is None
    assert lookup(props, "net01") is None
    assert lookup(props, "mp255") is props["mp[n]"]
    assert lookup(props, "mp256") is None
    assert lookup(props, "net[n]") is None


@pytest.mark.parametrize("params, path, message", [
    ({"bogus": "1"}, "bogus", NOT_DEFINED),
    ({"net32": "name=eth0"}, "net32", NOT_DEFINED),
    ({"onboot": "true"}, "onboot", "type check ('boolean') failed - got 'true'"),
    ({"cores": "1.5"}, "cores", "type check ('integer') failed - got '1.5'"),
    ({"cpulimit": "fast"}, "cpulimit", "type check ('number') failed - got 'fast'"),
    ({"cores": "0"}, "cores", "value must have a minimum value of 1"),
    ({"tty": "7"}, "tty", "value must have a maximum value of 6"),
    ({"hostname": "a" * 256}, "hostname", "value may only be 255 characters long"),
    ({"hostname": "bad_name"}, "hostname", "invalid format - value does not look like a valid DNS name"),
    ({"arch": "sparc"}, "arch", "value 'sparc' does not have a value in the enumeration 'amd64, i386, arm64, armhf, riscv32, riscv64'"),
    ({"delete": "memory,9bad"}, "delete", "invalid format - invalid configuration ID '9bad'"),
    ({"features": "nesting=1,bogus=1"}, "features",
     "invalid format - format error\nfeatures.bogus: property is not defined in schema and the schema does not allow additional properties\n"),
    ({"features": "mount=nfs/x"}, "features", "invalid format - format error\nfeatures.mount: value does not match the regex pattern\n"),
    ({"net0": "bridge=vmbr0"}, "net0", "invalid format - format error\nnet0.name: property is missing and it is not optional\n"),
    ({"net0": "name=eth0,ip=10.0.0.1"}, "net0",
     "invalid format - format error\nnet0.ip: invalid format - value does not look like a valid ipv4 network configuration\n"),
    ({"net0": "name=eth0,hwaddr=01:00:00:00:00:01"}, "net0",
     "invalid format - format error\nnet0.hwaddr: invalid format - value does not look like a valid unicast MAC address\n"),
    ({"net0": "name=eth0,tag=4095"}, "net0", "invalid format - format error\nnet0.tag: value must have a maximum value of 4094\n"),
    ({"net0": "name=eth0,type=macvlan"}, "net0",
     "invalid format - format error\nnet0.type: value 'macvlan' does not have a value in the enumeration 'veth'\n"),
    ({"net0": "name=eth0,name=eth1"}, "net0", "invalid format - duplicate key in comma-separated list property: name"),
    ({"rootfs": "local-lvm:8,size=huge"}, "rootfs", "invalid format - format error\nrootfs.size: invalid format - unable to parse size 'huge'\n"),
    ({"mp0": "local-lvm:4"}, "mp0", "invalid format - format error\nmp0.mp: property is missing and it is not optional\n"),
    ({"mp0": "local-lvm:4,mp=/srv/../etc"}, "mp0",
     "invalid format - format error\nmp0.mp: invalid format - /srv/../etc contains illegal character sequences\n"),
    ({"dev0": "/tmp/x"}, "dev0", "invalid format - format error\ndev0.path: invalid format - /tmp/x is not a valid device path\n"),
    ({"digest": "x" * 41}, "digest", "value may only be 40 characters long"),
    ({"tags": "ok;no way"}, "tags", None),
])
def test_config_put_verification(schema, params, path, message):
    params = dict(params, node="pve1", vmid="100")
    typed, errors = schema.verify(CONFIG, "PUT", params)
    if message is None:
        assert path not in errors
    else:
        assert errors == {path: message}
        assert path not in typed


def test_path_parameters_and_required(schema):
    typed, errors = schema.verify("/nodes/{node}/lxc", "POST", {"node": "pve_1", "vmid": "99"})
    assert errors == {"node": "invalid format - value does not look like a valid node name",
                      "vmid": "value must have a minimum value of 100",
                      "ostemplate": "property is missing and it is not optional"}
    typed, errors = schema.verify("/nodes/{node}/lxc", "POST", {"node": "pve1", "vmid": "1000000000", "ostemplate": "x"})
    assert errors == {"vmid": "value must have a maximum value of 999999999"}
    typed, errors = schema.verify("/nodes/{node}/lxc", "POST", {"node": "pve1", "vmid": "100", "ostemplate": "x", "unique": "1"})
    assert errors == {"restore": "missing property - 'unique' requires this property"}
    typed, errors = schema.verify("/nodes/{node}/lxc", "POST", {"node": "pve1", "vmid": "100", "ostemplate": "x", "password": "abc"})
    assert errors == {"password": "value must be at least 5 characters long"}


def test_typed_values(schema):
    typed, errors = schema.verify(CONFIG, "PUT", {"node": "pve1", "vmid": "100", "cores": "2", "onboot": "1", "cpulimit": "1.5",
                                                  "net0": "name=eth0,bridge=vmbr0,firewall=yes,ip=dhcp,mtu=1450"})
    assert errors == {}
    assert typed["vmid"] == 100 and typed["cores"] == 2 and typed["onboot"] == 1 and typed["cpulimit"] == 1.5
    assert typed["net0"] == {"name": "eth0", "bridge": "vmbr0", "firewall": 1, "ip": "dhcp", "mtu": 1450}


def test_property_string_round_trip(schema):
    fmt = schema.properties(CONFIG, "PUT")["mp[n]"]["format"]
    data = parse_property_string(fmt, "mp=/srv,local-lvm:vm-100-disk-1,backup=1,size=8G", "mp0")
    assert data == {"volume": "local-lvm:vm-100-disk-1", "mp": "/srv", "backup": 1, "size": "8G"}
    assert print_property_string(fmt, data) == "local-lvm:vm-100-disk-1,mp=/srv,backup=1,size=8G"
    net = schema.properties(CONFIG, "PUT")["net[n]"]["format"]
    text = "name=eth0,bridge=vmbr0,firewall=1,hwaddr=BC:24:11:00:00:01,ip=dhcp,type=veth"
    assert print_property_string(net, parse_property_string(net, text, "net0")) == text
    with pytest.raises(FormatError, match="does not define a default key"):
        parse_property_string(net, "eth0", "net0")


def test_named_formats():
    check_named_format("pve-configid-list", "memory, net0;mp3")
    check_named_format("pve-ipv6-config", "auto")
    check_named_format("pve-ipv6-config", "2001:db8::5/64")
    check_named_format("lxc-ip-with-ll-iface-list", "10.0.0.1 fe80::1%eth0")
    with pytest.raises(FormatError):
        check_named_format("pve-ipv6-config", "10.0.0.5/24")
    with pytest.raises(FormatError, match="unable to find format"):
        check_named_format("no-such-format", "x")
    with pytest.raises(FormatError, match="unable to parse volume ID"):
        check_named_format("pve-volume-id", "no-colon")
