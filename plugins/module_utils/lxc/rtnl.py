# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The addresses of the current network namespace, read over rtnetlink with the standard library only.

Used inside a container's network namespace (a child that liblxc attached there), where
neither pyroute2 nor any tool of the host can be assumed: one RTM_GETADDR dump on a
NETLINK_ROUTE socket, parsed here. Interface names come from if_indextoname in the same
namespace.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import struct

NETLINK_ROUTE = 0
RTM_GETADDR = 22
RTM_NEWADDR = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_DONE = 3
NLMSG_ERROR = 2
IFA_ADDRESS = 1
IFA_LOCAL = 2
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
NLMSG_HDR = struct.Struct("=IHHII")
IFADDRMSG = struct.Struct("=BBBBI")
RTATTR = struct.Struct("=HH")


def _align(length):
    return (length + 3) & ~3


def parse_addresses(messages):
    """[(ifindex, family, address, prefixlen, scope)] from the payloads of RTM_NEWADDR messages."""
    out = []
    for payload in messages:
        family, prefixlen, flags, scope, index = IFADDRMSG.unpack_from(payload, 0)
        del flags
        attrs = {}
        pos = _align(IFADDRMSG.size)
        while pos + RTATTR.size <= len(payload):
            length, kind = RTATTR.unpack_from(payload, pos)
            if length < RTATTR.size:
                break
            attrs[kind] = payload[pos + RTATTR.size:pos + length]
            pos += _align(length)
        raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        if raw is None:
            continue
        address = socket.inet_ntop(socket.AF_INET if family == socket.AF_INET else socket.AF_INET6, raw)
        out.append((index, family, address, prefixlen, scope))
    return out


def dump_addresses():
    """{interface: ["address/prefix", ...]} of this namespace, without lo, host- and link-scope addresses."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
        request = IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        sock.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(request), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + request)
        messages = []
        done = False
        while not done:
            data = sock.recv(65536)
            pos = 0
            while pos + NLMSG_HDR.size <= len(data):
                length, kind, flags, seq, pid = NLMSG_HDR.unpack_from(data, pos)
                del flags, seq, pid
                if length < NLMSG_HDR.size:
                    done = True
                    break
                if kind == NLMSG_DONE:
                    done = True
                    break
                if kind == NLMSG_ERROR:
                    code = struct.unpack_from("=i", data, pos + NLMSG_HDR.size)[0]
                    if code:
                        raise OSError(-code, "rtnetlink RTM_GETADDR failed")
                elif kind == RTM_NEWADDR:
                    messages.append(data[pos + NLMSG_HDR.size:pos + length])
                pos += _align(length)
    finally:
        sock.close()
    result = {}
    for index, unused_family, address, prefixlen, scope in parse_addresses(messages):
        if scope in (RT_SCOPE_LINK, RT_SCOPE_HOST):
            continue
        try:
            name = socket.if_indextoname(index)
        except OSError:
            name = "if%d" % index
        if name == "lo":
            continue
        result.setdefault(name, []).append("%s/%d" % (address, prefixlen))
    return result
