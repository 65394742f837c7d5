# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors of the OpenFlow transport (codec and connection).

Every error the package raises is an :class:`OpenFlowError`, so a module maps
the whole transport to ``fail_json`` with one ``except`` clause.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class OpenFlowError(Exception):
    """Base class of every error the OpenFlow transport raises."""


class OpenFlowCodecError(OpenFlowError, ValueError):
    """A value cannot be encoded (bad input), or bytes cannot be decoded."""


class OpenFlowConnectionError(OpenFlowError):
    """The switch cannot be reached, or the connection broke."""


class OpenFlowTimeout(OpenFlowError):
    """The switch did not answer in time."""


class OpenFlowVersionError(OpenFlowError):
    """HELLO negotiation found no OpenFlow version both sides speak.

    ``offered`` is the list of wire versions the switch offered, ``ours`` the
    list we offered.
    """

    def __init__(self, msg, offered=None, ours=None):
        self.offered = list(offered or [])
        self.ours = list(ours or [])
        super(OpenFlowVersionError, self).__init__(msg)


class OpenFlowSwitchError(OpenFlowError):
    """The switch answered a request with OFPT_ERROR.

    Attributes:
      err_type, err_code      the numbers on the wire (for an experimenter
                              error: 0xffff and the experimenter's code)
      type_name, code_name    their names, e.g. ``OFPET_BAD_INSTRUCTION`` and
                              ``OFPBIC_BAD_TABLE_ID``
      experimenter            the experimenter id of an experimenter error, else None
      index                   in a bundle or a batch: the 0-based index of the
                              message the switch rejected, else None
      xid                     the xid of the rejected message
      msg_type                the name of the rejected message's type, if known
      data                    the bytes the switch sent back (the start of the
                              offending message)
      context                 what was being done ("bundle commit", ...), or None
      errors                  every error of the same bundle or batch, as
                              (index, error message dict) pairs, first failure first
    """

    def __init__(self, err_type, err_code, type_name, code_name, experimenter=None, index=None,
                 xid=None, msg_type=None, data=b"", context=None, errors=None):
        self.err_type = err_type
        self.err_code = err_code
        self.type_name = type_name
        self.code_name = code_name
        self.experimenter = experimenter
        self.index = index
        self.xid = xid
        self.msg_type = msg_type
        self.data = data
        self.context = context
        self.errors = list(errors or [])
        what = "%s/%s" % (type_name, code_name)
        if context:
            msg = "%s: the switch rejected " % context
        else:
            msg = "the switch rejected "
        if index is not None:
            msg += "message %d" % index
        else:
            msg += "the request"
        details = []
        if msg_type:
            details.append(msg_type)
        if xid is not None:
            details.append("xid %d" % xid)
        if details:
            msg += " (%s)" % ", ".join(details)
        msg += " with %s" % what
        super(OpenFlowSwitchError, self).__init__(msg)
