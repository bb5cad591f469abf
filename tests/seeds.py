"""The seeds' configuration lines, kept once as test data for every tier that uses them."""

from __future__ import annotations

__all__ = ["SEED_002", "SEED_002_ON_HOSTD"]

# Seed 002 (an admin's JupyterHub with systemdspawner): every c. line of its page, verbatim and
# in its order (the security section repeats three of them).
SEED_002 = """\
c.JupyterHub.spawner_class = 'systemdspawner.SystemdSpawner'
c.SystemdSpawner.default_shell = '/bin/bash'
c.SystemdSpawner.mem_limit = '2G'
c.SystemdSpawner.cpu_limit = 1.0
c.SystemdSpawner.isolate_tmp = True
c.SystemdSpawner.isolate_devices = True
c.SystemdSpawner.disable_user_sudo = True
c.SystemdSpawner.unit_extra_properties = {'RuntimeDirectoryPreserve': 'no'}
c.SystemdSpawner.user_workingdir = '/shared/users/{USERNAME}'
c.SystemdSpawner.readonly_paths = ['/opt/shared-data']
c.SystemdSpawner.readwrite_paths = ['/tmp', '/shared/notebook-outputs']
# Disable user sudo access in notebooks
c.SystemdSpawner.disable_user_sudo = True
# Isolate temporary directories
c.SystemdSpawner.isolate_tmp = True
# Isolate devices
c.SystemdSpawner.isolate_devices = True
# Set secure headers
c.JupyterHub.tornado_settings = {}
"""
# The one line an admin changes to keep JupyterHub (README: from systemdspawner in one line).
SEED_002_ON_HOSTD = SEED_002.replace("'systemdspawner.SystemdSpawner'", '"hostd"')
