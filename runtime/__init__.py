"""Running Threadline locally: the embedded Redis and the one-command process set."""
