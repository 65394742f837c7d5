# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxmox backend of lxc_container against the Proxmox VE API simulator, through proxmoxer."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time

import pytest
import yaml

from ansible_collections.opdbus.infra.plugins.doc_fragments.proxmox import ModuleDocFragment
from ansible_collections.opdbus.infra.plugins.module_utils.lxc import proxmox as proxmox_mod
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import (LxcError, NotFound, Timeout, ValidationError,
                                                                            normalise_spec, spec_changes)
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.proxmox import CONNECTION_SPEC, ProxmoxBackend
from ansible_collections.opdbus.infra.tests.proxmox_sim import ProxmoxSimulator

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
TOKEN = "root@pam!ansible"
SECRET = "0b7f6c6e-3d1a-4c52-9a57-5d8f2f0e6a11"


@pytest.fixture
def sim():
    simulator = ProxmoxSimulator(nodes=("pve1", "pve2"), task_duration=0.05,
                                 users={"root@pam": "pve-root-password"},
                                 tokens={TOKEN: SECRET, "audit@pve!ro": {"secret": "11111111-2222-3333-4444-555555555555", "readonly": True}})
    simulator.start()
    yield simulator
    simulator.stop()


def make_backend(sim, **options):
    settings = dict(api_host=sim.host, node="pve1", api_port=sim.port, api_token_id=TOKEN, api_token_secret=SECRET,
                    validate_certs=False, timeout=5)
    settings.update(options)
    return ProxmoxBackend(**settings)


@pytest.fixture
def backend(sim):
    return make_backend(sim)


@pytest.fixture
def ct100(sim):
    """A stopped CT 100: two NICs, a mount, features nesting and an unmanaged mount feature."""
    return sim.cluster.add_container(100, hostname="web1", cores=1, features="nesting=1,mount=nfs",
                                     net0="name=eth0,bridge=vmbr0,ip=10.1.0.5/24,gw=10.1.0.1",
                                     net1="name=eth1,bridge=vmbr1,ip=dhcp", mp0="/srv/data,mp=/data")


def spec(**values):
    return normalise_spec(values)


def put_params(sim):
    params = dict(sim.requests_to("PUT", "*/config")[-1].params)
    assert len(params.pop("digest")) == 40
    return params


SPECS = [
    {"id": 200, "template": TEMPLATE, "name": "minimal"},
    {"id": 201, "template": TEMPLATE, "hostname": "web1.example.org", "cores": 2, "memory_mb": 1024, "swap_mb": 0, "rootfs_gb": 8,
     "onboot": True, "unprivileged": True, "features": {"nesting": True, "keyctl": True, "fuse": True, "tun": True},
     "network": [{"name": "eth0", "bridge": "ovs-br0", "address": "192.0.2.10/24", "gateway": "192.0.2.1"},
                 {"name": "eth1", "bridge": "vmbr1", "address": "dhcp"},
                 {"name": "mgmt", "bridge": "vmbr2", "address": "manual", "hwaddr": "02:00:00:00:00:01"}],
     "mounts": [{"source": "/srv/data", "target": "/data/", "readonly": True},
                {"source": "local-lvm:vm-201-disk-7", "target": "/var/lib/db"}]},
    {"id": 202, "template": "local:vztmpl/alpine-3.20-default_20240908_amd64.tar.xz", "name": "six", "onboot": False,
     "unprivileged": False, "features": {"tun": True},
     "network": [{"name": "eth0", "bridge": "vmbr0", "address": "2001:db8::10/64", "gateway": "2001:db8::1"}], "mounts": []},
    {"id": 203, "template": TEMPLATE, "name": "nonet", "network": [], "features": {}, "rootfs_gb": 2, "memory_mb": 64},
]


