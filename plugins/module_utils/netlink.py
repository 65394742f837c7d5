# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rtnetlink through pyroute2: link state and addresses of interfaces.

The transport knows nothing of Ansible. pyroute2 is imported on first use so
that modules which never touch netlink do not pay for it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import time


class NetlinkError(Exception):
    """A netlink request failed; the message names the interface and the reason."""


class NetlinkUnavailable(NetlinkError):
    """pyroute2 is not importable in this interpreter."""


def _iproute():
    try:
        from pyroute2 import IPRoute  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise NetlinkUnavailable("the Python library pyroute2 is required to manage interface addresses "
                                 "(pip install pyroute2)")
    return IPRoute()


def _managed(cidr):
    """Addresses the kernel makes by itself (IPv6 link-local, fe80::/10) are never ours to manage."""
    ip = ipaddress.ip_interface(cidr).ip
    return not (ip.version == 6 and ip.is_link_local)


class Netlink(object):
    """One rtnetlink socket; use as a context manager."""

    def __init__(self):
        self.ipr = None

    def __enter__(self):
        self.ipr = _iproute()
        return self

    def __exit__(self, *exc):
        if self.ipr is not None:
            self.ipr.close()
            self.ipr = None

    def _index(self, name):
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def state(self, names):
        """Return {name: None | {"up": bool, "addresses": [cidr, ...]}} for the given names."""
        wanted = set(names)
        if not wanted:
            return {}
        out = dict((n, None) for n in wanted)
        index_to_name = {}
        for link in self.ipr.get_links():
            name = link.get_attr("IFLA_IFNAME")
            if name in wanted:
                index_to_name[link["index"]] = name
                out[name] = {"up": bool(link["flags"] & 1), "addresses": []}
        if index_to_name:
            for addr in self.ipr.get_addr():
                name = index_to_name.get(addr["index"])
                if name is None:
                    continue
                cidr = ipaddress.ip_interface("%s/%d" % (addr.get_attr("IFA_ADDRESS"), addr["prefixlen"]))
                if _managed(cidr.with_prefixlen):
                    out[name]["addresses"].append(cidr.with_prefixlen)
        for entry in out.values():
            if entry:
                entry["addresses"].sort()
        return out

    def wait_for(self, name, timeout):
        """Wait until the interface exists; return its index."""
        deadline = time.monotonic() + timeout
        while True:
            index = self._index(name)
            if index is not None:
                return index
            if time.monotonic() >= deadline:
                raise NetlinkError("interface %s did not appear within %.0f s" % (name, timeout))
            time.sleep(0.02)

    def converge(self, name, addresses=None, up=None, timeout=10.0):
        """Make the interface's addresses exactly ``addresses`` (when given) and its link ``up``."""
        index = self.wait_for(name, timeout)
        try:
            if addresses is not None:
                want = set(addresses)
                have = set((self.state([name])[name] or {"addresses": []})["addresses"])
                for cidr in sorted(have - want):
                    ip = ipaddress.ip_interface(cidr)
                    self.ipr.addr("del", index=index, address=str(ip.ip), prefixlen=ip.network.prefixlen)
                if have - want:
                    # Deleting a primary IPv4 address takes the secondaries of its subnet with it
                    # (unless the kernel promotes them): read again before adding.
                    have = set((self.state([name])[name] or {"addresses": []})["addresses"])
                for cidr in sorted(want - have):
                    ip = ipaddress.ip_interface(cidr)
                    self.ipr.addr("add", index=index, address=str(ip.ip), prefixlen=ip.network.prefixlen)
            if up is not None:
                self.ipr.link("set", index=index, state="up" if up else "down")
        except Exception as exc:  # pyroute2 raises NetlinkError and OSError subclasses
            raise NetlinkError("netlink request on %s failed: %s" % (name, exc))
