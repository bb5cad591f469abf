"""hostd's benchmark against systemd-run, JupyterHub + systemdspawner and the hub (issue 8).

Run it with ``packaging/bench.sh`` (installs what it needs, runs inside packaging/testbed).
Not collected by pytest: no file here is named test_*.py.
"""
