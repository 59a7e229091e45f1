"""`flask` commands: admin, doctor, inbound, ingress, serve."""

from flask import Flask


def register_commands(app: Flask) -> None:
    from cli.admin import admin_group
    from cli.doctor import doctor_command
    from cli.inbound import inbound_group
    from cli.ingress import ingress_group
    from cli.serve import serve_command

    app.cli.add_command(admin_group)
    app.cli.add_command(doctor_command)
    app.cli.add_command(inbound_group)
    app.cli.add_command(ingress_group)
    app.cli.add_command(serve_command)
