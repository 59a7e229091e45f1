"""The ingress paths and Basic-auth user live in ingress/paths.py; the relay command, which
runs as a lone file on mail hosts, keeps its own copy, and the app routes what it says."""

from __future__ import annotations

from flask import Flask

from blueprints.ingress import bp
from ingress import relayer
from ingress.paths import BASIC_USER, PATHS


def test_the_relay_commands_copies_agree():
    assert relayer.USERNAME == BASIC_USER
    assert relayer.RELAY_PATH == PATHS["relay"]


def test_every_path_is_routed_to_the_ingress_blueprint():
    app = Flask(__name__)
    app.register_blueprint(bp)
    routed = {r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("ingress.")}
    assert routed == set(PATHS.values())
