#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: btrfs_cache
short_description: A btrfs cache subvolume with compression, a size limit, and scheduled read-only snapshots
version_added: 0.1.0
description:
  - Manages the cache subvolume of the op-dbus design on a btrfs filesystem - the subvolume O(path) with the
    directories C(embeddings/), C(blocks/), C(queries/) and C(diffs/), its compression property, an optional size limit
    (a qgroup limit on referenced bytes), and read-only snapshots named by their UTC time in O(snapshot_dir).
  - Snapshots on a schedule come from a systemd timer and service this module writes under O(units_dir); the service
    runs a self-contained Python script (written to O(script_path)) that takes a snapshot and prunes by the same
    retention code as O(prune). When systemd runs the host, it is asked over D-Bus to reload and start the timer;
    otherwise the unit files and the timer's C(timers.target.wants) link are written and take effect at the next boot.
  - Everything goes through the kernel's btrfs ioctls (subvolumes, snapshots, properties, quotas, qgroup limits, tree
    search); no btrfs command is run.
  - All options are validated before anything is touched. Check mode reports exactly the changes a real run makes.
author:
  - opdbus.infra maintainers (@opdbus)
extends_documentation_fragment:
  - opdbus.infra.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  filesystem:
    description: A btrfs mount point or a directory on a btrfs filesystem; the cache and its snapshots live below it.
    type: path
    required: true
  path:
    description:
      - The cache subvolume. A relative path is taken below O(filesystem); an absolute one must be below it and on the
        same btrfs filesystem.
    type: str
    default: "@cache"
  state:
    description:
      - V(present) creates or updates the cache.
      - V(absent) removes the timer and service, deletes the cache's snapshots (and O(snapshot_dir) when it is then
        empty) and deletes the cache subvolume with its content. The snapshot script stays (other caches may use it).
    type: str
    choices: [present, absent]
    default: present
  compression:
    description:
      - The cache's C(btrfs.compression) property (new files inherit it). V(none) sets the property to C(none)
        (new files are not compressed, whatever the mount options say).
    type: str
    choices: [zstd, zlib, lzo, none]
    default: zstd
  compression_level:
    description:
      - The compression level - zstd 1 to 15, zlib 1 to 9; lzo and none take none. Default - the kernel's default level.
    type: int
  size_limit:
    description:
      - The most the cache may reference (a qgroup limit on referenced bytes), in bytes or with a binary unit (V(10G),
        V(512M), V(1.5T)); V(none) removes the limit. Not given - the limit is left as it is.
      - Setting a limit enables quotas on the whole filesystem when they are off (every subvolume gets a qgroup; the
        kernel rescans the filesystem once).
    type: str
  snapshot_dir:
    description: Where the snapshots go (a plain directory, below O(filesystem), outside the cache). Default C(<path>.snapshots).
    type: str
  snapshot_schedule:
    description:
      - When the timer snapshots the cache - a systemd calendar shorthand (V(hourly), V(daily), ...) or any OnCalendar
        expression (checked against the grammar of systemd.time(7); when systemd runs, a timer it rejects fails the
        task). V(absent) removes the timer and service.
        Not given - the units are left as they are.
    type: str
  retention:
    description:
      - How many snapshots pruning keeps - for each of the last N hours, days, ISO weeks and quarters (counted back from
        now, UTC), the oldest snapshot taken in that period. The newest snapshot is always kept.
      - Used by O(prune) and written into the timer's service.
    type: dict
    suboptions:
      hourly:
        description: Hours to keep a snapshot for.
        type: int
        default: 24
      daily:
        description: Days to keep a snapshot for.
        type: int
        default: 7
      weekly:
        description: ISO weeks to keep a snapshot for.
        type: int
        default: 4
      quarterly:
        description: Calendar quarters to keep a snapshot for.
        type: int
        default: 4
  prune:
    description: Delete now the snapshots O(retention) does not keep.
    type: bool
    default: false
  snapshot:
    description: Take a read-only snapshot now (before pruning). Always a change.
    type: bool
    default: false
  now:
    description:
      - The time snapshots are named by and pruning counts from, ISO 8601 (V(2026-11-23T01:00:00Z)); for tests and
        replays. Default - the clock.
    type: str
  units_dir:
    description: Where the systemd units go.
    type: path
    default: /etc/systemd/system
  script_path:
    description: Where the snapshot script goes.
    type: path
    default: /usr/local/libexec/opdbus/btrfs-cache-snapshot
  measure_compression:
    description:
      - Return RV(cache.compression_ratio), measured from the file extent items of the cache's tree (a walk over
        all of its extents; turn off for very large caches).
    type: bool
    default: true
notes:
  - Usage (RV(cache.usage)) comes from the cache's qgroup (referenced and exclusive bytes) when quotas are on, else from
    a walk adding the allocated blocks of its files (the C(source) in RV(cache.usage) says which).
  - Tested on real loop-mounted btrfs filesystems; the systemd activation (when systemd is PID 1) is not tested here.
