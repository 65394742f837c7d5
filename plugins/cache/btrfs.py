# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: btrfs
short_description: Facts in JSON files compressed by btrfs, with an SQLite index
version_added: 0.1.0
description:
  - Keeps each host's facts in a JSON file in one directory, written atomically (a temporary file renamed over the
    old one), with an SQLite index (in WAL mode, with a busy timeout) of which host was written when and for how long
    it is valid. Several ansible-playbook runs and forks may read and write at once.
  - When the directory is on btrfs, the plugin sets its C(btrfs.compression) property to C(zstd) (an extended
    attribute, through the kernel's property handler), so the kernel compresses the files; nothing else is needed.
    On any other filesystem the plugin works the same, uncompressed.
  - A host's facts read once are kept in memory and served again while the index says they were not rewritten.
author:
  - opdbus.infra maintainers (@opdbus)
options:
  _uri:
    required: true
    description:
      - The directory the JSON files and the index (C(index.sqlite3)) are kept in; made when missing. Put it on btrfs
        for compression, for example in the C(queries/) directory of an M(opdbus.infra.btrfs_cache) cache.
    env:
      - name: ANSIBLE_CACHE_PLUGIN_CONNECTION
    ini:
      - key: fact_caching_connection
        section: defaults
    type: path
  _prefix:
    description: A prefix for the file names (the index keys are the hosts' names).
    env:
      - name: ANSIBLE_CACHE_PLUGIN_PREFIX
    ini:
      - key: fact_caching_prefix
        section: defaults
    type: str
  _timeout:
    default: 86400
    description: Seconds a host's facts stay valid; V(0) keeps them for ever.
    env:
      - name: ANSIBLE_CACHE_PLUGIN_TIMEOUT
    ini:
      - key: fact_caching_timeout
        section: defaults
    type: integer
notes:
  - Expired entries are never returned; their files stay until the host's facts are written again or the cache is
    flushed (C(ansible-playbook --flush-cache)).
seealso:
  - name: docs/btrfs_cache.md
    description: How the store is laid out and how compression is measured.
    link: https://github.com/opdbus/opdbus.infra/blob/main/docs/btrfs_cache.md
"""

from ansible.errors import AnsibleError
from ansible.plugins.cache import BaseCacheModule

from ansible_collections.opdbus.infra.plugins.plugin_utils.kvstore import KVStore, StoreError


class CacheModule(BaseCacheModule):
    """Facts in JSON files (btrfs-compressed when on btrfs) indexed in SQLite."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        uri = self.get_option("_uri")
        if not uri:
            raise AnsibleError("the opdbus.infra.btrfs cache plugin needs a directory: set fact_caching_connection "
                               "(ANSIBLE_CACHE_PLUGIN_CONNECTION)")
        try:
            self._store = KVStore(uri, prefix=self.get_option("_prefix") or "", ttl=float(self.get_option("_timeout") or 0))
        except (StoreError, OSError) as exc:
            raise AnsibleError("opdbus.infra.btrfs cache plugin: %s" % exc) from exc

    def get(self, key):
        return self._store.get(key)

    def set(self, key, value):
        self._store.set(key, value)

    def keys(self):
        return self._store.keys()

    def contains(self, key):
        return self._store.contains(key)

    def delete(self, key):
        self._store.delete(key)

    def flush(self):
        self._store.flush()

    def copy(self):
        return dict((key, self._store.get(key)) for key in self._store.keys())
