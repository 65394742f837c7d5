# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sphinx configuration of the opdbus.infra docs site (built by tools/docsite.py).

The plugin pages come from antsibull-docs (the plugins' own DOCUMENTATION/EXAMPLES/RETURN);
the user guides are the Markdown files of docs/, read by myst-parser. The build runs with
warnings as errors. References into Ansible's own docsite (common return values, builtin
modules, ANSIBLE_* settings) cannot be resolved offline: they are rendered as plain text, and
only they; any other unresolved reference still fails the build.
"""

import re

project = "opdbus.infra"
copyright = "opdbus.infra contributors"  # pylint: disable=redefined-builtin
title = "opdbus.infra documentation"
html_short_title = "opdbus.infra"

extensions = ["sphinx.ext.autodoc", "sphinx_antsibull_ext", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_heading_anchors = 3

pygments_style = "ansible"
highlight_language = "YAML+Jinja"
html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False
default_role = "any"
nitpicky = True

# Labels and variables of docs.ansible.com (no network at build time).
_EXTERNAL = re.compile(
    r"^(common_return_values|callback_plugins|ansible_configuration_settings|"
    r"ansible_collections\.ansible\.builtin\..*|ANSIBLE_[A-Z0-9_]+)$")


def _external_as_text(app, env, node, contnode):  # pylint: disable=unused-argument
    target = node.get("reftarget", "")
    if _EXTERNAL.match(target):
        return contnode
    return None


def setup(app):
    app.connect("missing-reference", _external_as_text)