@pytest.mark.parametrize("values", SPECS, ids=[str(item["id"]) for item in SPECS])
def test_create_read_round_trip(sim, backend, values):
    desired = spec(**values)
    assert backend.create(desired, timeout=10) == values["id"]
    assert backend.state(values["id"]) == "stopped"
    current = backend.read(values["id"])
    assert spec_changes(current, desired) == {}
    assert current["id"] == values["id"]
    post = sim.requests_to("POST", "/nodes/pve1/lxc")[-1].params
    assert post["ostemplate"] == values["template"]
    for value in post.values():
        assert value not in ("True", "False")
    if values.get("rootfs_gb"):
        assert post["rootfs"] == "local-lvm:%d" % values["rootfs_gb"]
    else:
        assert post["storage"] == "local-lvm" and "rootfs" not in post


def test_create_mapping_as_sent(sim, backend):
    backend.create(spec(**SPECS[1]), timeout=10)
    post = sim.requests_to("POST", "/nodes/pve1/lxc")[-1].params
    assert post["features"] == "nesting=1,keyctl=1,fuse=1" and post["dev0"] == "/dev/net/tun"
    assert post["net0"] == "name=eth0,bridge=ovs-br0,ip=192.0.2.10/24,gw=192.0.2.1,type=veth"
    assert post["net2"] == "name=mgmt,bridge=vmbr2,ip=manual,hwaddr=02:00:00:00:00:01,type=veth"
    assert post["mp0"] == "/srv/data,mp=/data,ro=1"
    assert post["onboot"] == "1" and post["unprivileged"] == "1" and post["hostname"] == "web1.example.org"
    assert post["memory"] == "1024" and post["swap"] == "0"


def test_create_without_id_takes_the_next_free_one(sim, backend, ct100):
    assert backend.create(spec(name="auto", template=TEMPLATE), timeout=10) == 101
    assert sim.requests_to("GET", "/cluster/nextid")
    assert backend.read(101)["hostname"] == "auto"


def test_change_sends_only_the_changed_key(sim, backend, ct100):
    current = backend.read(100)
    desired = dict(current, cores=4)
    changes = spec_changes(current, desired)
    assert changes == {"cores": (1, 4)}
    assert backend.change(100, changes, timeout=10) == []
    assert put_params(sim) == {"cores": "4"}
    assert len(sim.requests_to("PUT", "*/config")) == 1
    assert spec_changes(backend.read(100), desired) == {}


def test_change_hostname_needs_restart(sim, backend, ct100):
    current = backend.read(100)
    changes = spec_changes(current, dict(current, hostname="web2", onboot=True))
    assert backend.change(100, changes, timeout=10) == ["hostname"]
    assert put_params(sim) == {"hostname": "web2", "onboot": "1"}


def test_delete_a_nic(sim, backend, ct100):
    current = backend.read(100)
    desired = dict(current, network=[dict(current["network"][0], hwaddr=None)])
    changes = spec_changes(current, desired)
    assert backend.change(100, changes, timeout=10) == ["network"]
    assert put_params(sim) == {"delete": "net1"}
    after = backend.read(100)
    assert [nic["name"] for nic in after["network"]] == ["eth0"]
    assert after["network"][0]["hwaddr"] == current["network"][0]["hwaddr"]


def test_changed_nic_keeps_its_mac(sim, backend, ct100):
    current = backend.read(100)
    nic = dict(current["network"][1], hwaddr=None, address="10.2.0.9/24", gateway="10.2.0.1")
    desired = dict(current, network=[dict(current["network"][0], hwaddr=None), nic])
    backend.change(100, spec_changes(current, desired), timeout=10)
    mac = current["network"][1]["hwaddr"].upper()
    assert put_params(sim) == {"net1": "name=eth1,bridge=vmbr1,ip=10.2.0.9/24,gw=10.2.0.1,hwaddr=%s,type=veth" % mac}
    assert spec_changes(backend.read(100), desired) == {}


def test_removed_first_nic_moves_up_with_its_mac(sim, backend, ct100):
    current = backend.read(100)
    desired = dict(current, network=[dict(current["network"][1], hwaddr=None)])
    backend.change(100, spec_changes(current, desired), timeout=10)
    mac = current["network"][1]["hwaddr"].upper()
    assert put_params(sim) == {"net0": "name=eth1,bridge=vmbr1,ip=dhcp,hwaddr=%s,type=veth" % mac, "delete": "net1"}
    assert backend.read(100)["network"] == [current["network"][1]]


