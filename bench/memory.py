"""Placeholder: being written (issue 20)."""


def run() -> str:
    raise NotImplementedError
