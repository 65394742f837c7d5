# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Proxmox simulator seen through proxmoxer, as the proxmox backend will see a PVE 9.1.3 node."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time

import pytest
import requests
from proxmoxer import ProxmoxAPI, ResourceException
from proxmoxer.core import AuthenticationError

from ansible_collections.opdbus.infra.tests.proxmox_sim import UPID_RE

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"


def _error(call, *args, **kwargs):
    with pytest.raises(ResourceException) as info:
        call(*args, **kwargs)
    return info.value


def test_create_task_then_config_and_status(sim, node, wait):
    upid = node.lxc.post(vmid=100, ostemplate=TEMPLATE, hostname="web1", rootfs="local-lvm:8", cores=2, memory=1024, unprivileged=1,
                         features="nesting=1,keyctl=1", net0="name=eth0,bridge=vmbr0,ip=10.1.0.5/24,gw=10.1.0.1", onboot=1)
    match = UPID_RE.match(upid)
    assert match and match.group("type") == "vzcreate" and match.group("id") == "100" and match.group("user") == "root@pam!ansible"
    assert node.lxc(100).config.get()["lock"] == "create"
    status = wait(upid)
    assert status["exitstatus"] == "OK" and status["type"] == "vzcreate" and status["upid"] == upid
    config = node.lxc(100).config.get()
    assert "lock" not in config
    assert config["rootfs"] == "local-lvm:vm-100-disk-0,size=8G"
    assert config["cores"] == 2 and config["memory"] == 1024 and config["unprivileged"] == 1 and config["onboot"] == 1
    assert config["features"] == "keyctl=1,nesting=1"
    assert config["ostype"] == "debian" and config["arch"] == "amd64" and config["hostname"] == "web1"
    assert config["net0"].startswith("name=eth0,bridge=vmbr0,gw=10.1.0.1,hwaddr=BC:24:11:")
    assert config["net0"].endswith(",ip=10.1.0.5/24,type=veth")
    assert len(config["digest"]) == 40
    current = node.lxc(100).status.current.get()
    assert current["status"] == "stopped" and current["vmid"] == 100 and current["maxdisk"] == 8 * 1024 ** 3
    log = node.tasks(upid).log.get()
    assert log[0] == {"n": 1, "t": "  Logical volume \"vm-100-disk-0\" created."}
    assert log[-1] == {"n": len(log), "t": "TASK OK"}
    assert any("extracting archive '/var/lib/vz/template/cache/debian-12" in line["t"] for line in log)
    assert [ct["vmid"] for ct in node.lxc.get()] == [100]
    volumes = [vol["volid"] for vol in node.storage("local-lvm").content.get()]
    assert volumes == ["local-lvm:vm-100-disk-0"]


def test_create_with_start_and_defaults(node, wait):
    upid = node.lxc.post(vmid=101, ostemplate="local:vztmpl/alpine-3.20-default_20240908_amd64.tar.xz", storage="local-lvm", start=1)
    assert wait(upid)["exitstatus"] == "OK"
    config = node.lxc(101).config.get()
    assert config["rootfs"] == "local-lvm:vm-101-disk-0,size=4G" and config["hostname"] == "CT101" and config["ostype"] == "alpine"
    assert node.lxc(101).status.current.get()["status"] == "running"


@pytest.mark.parametrize("params, message", [
    ({"vmid": 100}, "CT 100 already exists on node 'pve1'"),
    ({"vmid": 102, "ostemplate": "local:vztmpl/nope.tar.zst"}, "can't find file 'local:vztmpl/nope.tar.zst'"),
    ({"vmid": 102, "storage": "tank"}, "storage 'tank' does not exist"),
    ({"vmid": 102, "rootfs": "tank:8"}, "storage 'tank' does not exist"),
    ({"vmid": 102, "rootfs": "local:8"}, "storage 'local' does not support container directories"),
])
def test_create_refused_as_pve_does(node, ct100, params, message):
    params = dict({"ostemplate": TEMPLATE, "rootfs": "local-lvm:8"}, **params)
    err = _error(node.lxc.post, **params)
    assert (err.status_code, err.content) == (500, message)
    assert 102 not in [ct["vmid"] for ct in node.lxc.get()]