def test_add_nic_and_mount(sim, backend, ct100):
    current = backend.read(100)
    eth2 = {"name": "eth2", "type": "veth", "bridge": "ovs-br0", "address": None, "gateway": None, "hwaddr": None, "port": None}
    mounts = [{"source": "/srv/data", "target": "/data", "readonly": True}, {"source": "/srv/logs", "target": "/logs", "readonly": False}]
    desired = dict(current, network=current["network"] + [eth2], mounts=mounts)
    changes = spec_changes(current, normalise_spec(desired))
    assert sorted(backend.change(100, changes, timeout=10)) == ["mounts", "network"]
    assert put_params(sim) == {"net2": "name=eth2,bridge=ovs-br0,type=veth", "mp0": "/srv/data,mp=/data,ro=1", "mp1": "/srv/logs,mp=/logs"}
    assert spec_changes(backend.read(100), normalise_spec(desired)) == {}


def test_features_and_tun(sim, backend, ct100):
    current = backend.read(100)
    assert current["features"] == {"nesting": True, "tun": False, "keyctl": False, "fuse": False}
    desired = dict(current, features={"nesting": True, "tun": True, "keyctl": True, "fuse": False})
    backend.change(100, spec_changes(current, desired), timeout=10)
    assert put_params(sim) == {"features": "nesting=1,keyctl=1,mount=nfs", "dev0": "/dev/net/tun"}
    assert spec_changes(backend.read(100), desired) == {}
    current = backend.read(100)
    desired = dict(current, features={"nesting": False, "tun": False, "keyctl": False, "fuse": False})
    backend.change(100, spec_changes(current, desired), timeout=10)
    assert put_params(sim) == {"features": "mount=nfs", "delete": "dev0"}
    assert spec_changes(backend.read(100), desired) == {}
    assert sim.cluster.containers[100].config["features"] == "mount=nfs"


def test_features_in_another_order_are_not_sent(sim, backend):
    sim.cluster.add_container(100, features="keyctl=1,nesting=1", memory=256)
    current = backend.read(100)
    desired = dict(current, memory_mb=512, features={"nesting": True, "keyctl": True, "fuse": False, "tun": False})
    backend.change(100, {"memory_mb": (256, 512), "features": (current["features"], desired["features"])}, timeout=10)
    assert put_params(sim) == {"memory": "512"}


def test_rootfs_growth_via_resize(sim, backend, ct100):
    current = backend.read(100)
    assert current["rootfs_gb"] == 8
    changes = spec_changes(current, dict(current, rootfs_gb=12))
    assert backend.change(100, changes, timeout=10) == ["rootfs_gb"]
    resize = sim.requests_to("PUT", "*/resize")
    assert len(resize) == 1 and resize[0].params == {"disk": "rootfs", "size": "12G"}
    assert not sim.requests_to("PUT", "*/config")
    assert backend.read(100)["rootfs_gb"] == 12


def test_rootfs_shrink_refused(sim, backend, ct100):
    current = backend.read(100)
    with pytest.raises(ValidationError, match="cannot shrink"):
        backend.change(100, spec_changes(current, dict(current, rootfs_gb=4, cores=3)), timeout=10)
    assert not sim.requests_to("PUT")


def test_create_only_keys_refused_in_change(sim, backend, ct100):
    with pytest.raises(ValidationError, match="only be chosen at creation"):
        backend.change(100, {"unprivileged": (False, True)}, timeout=10)
    assert not sim.requests_to("PUT")


def test_start_stop_destroy(sim, backend, ct100):
    backend.start(100, timeout=10)
    assert backend.state(100) == "running"
    assert backend.addresses(100) == {"eth0": ["10.1.0.5/24"], "eth1": ["192.0.2.103/24"]}
    backend.start(100, timeout=10)
    assert len(sim.requests_to("POST", "*/status/start")) == 1
    with pytest.raises(LxcError, match="running; stop it"):
        backend.destroy(100, timeout=10)
    backend.stop(100, timeout=10)
    assert backend.state(100) == "stopped" and backend.addresses(100) == {}
    assert sim.requests_to("POST", "*/status/shutdown")[-1].params == {"timeout": "10"}
    backend.destroy(100, timeout=10)
    assert backend.state(100) == "absent"
    assert backend.list() == []


