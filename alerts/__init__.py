"""Prometheus rules of handshake-obs: ``rules.py`` renders ``handshake-obs.rules.yml``."""