def test_start_stop_shutdown_reboot(sim, node, wait, ct100):
    assert wait(node.lxc(100).status.start.post())["exitstatus"] == "OK"
    assert node.lxc(100).status.current.get()["status"] == "running"
    err = _error(node.lxc(100).status.start.post)
    assert (err.status_code, err.content) == (500, "CT 100 already running")
    upid = node.lxc(100).status.reboot.post()
    assert UPID_RE.match(upid).group("type") == "vzreboot" and wait(upid)["exitstatus"] == "OK"
    upid = node.lxc(100).status.shutdown.post(timeout=30, forceStop=1)
    assert UPID_RE.match(upid).group("type") == "vzshutdown" and wait(upid)["exitstatus"] == "OK"
    assert node.lxc(100).status.current.get()["status"] == "stopped"
    for action in ("stop", "shutdown"):
        err = _error(node.lxc(100).status(action).post)
        assert (err.status_code, err.content) == (500, "CT 100 not running")
    wait(node.lxc(100).status.start.post())
    upid = node.lxc(100).status.stop.post()
    assert UPID_RE.match(upid).group("type") == "vzstop" and wait(upid)["exitstatus"] == "OK"
    assert node.lxc(100).status.current.get()["status"] == "stopped"


def test_config_update_sends_and_applies_only_changed_keys(sim, node, ct100):
    before = node.lxc(100).config.get()
    assert node.lxc(100).config.put(memory=2048, description="web server", delete="cores", digest=before["digest"]) is None
    after = node.lxc(100).config.get()
    assert after["memory"] == 2048 and after["description"] == "web server" and "cores" not in after
    assert after["digest"] != before["digest"] and after["net0"] == before["net0"]
    puts = sim.requests_to("PUT", "/nodes/pve1/lxc/100/config")
    assert [record.params for record in puts] == [{"memory": "2048", "description": "web server", "delete": "cores",
                                                  "digest": before["digest"]}]
    assert puts[0].template == "/nodes/{node}/lxc/{vmid}/config" and puts[0].status == 200 and puts[0].user == "root@pam!ansible"


def test_config_net_and_mount_points(node, ct100, wait):
    node.lxc(100).config.put(net1="name=eth1,bridge=vmbr1,ip=dhcp,tag=20", mp0="local-lvm:2,mp=/srv/data,backup=1")
    config = node.lxc(100).config.get()
    assert config["mp0"] == "local-lvm:vm-100-disk-1,mp=/srv/data,backup=1,size=2G"
    assert ",tag=20,type=veth" in config["net1"]
    node.lxc(100).config.put(delete="mp0")
    config = node.lxc(100).config.get()
    assert "mp0" not in config and config["unused0"] == "local-lvm:vm-100-disk-1"
    err = _error(node.lxc(100).config.put, delete="rootfs")
    assert (err.status_code, err.content) == (500, "unable to delete required option 'rootfs'")
    err = _error(node.lxc(100).config.put, memory=256, delete="memory")
    assert err.status_code == 400 and "delete" in err.errors
    err = _error(node.lxc(100).config.put, delete="bogus")
    assert err.errors == {"delete": "unknown option 'bogus'"}


def test_digest_mismatch(node, ct100):
    digest = node.lxc(100).config.get()["digest"]
    node.lxc(100).config.put(memory=1024)
    err = _error(node.lxc(100).config.put, memory=2048, digest=digest)
    assert (err.status_code, err.content) == (500, "detected modified configuration - file changed by other user? Try again.")
    assert node.lxc(100).config.get()["memory"] == 1024


@pytest.mark.parametrize("params, name, message", [
    ({"bogus": 1}, "bogus", "property is not defined in schema and the schema does not allow additional properties"),
    ({"ostype": "windows"}, "ostype", None),
    ({"cores": "two"}, "cores", "type check ('integer') failed - got 'two'"),
    ({"onboot": True}, "onboot", "type check ('boolean') failed - got 'True'"),
    ({"net0": "name=eth0,bridge=vmbr0,speed=10"}, "net0", None),
    ({"net40": "name=eth0"}, "net40", "property is not defined in schema and the schema does not allow additional properties"),
])
def test_bad_parameters_are_400_with_the_parameter_named(sim, node, ct100, params, name, message):
    err = _error(node.lxc(100).config.put, **params)
    assert err.status_code == 400 and err.content == "Parameter verification failed."
    assert list(err.errors) == [name]
    if message:
        assert err.errors[name] == message
    assert "Parameter verification failed." in str(err) and name in str(err)