def test_stop_hung_shutdown(sim, backend, ct100):
    ct100.status, ct100.started = "running", time.time()
    sim.faults.add("POST", "*/status/shutdown", "slow_task", times=2, duration=5)
    with pytest.raises(LxcError, match="use force"):
        backend.stop(100, timeout=0.5)
    backend.stop(100, timeout=0.5, force=True)
    assert sim.requests_to("POST", "*/status/stop")[-1].params == {"overrule-shutdown": "1"}
    assert backend.state(100) == "stopped"


def test_list(sim, backend, ct100):
    sim.cluster.add_container(101, status="running", hostname="db1")
    sim.cluster.add_container(102, node="pve2")
    assert backend.list() == [{"name": "web1", "id": 100, "state": "stopped"}, {"name": "db1", "id": 101, "state": "running"}]


def test_password_auth(sim, ct100):
    backend = make_backend(sim, api_token_id=None, api_token_secret=None, api_user="root@pam", api_password="pve-root-password")
    assert backend.read(100)["hostname"] == "web1"
    assert sim.requests_to("GET", "*/config")[-1].user == "root@pam"


def test_token_given_as_name_with_api_user(sim, ct100):
    backend = make_backend(sim, api_token_id="ansible", api_user="root@pam")
    assert backend.state(100) == "stopped"
    assert sim.requests_to("GET", "*/status/current")[-1].user == TOKEN


def test_wrong_password(sim):
    backend = make_backend(sim, api_token_id=None, api_token_secret=None, api_user="root@pam", api_password="nope")
    with pytest.raises(LxcError, match="authentication failed for root@pam"):
        backend.list()


def test_no_credentials(sim):
    with pytest.raises(LxcError, match="api_token_id and api_token_secret, or api_user and api_password"):
        make_backend(sim, api_token_id=None).list()
    assert not sim.requests


def test_readonly_token_is_refused_with_pve_message(sim, ct100):
    backend = make_backend(sim, api_token_id="audit@pve!ro", api_token_secret="11111111-2222-3333-4444-555555555555")
    current = backend.read(100)
    with pytest.raises(LxcError, match=r"HTTP 403: Permission check failed \(/vms/100, VM.Config.Options\)"):
        backend.change(100, spec_changes(current, dict(current, cores=2)), timeout=5)


@pytest.mark.parametrize("auth", ["token", "password"])
def test_validate_certs(sim, ct100, auth):
    options = {"validate_certs": True}
    if auth == "password":
        options.update(api_token_id=None, api_token_secret=None, api_user="root@pam", api_password="pve-root-password")
    with pytest.raises(LxcError, match="certificate could not be verified.*ca_path") as info:
        make_backend(sim, **options).list()
    assert "%s:%d" % (sim.host, sim.port) in str(info.value)
    assert make_backend(sim, ca_path=sim.ca_path, **options).list()[0]["id"] == 100


def test_connection_refused_names_the_host(sim):
    port = sim.port
    sim.stop()
    with pytest.raises(LxcError, match="127.0.0.1:%d.*cannot connect" % port):
        make_backend(sim, api_port=port).list()


def test_missing_proxmoxer(sim, monkeypatch):
    monkeypatch.setattr(proxmox_mod, "HAS_PROXMOXER", False)
    with pytest.raises(LxcError, match="proxmoxer"):
        make_backend(sim).list()


# --- faults -----------------------------------------------------------------------------------------------------


def test_lock_retried_then_succeeds(sim, backend, ct100):
    sim.faults.add("PUT", "/nodes/{node}/lxc/{vmid}/config", "lock", times=2)
    current = backend.read(100)
    backend.change(100, spec_changes(current, dict(current, cores=2)), timeout=10)
    puts = sim.requests_to("PUT", "*/config")
    assert [record.status for record in puts] == [500, 500, 200]
    assert backend.read(100)["cores"] == 2


