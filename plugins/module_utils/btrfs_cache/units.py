# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd timer and service that snapshot a cache on a schedule, and telling systemd about them.

Unit names are ``opdbus-btrfs-cache-<path>.timer``/``.service`` with the cache path escaped as
``systemd-escape --path`` does. The service runs the snapshot script (script.py) with the
cache's retention counts. When systemd runs the host (``/run/systemd/system`` exists, as
``sd_booted()`` tests), ``activate``/``stop``/``reload`` ask its manager over D-Bus
(module_utils/systemd.py on module_utils/dbus.py: the system bus, else systemd's private socket)
to reload and (re)start the timer, or to stop it before its files are removed; otherwise only the
files are written (with the ``timers.target.wants`` link that enables the timer).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

SHORTHANDS = ("minutely", "hourly", "daily", "weekly", "monthly", "quarterly", "semiannually", "yearly", "annually")
_CALENDAR_CHARS = re.compile(r"^[A-Za-z0-9*,./~:+\- ]+$")
SYSTEMD_RUNDIR = "/run/systemd/system"


class ScheduleError(ValueError):
    """A snapshot schedule systemd would not take."""


def escape_path(path):
    """``systemd-escape --path``: strip slashes, "/" becomes "-", other unsafe bytes \\xNN, a leading "." too."""
    text = os.path.normpath(path).strip("/") or "-"
    if text == "-":
        return "-"
    out = []
    for index, byte in enumerate(os.fsencode(text)):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif (char.isascii() and (char.isalnum() or char in ":_.")) and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.append("\\x%02x" % byte)
    return "".join(out)


def unit_base(cache_path):
    return "opdbus-btrfs-cache-" + escape_path(cache_path)


def check_schedule(schedule):
    """Validate an OnCalendar expression before anything is touched: a shorthand, or the characters
    systemd's calendar syntax uses. systemd's own parser has the last word: when systemd runs,
    :func:`activate` reads the timer's LoadState after the reload and fails (the module undoes its
    changes) when systemd rejected the expression. Raises ScheduleError."""
    text = (schedule or "").strip()
    if not text:
        raise ScheduleError("snapshot_schedule is empty (give hourly, daily, an OnCalendar expression, or absent)")
    if text in SHORTHANDS:
        return text
    if "\n" in text or not _CALENDAR_CHARS.match(text):
        raise ScheduleError("snapshot_schedule %r is not a systemd OnCalendar expression" % schedule)
    problem = _calendar_problem(text)
    if problem:
        raise ScheduleError("snapshot_schedule %r is not a systemd OnCalendar expression: %s" % (schedule, problem))
    return text


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _weekday_ok(word):
    word = word.lower()
    return word in _WEEKDAYS or word in _FULL_DAYS


def _component_problem(text, name, low, high, decimals=False):
    """A date/time component of systemd.time(7): comma list of *, N, N..M, each with an optional /step."""
    for item in text.split(","):
        value, step = (item.split("/", 1) + [None])[:2]
        if step is not None and not re.match(r"^\d+(\.\d+)?$" if decimals else r"^\d+$", step):
            return "bad repetition %r in the %s" % (item, name)
        if value == "*":
            continue
        bounds = value.split("..", 1)
        for bound in bounds:
            if not re.match(r"^\d+(\.\d+)?$" if decimals else r"^\d+$", bound):
                return "%r is not a %s" % (value, name)
            if not (low <= float(bound) < high + 1 if decimals else low <= int(bound) <= high):
                return "%s %s is out of range %d..%d" % (name, bound, low, high)
        if len(bounds) == 2 and float(bounds[0]) > float(bounds[1]):
            return "range %r of the %s runs backwards" % (value, name)
    return None


def _calendar_problem(text):
    """Why ``text`` is not a calendar event of systemd.time(7) (normalised form: [weekdays] [date] [time] [zone]), or None."""
    tokens = text.split()
    if tokens and "-" not in tokens[0] and ":" not in tokens[0] and "~" not in tokens[0] and tokens[0] != "*":
        for item in tokens.pop(0).split(","):
            days = item.split("..")
            if len(days) > 2 or not all(_weekday_ok(d) for d in days):
                return "%r is not a weekday or a range of weekdays" % item
    if tokens and (tokens[-1] == "UTC" or re.match(r"^[A-Za-z]+(/[A-Za-z_+\-0-9]+)*$", tokens[-1])):
        zone = tokens.pop()
        if zone != "UTC" and not os.path.exists(os.path.join("/usr/share/zoneinfo", zone)):
            return "unknown time zone %r" % zone
    date = timepart = None
    for token in tokens:
        if ":" in token and timepart is None:
            timepart = token
        elif ("-" in token or "~" in token) and date is None and timepart is None:
            date = token
        elif token == "*" and date is None and timepart is None:
            date = "*-*-*"
        else:
            return "unexpected %r" % token
    if date is None and timepart is None and not text.split():
        return "empty"
    if date is not None:
        match = re.match(r"^(?:([^-~]+)-)?([^-~]+)([-~])([^-~]+)$", date)
        if not match:
            return "%r is not a date (year-month-day or month-day)" % date
        year, month, day = match.group(1), match.group(2), match.group(4)
        for value, name, low, high in ((year, "year", 1970, 2199), (month, "month", 1, 12), (day, "day", 1, 31)):
            if value is not None:
                problem = _component_problem(value, name, low, high)
                if problem:
                    return problem
    if timepart is not None:
        parts = timepart.split(":")
        if len(parts) not in (2, 3):
            return "%r is not a time (hour:minute[:second])" % timepart
        for value, name, low, high in zip(parts, ("hour", "minute", "second"), (0, 0, 0), (23, 59, 59)):
            problem = _component_problem(value, name, low, high, decimals=name == "second")
            if problem:
                return problem
    return None


def _quote(arg):
    """One ExecStart argument: %% for %, double quotes when needed (systemd's own quoting rules)."""
    arg = arg.replace("%", "%%")
    if arg and not re.search(r"[\s\"'\\;]", arg):
        return arg
    return '"%s"' % arg.replace("\\", "\\\\").replace('"', '\\"')


def service_text(cache_path, snapshot_dir, counts, script_path, python="/usr/bin/python3"):
    args = [python, script_path, "--cache", cache_path, "--snapshot-dir", snapshot_dir]
    for kind in ("hourly", "daily", "weekly", "quarterly"):
        args += ["--" + kind, str(counts[kind])]
    return "".join([
        "# Managed by opdbus.infra.btrfs_cache: a read-only snapshot of %s, then pruning.\n" % cache_path,
        "[Unit]\n",
        "Description=Snapshot the btrfs cache %s\n" % cache_path.replace("%", "%%"),
        "RequiresMountsFor=%s\n" % _quote(cache_path),
        "\n[Service]\n",
        "Type=oneshot\n",
        "ExecStart=%s\n" % " ".join(_quote(a) for a in args),
    ])


def timer_text(cache_path, schedule):
    return "".join([
        "# Managed by opdbus.infra.btrfs_cache: when to snapshot %s.\n" % cache_path,
        "[Unit]\n",
        "Description=Snapshots of the btrfs cache %s\n" % cache_path.replace("%", "%%"),
        "\n[Timer]\n",
        "OnCalendar=%s\n" % schedule,
        "Persistent=true\n",
        "\n[Install]\n",
        "WantedBy=timers.target\n",
    ])


def systemd_running(rundir=SYSTEMD_RUNDIR):
    """True when systemd is the init system (sd_booted(): /run/systemd/system exists)."""
    return os.path.isdir(rundir)


def dbus_ready(module=None):
    """Import dbus-python now (respawning the module under the system Python if it has it, or failing)."""
    from ansible_collections.opdbus.infra.plugins.module_utils.dbus import import_dbus  # pylint: disable=import-outside-toplevel
    return import_dbus(module)


def _systemd():
    from ansible_collections.opdbus.infra.plugins.module_utils.systemd import connect  # pylint: disable=import-outside-toplevel
    return connect()


def activate(timer_name, module=None):
    """Reload systemd (it reads the new files) and (re)start the timer, waiting for the job.

    The timer is enabled by its ``timers.target.wants`` link, which the module writes itself
    (what ``systemctl enable`` writes), so this works the same with or without systemd running.
    """
    dbus_ready(module)
    with _systemd() as manager:
        manager.reload()
        path = manager.load_unit(timer_name)
        state = manager.get(path, "LoadState")
        if state != "loaded":
            raise ScheduleError("systemd did not load %s (LoadState %s): its OnCalendar expression or unit file was rejected"
                                % (timer_name, state))
        manager.restart_unit(timer_name)


def stop(timer_name, module=None):
    """Stop the timer before its files go; a timer systemd does not know is fine."""
    from ansible_collections.opdbus.infra.plugins.module_utils.dbus import DBusError  # pylint: disable=import-outside-toplevel
    dbus_ready(module)
    with _systemd() as manager:
        try:
            manager.stop_unit(timer_name)
        except DBusError as exc:
            if getattr(exc, "name", None) != "org.freedesktop.systemd1.NoSuchUnit":
                raise


def reload(module=None):
    """Make systemd read the unit files again (Manager.Reload)."""
    dbus_ready(module)
    with _systemd() as manager:
        manager.reload()
