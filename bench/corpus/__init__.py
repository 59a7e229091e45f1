"""Input data for the benchmarks, kept apart from the code that times it.

`mailbox` and `load` build the agent UI's big mailbox (bench/ui.py); `mime` builds the raw
messages that bench/ingress.py posts and bench/process.py works.
"""