def test_real_lock_released_meanwhile(sim, backend, ct100):
    current = backend.read(100)
    sim.cluster.set_lock(100, "backup")
    timer = threading.Timer(0.3, sim.cluster.set_lock, (100, None))
    timer.start()
    try:
        backend.change(100, spec_changes(current, dict(current, cores=2)), timeout=10)
    finally:
        timer.join()
    assert sim.requests_to("PUT", "*/config")[-1].status == 200
    assert backend.read(100)["cores"] == 2


def test_lock_persisting_names_the_lock(sim, backend, ct100):
    sim.faults.add("PUT", "/nodes/{node}/lxc/{vmid}/config", "lock", times=None, lock="migrate")
    current = backend.read(100)
    started = time.time()
    with pytest.raises(LxcError, match=r"locked \(migrate\)") as info:
        backend.change(100, spec_changes(current, dict(current, cores=2)), timeout=1)
    assert time.time() - started < 5
    assert len(sim.requests_to("PUT", "*/config")) > 1
    assert "CT is locked (migrate)" in str(info.value)


def test_lock_409_retried(sim, backend, ct100):
    sim.faults.add("POST", "*/status/start", "lock", times=1, status=409)
    backend.start(100, timeout=10)
    assert [record.status for record in sim.requests_to("POST", "*/status/start")] == [409, 200]
    assert backend.state(100) == "running"


def test_error500(sim, backend, ct100):
    sim.faults.add("GET", "*/config", "error500", message="got timeout while reading pmxcfs")
    with pytest.raises(LxcError, match=r"GET /nodes/pve1/lxc/100/config failed: HTTP 500: got timeout while reading pmxcfs"):
        backend.read(100)
    assert len(sim.requests_to("GET", "*/config")) == 1


def test_parameter_errors_are_quoted(sim, backend, ct100):
    with pytest.raises(LxcError, match=r"HTTP 400: Parameter verification failed. \(cores: type check \('integer'\) failed"):
        backend._call("PUT", "lxc/100/config", cores="many")  # pylint: disable=protected-access


def test_slow_task_within_timeout(sim, backend, ct100):
    sim.faults.add("POST", "*/status/start", "slow_task", duration=0.5)
    started = time.time()
    backend.start(100, timeout=5)
    assert time.time() - started >= 0.4
    assert backend.state(100) == "running"
    assert len(sim.requests_to("GET", "*/tasks/*/status")) > 2


def test_slow_task_beyond_timeout(sim, backend, ct100):
    sim.faults.add("POST", "*/status/start", "slow_task", duration=10)
    with pytest.raises(Timeout) as info:
        backend.start(100, timeout=0.5)
    upid = [task.upid for task in sim.cluster.tasks.values() if task.type == "vzstart"][0]
    assert upid in str(info.value)


def test_task_fail_quotes_the_log(sim, backend):
    sim.faults.add("POST", "/nodes/{node}/lxc", "task_fail")
    with pytest.raises(LxcError) as info:
        backend.create(spec(id=150, template=TEMPLATE, name="full"), timeout=10)
    text = str(info.value)
    assert "creating CT 150 failed" in text and "UPID:pve1:" in text
    assert "No space left on device" in text and "TASK ERROR: unable to create CT 150" in text
    assert backend.state(150) == "absent"


def test_start_fail_quotes_the_log(sim, backend, ct100):
    sim.faults.add("POST", "*/status/start", "task_fail")
    with pytest.raises(LxcError, match=r"(?s)startup for container '100' failed.*Failed to run lxc.hook.pre-start"):
        backend.start(100, timeout=10)


def test_http_timeout(sim, ct100):
    backend = make_backend(sim, timeout=0.5)
    sim.faults.add("GET", "*/config", "timeout", delay=3)
    with pytest.raises(Timeout, match=r"127.0.0.1:%d.*no answer within 0.5 s" % sim.port):
        backend.read(100)


def test_digest_conflict(sim, backend, ct100, monkeypatch):
    original = backend._config  # pylint: disable=protected-access

    def racing(vmid, deadline=None):
        config = original(vmid, deadline)
        sim.cluster.containers[vmid].config["memory"] = 2048
        return config

    current = backend.read(100)
    monkeypatch.setattr(backend, "_config", racing)
    with pytest.raises(LxcError, match="changed by someone else.*detected modified configuration"):
        backend.change(100, spec_changes(current, dict(current, cores=2)), timeout=5)
    assert sim.cluster.containers[100].config["cores"] == 1


