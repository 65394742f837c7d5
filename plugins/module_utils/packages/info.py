# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""packagekit_info: installed packages and available updates, read in at most two transactions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _entry(pkg_id):
    return {"version": pkg_id.version, "arch": pkg_id.arch, "id": str(pkg_id)}


def installed_map(packages):
    """{name: {version, arch, id}}; a name installed for several architectures gets {versions: [...]}."""
    out = {}
    for package in packages:
        if package.info != "installed":
            continue
        entry = _entry(package.id)
        have = out.get(package.name)
        if have is None:
            out[package.name] = entry
        elif "versions" in have:
            if entry not in have["versions"]:
                have["versions"].append(entry)
        elif have != entry:
            out[package.name] = {"versions": [have, entry]}
    return out


def gather(pk, names=(), installed=True, updates=True):
    names = sorted(set(n.split(":", 1)[0].split("=", 1)[0] for n in names or ()))
    props = pk.properties()
    result = {"available": True, "daemon": {
        "version": "%s.%s.%s" % (props.get("VersionMajor"), props.get("VersionMinor"), props.get("VersionMicro")),
        "backend": props.get("BackendName"), "distro_id": props.get("DistroId"), "locked": props.get("Locked")}}
    if installed:
        if names:
            tx = pk.resolve(names, filters=("installed",))
        else:
            tx = pk.get_packages(filters=("installed",))
        result["installed"] = installed_map(tx.packages)
    if updates:
        tx = pk.get_updates()
        wanted = set(names)
        result["updates"] = [
            {"name": p.name, "version": p.version, "arch": p.arch, "severity": p.info, "id": str(p.id)}
            for p in tx.packages if not wanted or p.name in wanted]
    return result
