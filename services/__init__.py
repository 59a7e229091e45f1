"""Domain services: the functions views, CLI and jobs call; commits happen here."""