seealso:
  - name: docs/btrfs_cache.md
    description: Layout, timer, retention and how usage and compression ratio are measured.
    link: https://github.com/opdbus/opdbus.infra/blob/main/docs/btrfs_cache.md
"""

EXAMPLES = r"""
- name: The cache on the lab's btrfs, zstd level 3, at most 10 GiB, hourly snapshots
  opdbus.infra.btrfs_cache:
    filesystem: /srv/btrfs
    compression: zstd
    compression_level: 3
    size_limit: 10G
    snapshot_schedule: hourly
    retention: {hourly: 24, daily: 7, weekly: 4, quarterly: 4}

- name: Prune now with the same retention
  opdbus.infra.btrfs_cache:
    filesystem: /srv/btrfs
    prune: true

- name: No limit, no timer
  opdbus.infra.btrfs_cache:
    filesystem: /srv/btrfs
    size_limit: none
    snapshot_schedule: absent
"""

RETURN = r"""
cache:
  description: The cache after the run (in check mode, what it would be).
  returned: always
  type: dict
  contains:
    path:
      description: The cache subvolume.
      type: str
    state:
      description: V(present) or V(absent).
      type: str
    layout:
      description: The cache's directories by name (embeddings, blocks, queries, diffs).
      type: dict
    compression:
      description: The compression property (V(zstd:3), V(lzo), V(none)), null when unset.
      type: str
    size_limit:
      description: The qgroup limit on referenced bytes, null when none.
      type: int
    quota_enabled:
      description: Whether quotas are on for the filesystem.
      type: bool
    usage:
      description: Bytes used - V(referenced), V(exclusive) (null when not known) and V(source) (V(qgroup) or V(walk)).
      type: dict
    compression_ratio:
      description:
        - From the cache's file extent items - V(disk_bytes), V(uncompressed_bytes), V(referenced_bytes), V(extents),
          V(compressed_extents) and V(ratio) (disk / uncompressed, null without data). Null when not measured.
      type: dict
    snapshots:
      description: The snapshot names in C(snapshot_dir), oldest first.
      type: list
      elements: str
    snapshot_dir:
      description: Where the snapshots are.
      type: str
    timer:
      description: The timer unit file, null when there is none.
      type: str
    service:
      description: The service unit file, null when there is none.
      type: str
    timer_enabled:
      description: Whether the timer's C(timers.target.wants) link exists.
      type: bool
    systemd_running:
      description: Whether systemd runs the host (it was asked to reload and start the timer).
      type: bool
changes:
  description: What was (or in check mode would be) done, one line each.
  returned: always
  type: list
  elements: str
  sample: ["create subvolume /srv/btrfs/@cache", "set compression of /srv/btrfs/@cache to zstd:3"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opdbus.infra.plugins.module_utils import btrfs
from ansible_collections.opdbus.infra.plugins.module_utils.btrfs_cache import cache


def argument_spec():
    return dict(
        filesystem=dict(type="path", required=True),
        path=dict(type="str", default=cache.DEFAULT_NAME),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        compression=dict(type="str", choices=["zstd", "zlib", "lzo", "none"], default="zstd"),
        compression_level=dict(type="int"),
        size_limit=dict(type="str"),
        snapshot_dir=dict(type="str"),
        snapshot_schedule=dict(type="str"),
        retention=dict(type="dict", options=dict(
            hourly=dict(type="int", default=cache.DEFAULT_RETENTION["hourly"]),
            daily=dict(type="int", default=cache.DEFAULT_RETENTION["daily"]),
            weekly=dict(type="int", default=cache.DEFAULT_RETENTION["weekly"]),
            quarterly=dict(type="int", default=cache.DEFAULT_RETENTION["quarterly"]),
        )),
        prune=dict(type="bool", default=False),
        snapshot=dict(type="bool", default=False),
        now=dict(type="str"),
        units_dir=dict(type="path", default=cache.DEFAULT_UNITS_DIR),
        script_path=dict(type="path", default=cache.DEFAULT_SCRIPT),
        measure_compression=dict(type="bool", default=True),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        changed, changes, before, after, report = cache.run(module.params, check_mode=module.check_mode, module=module)
    except cache.ValidationError as exc:
        module.fail_json(msg=str(exc), changed=False)
    except btrfs.BtrfsError as exc:
        module.fail_json(msg="btrfs: %s" % exc)
    except Exception as exc:  # pylint: disable=broad-except
        # D-Bus (systemd), file system and other errors: a message, never a traceback
        module.fail_json(msg="%s: %s" % (type(exc).__name__, exc))
    result = dict(changed=changed, changes=changes, cache=report)
    if module._diff:
        result["diff"] = dict(before=before, after=after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
