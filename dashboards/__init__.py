"""Grafana dashboards of handshake-obs: ``build.py`` generates ``handshake-obs.json``."""
