"""Background jobs: plain module-level functions taking ids, run by worker.py in an app context.

They are enqueued, and their ids built, in services/background.py."""
