# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: ledger_search
short_description: Ask the audit ledger whether something like a given failure has been seen before
version_added: 0.1.0
description:
  - Ranks the records of an opdbus.infra audit ledger by similarity to each term (a failure message, a task
    description) and returns the best matches with their cosine score.
  - Records are compared through their vectors, kept in the ledger's vector cache (C(<ledger>/vectors)); records
    missing from the cache are embedded on the way and added to it (in memory only when the directory is not
    writable). Volatile details (addresses, numbers, uuids, host names inside messages) are normalised away, so
    the same failure on another host or another day still matches.
  - Filters are applied before ranking, so O(k) matches are found among the records that pass them, however rare.
  - Runs on the controller and reads the ledger read-only; it never changes records.
author:
  - opdbus.infra maintainers (@opdbus)
requirements:
  - numpy
  - jmespath (only with O(jmespath))
options:
  _terms:
    description: Texts to find similar records for, e.g. the C(msg) of a failed task.
    required: true
    type: list
    elements: str
  ledger_dir:
    description: The ledger directory.
    type: path
    required: true
    env:
      - name: OPDBUS_LEDGER_DIR
    ini:
      - section: opdbus_ledger
        key: dir
    vars:
      - name: opdbus_ledger_dir
  k:
    description: How many matches at most per term.
    type: int
    default: 5
  min_score:
    description: Leave out matches whose cosine score is below this (between -1 and 1; C(0.0) keeps all but opposites).
    type: float
    default: 0.0
  host:
    description: Only records of these hosts.
    type: list
    elements: str
  status:
    description: Only records with these statuses (V(ok), V(changed), V(failed), V(skipped), V(unreachable)).
    type: list
    elements: str
  module:
    description: Only records of these modules (fully qualified names as recorded, e.g. V(ansible.builtin.apt)).
    type: list
    elements: str
  since:
    description: Only records at or after this ISO 8601 time (UTC when no offset is given).
    type: str
  until:
    description: Only records at or before this ISO 8601 time (UTC when no offset is given).
    type: str
  jmespath:
    description:
      - Only records for which this JMESPath expression, evaluated over the whole record, is truthy
        (not null, false, an empty string, list or object), e.g. V(result.rc != `0`).
      - A record on which the expression raises a type error does not match.
    type: str
  msg_chars:
    description: The longest C(msg) returned; longer messages are cut and end with C(...).
    type: int
    default: 300
notes:
  - "Return shape: one list of matches per term. With C(query()) or C(wantlist=true) the result is always that list
    of lists. With C(lookup()) and one term, Ansible unwraps the outer list and you get the term's list of matches
    directly; with several terms you get the list of lists."
  - An empty list for a term means nothing in the ledger passed the filters and O(min_score).
  - Scores come from the ledger's embedder (by default a hashing embedder, no model); they rank well but are not
    calibrated probabilities. Pick O(min_score) by looking at the scores of known repeats.
"""

EXAMPLES = r"""
- name: Has this failure been seen before?
  ansible.builtin.set_fact:
    seen_before: "{{ lookup('opdbus.infra.ledger_search', apt_result.msg, status='failed', min_score=0.5, k=3) }}"

- name: Say where it was seen
  ansible.builtin.debug:
    msg: "Seen on {{ item.host }} at {{ item.time }} in task '{{ item.task }}' (score {{ item.score | round(2) }})"
  loop: "{{ seen_before }}"

- name: Two questions at once, always a list per term
  ansible.builtin.debug:
    msg: "{{ query('opdbus.infra.ledger_search', 'No space left on device', 'Connection refused',
                   ledger_dir='/var/lib/opdbus/ledger', host=['web1', 'web2'], since='2026-01-01T00:00:00Z') }}"

- name: Only failures of commands that returned non-zero
  ansible.builtin.debug:
    msg: "{{ lookup('opdbus.infra.ledger_search', 'permission denied', jmespath='result.rc != `0`') }}"
"""

RETURN = r"""
_list:
  description: One list per term of the matching records, best first.
  type: list
  elements: list
  contains:
    seq:
      description: Sequence number of the record in the ledger.
      type: int
    score:
      description: Cosine similarity between the term and the record (higher is more alike, at most 1).
      type: float
    time:
      description: When the record was written (RFC 3339, UTC).
      type: str
    host:
      description: Inventory host of the record.
      type: str
    play:
      description: Play name.
      type: str
    task:
      description: Task name.
      type: str
    module:
      description: Module (action) of the task.
      type: str
    status:
      description: V(ok), V(changed), V(failed), V(skipped) or V(unreachable).
      type: str
    msg:
      description: The C(msg) of the task's result, whitespace collapsed and cut at O(msg_chars); null when it had none.
      type: str
"""

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.lookup import LookupBase

try:
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.export import ExportError, RecordFilter, find_similar, result_msg
except ImportError as exc:
    LEDGER_IMPORT_ERROR = exc
else:
    LEDGER_IMPORT_ERROR = None


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if LEDGER_IMPORT_ERROR is not None:
            raise AnsibleLookupError("ledger_search cannot load the opdbus.infra ledger library: %s" % to_text(LEDGER_IMPORT_ERROR))
        ledger_dir = self.get_option("ledger_dir")
        if not ledger_dir:
            raise AnsibleLookupError("ledger_search: no ledger directory; set ledger_dir, OPDBUS_LEDGER_DIR or [opdbus_ledger] dir")
        k = self.get_option("k")
        if k is None or k < 1:
            raise AnsibleLookupError("ledger_search: k must be a positive integer, got %r" % (k,))
        min_score = self.get_option("min_score")
        msg_chars = self.get_option("msg_chars")
        try:
            record_filter = RecordFilter(host=self.get_option("host"), status=self.get_option("status"),
                                         module=self.get_option("module"), since=self.get_option("since"),
                                         until=self.get_option("until"), jmespath_expr=self.get_option("jmespath"))
        except ExportError as exc:
            raise AnsibleLookupError("ledger_search: %s" % to_text(exc)) from None
        ret = []
        for term in terms:
            text = to_text(term)
            try:
                hits = find_similar(ledger_dir, text=text, k=k, record_filter=record_filter, min_score=min_score)
            except ExportError as exc:
                raise AnsibleLookupError("ledger_search: %s" % to_text(exc)) from None
            except (OSError, ValueError) as exc:
                raise AnsibleLookupError("ledger_search: cannot read the ledger in %s: %s" % (ledger_dir, to_text(exc))) from None
            ret.append([self._match(score, record, msg_chars) for score, record in hits])
        return ret

    @staticmethod
    def _match(score, record, msg_chars):
        return {
            "seq": int(record["seq"]), "score": round(float(score), 6), "time": record.get("time"),
            "host": record.get("host"), "play": record.get("play"), "task": record.get("task"),
            "module": record.get("module"), "status": record.get("status"), "msg": result_msg(record, msg_chars),
        }