@pytest.mark.parametrize("vmid, message", [(99, "value must have a minimum value of 100"), (1000000000, "value must have a maximum value of 999999999")])
def test_vmid_range(node, vmid, message):
    err = _error(node.lxc.post, vmid=vmid, ostemplate=TEMPLATE)
    assert err.status_code == 400 and err.errors == {"vmid": message}
    err = _error(node.lxc(vmid).config.get)
    assert err.errors == {"vmid": message}


def test_unknown_ct_node_and_path(px, node):
    err = _error(node.lxc(123).config.get)
    assert (err.status_code, err.content) == (500, "Configuration file 'nodes/pve1/lxc/123.conf' does not exist")
    err = _error(px.nodes("pve9").lxc.get)
    assert err.status_code == 500 and err.content.startswith("hostname lookup 'pve9' failed")
    err = _error(node.lxc(123).snapshot.get)
    assert (err.status_code, err.content) == (501, "Method 'GET /api2/json/nodes/pve1/lxc/123/snapshot' not implemented")


def test_token_auth_failures(sim):
    for kwargs, message in [({"token_value": "wrong"}, "invalid token value!"),
                            ({"token_name": "other"}, "no such token 'other' for user 'root@pam'")]:
        auth = dict(sim.token_auth(), **kwargs)
        err = _error(ProxmoxAPI(backend="https", verify_ssl=False, **auth).nodes.get)
        assert (err.status_code, err.content) == (401, message)
    response = requests.get(sim.url + "/nodes", verify=False, timeout=5)
    assert (response.status_code, response.reason, response.json()) == (401, "No ticket", {"data": None})


def test_password_auth_ticket_and_csrf(sim, wait):
    px = ProxmoxAPI(backend="https", verify_ssl=False, **sim.password_auth())
    assert px.nodes("pve1").lxc.get() == []
    upid = px.nodes("pve1").lxc.post(vmid=200, ostemplate=TEMPLATE, rootfs="local-lvm:2")
    assert UPID_RE.match(upid).group("user") == "root@pam"
    with pytest.raises(AuthenticationError, match="code: 401"):
        ProxmoxAPI(backend="https", verify_ssl=False, host=sim.host, port=sim.port, user="root@pam", password="wrong")
    response = requests.post(sim.url + "/access/ticket", data={"username": "root", "realm": "pam", "password": "wrong"}, verify=False, timeout=5)
    assert (response.status_code, response.reason) == (401, "authentication failure")
    ticket, dummy = px.get_tokens()
    cookies = {"PVEAuthCookie": ticket}
    response = requests.put(sim.url + "/nodes/pve1/lxc/200/config", data={"memory": "1024"}, cookies=cookies, verify=False, timeout=5)
    assert (response.status_code, response.reason) == (401, "Permission denied - invalid csrf token")
    response = requests.get(sim.url + "/nodes", cookies={"PVEAuthCookie": "PVE:root@pam:00000000::forged"}, verify=False, timeout=5)
    assert (response.status_code, response.reason) == (401, "permission denied - invalid PVE ticket")


def test_readonly_principals_get_403(sim, ct100):
    for auth in (sim.token_auth("audit@pve!ro"), sim.password_auth("audit@pve")):
        px = ProxmoxAPI(backend="https", verify_ssl=False, **auth)
        assert px.nodes("pve1").lxc(100).config.get()["hostname"] == "web1"
        err = _error(px.nodes("pve1").lxc(100).status.start.post)
        assert (err.status_code, err.content) == (403, "Permission check failed (/vms/100, VM.PowerMgmt)")


def test_certificate_verification(sim):
    strict = ProxmoxAPI(backend="https", verify_ssl=True, **sim.token_auth())
    with pytest.raises(requests.exceptions.SSLError):
        strict.version.get()
    pinned = ProxmoxAPI(backend="https", verify_ssl=sim.ca_path, **sim.token_auth())
    assert pinned.version.get()["release"] == "9.1"
    assert sim.fingerprint == pinned.nodes.get()[0]["ssl_fingerprint"]


