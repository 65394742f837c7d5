# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Opening a stream socket the way every transport of the collection does (no Ansible here)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import socket


def connect_stream(family, address, timeout, what, hint, timeout_error, connect_error):
    """Connect a stream socket to ``address``.

    ``what`` names the peer in messages ("OVSDB at unix:/..."); ``hint`` is added when nothing listens
    there. Raises ``timeout_error`` or ``connect_error`` (the transport's own exception types).
    """
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except socket.timeout:
        sock.close()
        raise timeout_error("timed out connecting to %s" % what)
    except (OSError, IOError) as exc:
        sock.close()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        extra = " (%s)" % hint if hint and exc.errno in (errno.ENOENT, errno.ECONNREFUSED) else ""
        raise connect_error("cannot connect to %s: %s%s" % (what, reason, extra))
    return sock