# --- unknown containers and bad input --------------------------------------------------------------------------------


def test_unknown_vmid(sim, backend):
    assert backend.state(999) == "absent"
    with pytest.raises(NotFound, match="999.conf' does not exist"):
        backend.read(999)
    with pytest.raises(NotFound):
        backend.change(999, {"cores": (1, 2)}, timeout=5)
    with pytest.raises(NotFound):
        backend.destroy(999, timeout=5)
    with pytest.raises(NotFound):
        backend.stop(999, timeout=5)


def test_create_refusals_from_pve(sim, backend, ct100):
    with pytest.raises(LxcError, match="CT 100 already exists"):
        backend.create(spec(id=100, template=TEMPLATE), timeout=5)
    with pytest.raises(LxcError, match="can't find file 'local:vztmpl/nope.tar.zst'"):
        backend.create(spec(id=101, template="local:vztmpl/nope.tar.zst"), timeout=5)


@pytest.mark.parametrize("values, message", [
    ({"id": 100, "template": TEMPLATE, "cores": 0}, "cores must be between 1"),
    ({"id": 100, "template": TEMPLATE, "hostname": "-bad-"}, "not a valid host name"),
    ({"id": 99, "template": TEMPLATE}, "id must be between 100"),
    ({"id": 100, "template": TEMPLATE, "onboot": "yes"}, "onboot must be true or false"),
    ({"id": 100, "template": TEMPLATE, "network": [{"name": "eth0", "address": "10.0.0.1"}]}, "needs a prefix length"),
    ({"id": 100, "template": TEMPLATE, "network": [{"name": "eth0", "type": "socket", "bridge": "ovs-br0"}]}, "liblxc feature"),
    ({"id": 100, "template": TEMPLATE, "network": [{"name": "eth0", "bridge": "ovs-br0", "port": "p1"}]}, "leave port unset"),
    ({"id": 100, "template": TEMPLATE, "mounts": [{"source": "local-lvm:8", "target": "/data"}]}, "allocate a new volume"),
    ({"id": 100, "template": TEMPLATE, "features": {"tun": "on"}}, "features.tun must be true or false"),
    ({"id": 100, "name": "x"}, "needs template"),
    ({"id": 100, "template": TEMPLATE, "colour": "blue"}, "unknown settings colour"),
])
def test_bad_input_rejected_before_any_request(sim, backend, values, message):
    with pytest.raises(ValidationError, match=message):
        backend.create(values, timeout=5)
    assert not sim.requests


def test_bad_change_rejected_before_any_request(sim, backend):
    with pytest.raises(ValidationError, match="liblxc feature"):
        backend.change(100, {"network": ([], [{"name": "eth0", "type": "socket", "bridge": "ovs-br0"}])}, timeout=5)
    with pytest.raises(ValidationError, match="VMID"):
        backend.read("web1")
    assert not sim.requests


# --- module glue ------------------------------------------------------------------------------------------------------


def test_connection_spec_and_doc_fragment_agree():
    doc = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert sorted(doc) == sorted(CONNECTION_SPEC)
    for key, option in CONNECTION_SPEC.items():
        assert doc[key]["type"] == option["type"]
        assert doc[key].get("default") == option.get("default")
        assert bool(doc[key].get("no_log")) is False
    assert CONNECTION_SPEC["api_password"]["no_log"] and CONNECTION_SPEC["api_token_secret"]["no_log"]
    envs = dict((key, option["fallback"][1][0]) for key, option in CONNECTION_SPEC.items() if "fallback" in option)
    assert envs == {"api_host": "PROXMOX_HOST", "api_user": "PROXMOX_USER", "api_password": "PROXMOX_PASSWORD",
                    "api_token_id": "PROXMOX_TOKEN_ID", "api_token_secret": "PROXMOX_TOKEN_SECRET", "node": "PROXMOX_NODE"}