def test_state_lock_as_pve(sim, node, wait, ct100):
    sim.cluster.set_lock(100, "backup")
    err = _error(node.lxc(100).config.put, memory=1024)
    assert (err.status_code, err.content) == (500, "CT is locked (backup)")
    err = _error(node.lxc(100).status.start.post)
    assert (err.status_code, err.content) == (500, "CT is locked (backup)")
    assert node.lxc(100).status.current.get()["lock"] == "backup"
    sim.cluster.set_lock(100, None)
    wait(node.lxc(100).status.start.post())
    sim.cluster.set_lock(100, "snapshot")
    status = wait(node.lxc(100).status.stop.post())
    assert status["exitstatus"] == "CT is locked (snapshot)"
    assert node.lxc(100).status.current.get()["status"] == "running"


def test_fault_lock_500_and_409(sim, node, ct100):
    sim.faults.add("PUT", "/nodes/{node}/lxc/{vmid}/config", "lock", lock="backup")
    err = _error(node.lxc(100).config.put, memory=1024)
    assert (err.status_code, err.content) == (500, "CT is locked (backup)")
    node.lxc(100).config.put(memory=1024)
    sim.faults.add("*", "/nodes/pve1/lxc/100/*", "lock", status=409, lock="migrate", times=2)
    for dummy in range(2):
        err = _error(node.lxc(100).config.get)
        assert (err.status_code, err.content) == (409, "CT is locked (migrate)")
    assert node.lxc(100).config.get()["memory"] == 1024
    assert len(sim.faults) == 0


def test_fault_error500(sim, node, ct100):
    sim.faults.add("POST", "*/status/start", "error500", message="got timeout")
    err = _error(node.lxc(100).status.start.post)
    assert (err.status_code, err.content, err.errors) == (500, "got timeout", None)
    assert str(err) == "500 Internal Server Error: got timeout"


def test_fault_slow_task(sim, node, wait, ct100):
    sim.faults.add("POST", "*/status/start", "slow_task", duration=0.6)
    upid = node.lxc(100).status.start.post()
    status = node.tasks(upid).status.get()
    assert status["status"] == "running" and "exitstatus" not in status
    assert node.tasks(upid).log.get() == [{"n": 1, "t": "no content"}]
    assert node.lxc(100).status.current.get()["status"] == "stopped"
    begin = time.time()
    assert wait(upid)["exitstatus"] == "OK"
    assert time.time() - begin > 0.3


def test_fault_task_fail(sim, node, wait, ct100):
    sim.faults.add("POST", "*/status/start", "task_fail")
    upid = node.lxc(100).status.start.post()
    status = wait(upid)
    assert status["exitstatus"] == "startup for container '100' failed"
    lines = [line["t"] for line in node.tasks(upid).log.get()]
    assert lines[-1] == "TASK ERROR: startup for container '100' failed"
    assert "lxc_init: 845 Failed to run lxc.hook.pre-start for container \"100\"" in lines
    assert node.lxc(100).status.current.get()["status"] == "stopped"
    sim.faults.add("POST", "/nodes/{node}/lxc", "task_fail", message="unable to create CT 101 - no space", lines=["tar: write error"])
    status = wait(node.lxc.post(vmid=101, ostemplate=TEMPLATE, rootfs="local-lvm:2"))
    assert status["exitstatus"] == "unable to create CT 101 - no space"
    assert 101 not in [ct["vmid"] for ct in node.lxc.get()]


def test_fault_timeout(sim, ct100):
    sim.faults.add("GET", "*/status/current", "timeout", delay=2)
    px = ProxmoxAPI(backend="https", verify_ssl=False, timeout=0.5, **sim.token_auth())
    with pytest.raises(requests.exceptions.Timeout):
        px.nodes("pve1").lxc(100).status.current.get()
    assert px.nodes("pve1").lxc(100).config.get()["hostname"] == "web1"


def test_clone_resize_destroy(sim, node, wait, ct100):
    upid = node.lxc(100).clone.post(newid=150, hostname="web2", full=1)
    assert UPID_RE.match(upid).group("type") == "vzclone"
    assert wait(upid)["exitstatus"] == "OK"
    clone = node.lxc(150).config.get()
    assert clone["hostname"] == "web2" and clone["rootfs"] == "local-lvm:vm-150-disk-0,size=8G"
    assert clone["net0"].split("hwaddr=")[1] != node.lxc(100).config.get()["net0"].split("hwaddr=")[1]
    upid = node.lxc(150).resize.put(disk="rootfs", size="+2G")
    assert UPID_RE.match(upid).group("type") == "resize" and wait(upid)["exitstatus"] == "OK"
    assert node.lxc(150).config.get()["rootfs"] == "local-lvm:vm-150-disk-0,size=10G"
    err = _error(node.lxc(150).resize.put, disk="rootfs", size="4G")
    assert (err.status_code, err.content) == (500, "unable to shrink disk size")
    err = _error(node.lxc(150).resize.put, disk="rootfs", size="lots")
    assert err.errors == {"size": "value does not match the regex pattern"}
    wait(node.lxc(150).status.start.post())
    err = _error(node.lxc(150).delete)
    assert (err.status_code, err.content) == (500, "unable to destroy CT 150 - container is running")
    upid = node.lxc(150).delete(force=1, purge=1)
    assert UPID_RE.match(upid).group("type") == "vzdestroy" and wait(upid)["exitstatus"] == "OK"
    assert [ct["vmid"] for ct in node.lxc.get()] == [100]
    assert [vol["volid"] for vol in node.storage("local-lvm").content.get()] == ["local-lvm:vm-100-disk-0"]


def test_cluster_endpoints(px, node, wait, ct100):
    assert px.cluster.nextid.get() == 101
    err = _error(px.cluster.nextid.get, vmid=100)
    assert err.errors == {"vmid": "VM 100 already exists"}
    assert [entry["id"] for entry in px.cluster.resources.get(type="vm")] == ["lxc/100"]
    assert [node_entry["node"] for node_entry in px.nodes.get()] == ["pve1", "pve2"]
    err = _error(px.cluster.resources.get, type="qemu")
    assert err.status_code == 400 and "type" in err.errors
    storages = node.storage.get(content="vztmpl")
    assert [entry["storage"] for entry in storages] == ["local"]
    templates = node.storage("local").content.get(content="vztmpl")
    assert TEMPLATE in [entry["volid"] for entry in templates]


def test_interfaces_of_running_ct(node, wait, ct100):
    err = _error(node.lxc(100).interfaces.get)
    assert (err.status_code, err.content) == (500, "CT 100 not running")
    wait(node.lxc(100).status.start.post())
    eth0 = [entry for entry in node.lxc(100).interfaces.get() if entry["name"] == "eth0"][0]
    assert eth0["inet"] == "10.1.0.5/24"
    assert eth0["ip-addresses"] == [{"ip-address": "10.1.0.5", "ip-address-type": "inet", "prefix": 24}]


def test_task_log_paging_and_bad_upid(node, wait):
    upid = node.lxc.post(vmid=100, ostemplate=TEMPLATE, rootfs="local-lvm:8")
    wait(upid)
    page = node.tasks(upid).log.get(start=2, limit=3)
    assert [line["n"] for line in page] == [3, 4, 5]
    err = _error(node.tasks("UPID:nonsense").status.get)
    assert (err.status_code, err.content) == (500, "unable to parse worker upid 'UPID:nonsense'")


def test_concurrent_requests(sim, px, wait):
    results, errors = {}, []

    def worker(vmid):
        try:
            client = ProxmoxAPI(backend="https", verify_ssl=False, **sim.token_auth())
            upid = client.nodes("pve1").lxc.post(vmid=vmid, ostemplate=TEMPLATE, rootfs="local-lvm:1")
            results[vmid] = wait_status(client, upid)
            client.nodes("pve1").lxc(vmid).config.put(memory=256 + vmid)
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)

    def wait_status(client, upid):
        while True:
            status = client.nodes("pve1").tasks(upid).status.get()
            if status["status"] == "stopped":
                return status["exitstatus"]
            time.sleep(0.01)

    threads = [threading.Thread(target=worker, args=(vmid,)) for vmid in range(300, 316)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert results == dict((vmid, "OK") for vmid in range(300, 316))
    configs = dict((ct["vmid"], px.nodes("pve1").lxc(ct["vmid"]).config.get()) for ct in px.nodes("pve1").lxc.get())
    assert sorted(configs) == list(range(300, 316))
    assert all(configs[vmid]["memory"] == 256 + vmid for vmid in configs)
    assert len(set(config["rootfs"] for config in configs.values())) == 16
    upids = set(record.path for record in sim.requests_to("GET", "/nodes/{node}/tasks/{upid}/status"))
    assert len(upids) == 16
